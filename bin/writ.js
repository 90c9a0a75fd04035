#!/usr/bin/env node
// `node bin/writ.js …` as the docs write it: the same as the installed entry point, bin/writ.cjs.
import "./writ.cjs";
