/**
 * `npm run schema`: writes schema/writ.schema.json, the JSON Schema of writ.yaml, from the shapes
 * the loader checks maps with (src/config/schema.ts). test/config/schema.test.ts fails when the
 * committed file differs from what this writes.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writConfigSchema } from "../src/config/schema.js";

const root = join(import.meta.dirname, "..");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const out = join(root, "schema", "writ.schema.json");
writeFileSync(out, `${JSON.stringify(writConfigSchema(version), null, 2)}\n`);
console.log(`wrote ${out}`);
