/**
 * Regular expressions inside JSON Schemas of writ.yaml (playbook `parameters`, gateway
 * `constraints`): every `pattern` and `patternProperties` key must be matchable in linear time
 * (`core/regex.ts`); each that is not is reported where it is written, `ERR_CONFIG_REGEX`.
 */
import { isWritError, linearRegex, type Path } from "../core/index.js";
import type { Checker } from "./load.js";

const MAX_WALK_DEPTH = 64;

/** Reports every unusable pattern in `schema`; true when there was none. */
export function checkSchemaPatterns(c: Checker, schema: unknown, path: Path): boolean {
  let ok = true;
  const check = (source: string, at: Path, key: boolean): void => {
    try {
      linearRegex(source);
    } catch (e) {
      if (!isWritError(e)) throw e;
      c.error("ERR_CONFIG_REGEX", at, e.message, { key });
      ok = false;
    }
  };
  const walk = (node: unknown, at: Path, depth: number): void => {
    if (depth > MAX_WALK_DEPTH || typeof node !== "object" || node === null) return;
    if (Array.isArray(node)) {
      for (const [i, v] of node.entries()) walk(v, [...at, i], depth + 1);
      return;
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === "pattern" && typeof v === "string") check(v, [...at, k], false);
      else if (k === "patternProperties" && typeof v === "object" && v !== null && !Array.isArray(v)) {
        for (const [p, sub] of Object.entries(v)) {
          check(p, [...at, k, p], true);
          walk(sub, [...at, k, p], depth + 1);
        }
      } else if (k !== "const" && k !== "enum" && k !== "default" && k !== "examples") {
        walk(v, [...at, k], depth + 1);
      }
    }
  };
  walk(schema, path, 0);
  return ok;
}
