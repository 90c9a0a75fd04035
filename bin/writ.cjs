#!/usr/bin/env node
// The installed entry point (npm run build makes dist/). CommonJS on purpose: tools call
// `writ creds` on every start and agents call `writ hook` around every tool call, and each is
// answered by one bundled CommonJS file (scripts/bundle-fast.mjs) without the ESM loader or the
// CLI — `writ creds` from its cache when it can (else the full command runs), `writ hook` always.
// Everything else loads the compiled CLI, an ES module.
"use strict";
const argv = process.argv.slice(2);
(async () => {
  if (argv[0] === "hook") return require("../dist/cli/hook-fast.cjs").hookMain(argv);
  if (argv[0] === "creds" && (await require("../dist/cli/creds-fast.cjs").credsMain(argv))) return;
  const { main } = await import("../dist/cli/main.js");
  process.exitCode = await main(argv);
})();
