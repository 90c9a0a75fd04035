/**
 * The store is the whole storage layer: no file of src/ outside src/store imports Kysely or a
 * database driver, builds SQL, reaches for the store's Kysely handle (`store.db`), or imports a
 * store module other than its index. Parts get their repositories from the `Store` (biome's
 * noRestrictedImports says the same for the imports, at lint time).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const SRC = join(ROOT, "src");

/** What a file outside the store must not do, each with the pattern that finds it. */
const RULES: readonly { readonly what: string; readonly pattern: RegExp }[] = [
  { what: "imports kysely", pattern: /(?:from|import)\s*\(?\s*["']kysely["']/ },
  {
    what: "imports a database driver",
    pattern: /(?:from|import)\s*\(?\s*["'](?:pg|@electric-sql\/pglite)["']/,
  },
  {
    what: "builds a query",
    pattern: /\.(?:selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)\s*\(/,
  },
  {
    what: "runs raw SQL",
    pattern: /\bsql\s*(?:<[^`]*?>)?\s*`|\bsql\.(?:raw|ref|lit|join|id)\s*\(|\.executeQuery\s*\(/,
  },
  { what: "uses the store's Kysely handle", pattern: /\.db\b(?!\s*:)/ },
  {
    what: "imports a store module other than its index",
    pattern: /["'][./]*\/store\/(?!index\.js["'])[\w-]+\.js["']/,
  },
];

/** The rules `text` breaks, with the line of the first break of each. */
function violations(text: string): { what: string; line: number }[] {
  const found: { what: string; line: number }[] = [];
  const lines = text.split("\n");
  for (const rule of RULES) {
    const i = lines.findIndex((l) => !/^\s*(?:\/\/|\*)/.test(l) && rule.pattern.test(l));
    if (i >= 0) found.push({ what: rule.what, line: i + 1 });
  }
  return found;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return path === join(SRC, "store") ? [] : sources(path);
    return /\.(?:ts|mts|js)$/.test(e.name) ? [path] : [];
  });
}

describe("the store boundary", () => {
  it("finds each kind of break (the check can fail)", () => {
    const broken = [
      `import { sql } from "kysely";`,
      `const pg = await import("pg");`,
      `const rows = await db.selectFrom("writs").selectAll().execute();`,
      "await sql`delete from seen_jti`.execute(db);",
      `const x = sql.raw("select 1");`,
      `return readOperationalState(p.deps.store.db, { now });`,
      `import { toolPinRepository } from "../store/pins.js";`,
    ].join("\n");
    expect(violations(broken).map((v) => v.what)).toEqual(RULES.map((r) => r.what));
    expect(violations(broken).map((v) => v.line)).toEqual([1, 2, 3, 4, 6, 7]);
    // what parts do write: the store's index, its repositories, and `db` as a key of their own
    const fine = [
      `import { type Store, toActiveWrit } from "../store/index.js";`,
      `const rows = await store.liveWrits.page({ agent }, undefined, now, 51);`,
      `const config = { db: "name" };`,
      "// the store runs `select … for update` (a comment)",
    ].join("\n");
    expect(violations(fine)).toEqual([]);
  });

  it("holds for every file of src/ outside src/store", () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(100);
    const broken = files.flatMap((file) =>
      violations(readFileSync(file, "utf8")).map((v) => `${relative(ROOT, file)}:${v.line}: ${v.what}`),
    );
    expect(broken).toEqual([]);
  });
});
