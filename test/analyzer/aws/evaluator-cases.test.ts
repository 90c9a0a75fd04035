/**
 * The evaluator corpus: every case in test/cases/aws/*.yaml, each citing the AWS documentation
 * section it encodes, evaluated by the library with the real action catalog loaded.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { type AwsCatalog, createCatalog } from "../../../src/analyzer/providers/aws/catalog.js";
import { evaluate } from "../../../src/analyzer/providers/aws/evaluator/index.js";
import { loadCaseFiles, toPolicySet, toRequest } from "./cases.js";

const files = loadCaseFiles();
let catalog: AwsCatalog;

beforeAll(async () => {
  const services = new Set<string>();
  for (const f of files) for (const c of f.cases) services.add(c.action.split(":")[0]!.toLowerCase());
  catalog = createCatalog();
  await catalog.load(services);
});

describe("aws evaluator corpus", () => {
  it("has at least 150 cases, each citing a documentation section with a title and URL", () => {
    const all = files.flatMap((f) => f.cases.map((c) => ({ f, c })));
    expect(all.length).toBeGreaterThanOrEqual(150);
    for (const { f, c } of all) {
      const doc = f.docs?.[c.doc];
      expect(doc, `${f.file}: ${c.name}: doc \`${c.doc}\``).toBeDefined();
      expect(doc!.title.length).toBeGreaterThan(5);
      expect(doc!.url).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
    }
    const names = all.map(({ f, c }) => `${f.file}:${c.name}`);
    expect(new Set(names).size).toBe(names.length);
  });

  for (const f of files) {
    describe(f.file, () => {
      for (const c of f.cases) {
        it(c.name, () => {
          const d = evaluate(toRequest(c), toPolicySet(c), {
            catalog,
            ...(c.resourcePolicyRequired !== undefined
              ? { resourcePolicyRequired: c.resourcePolicyRequired }
              : {}),
          });
          expect({ decision: d.decision, reason: d.reason }).toMatchObject({ decision: c.expect });
          if (c.deciding) {
            expect(d.deciding.map((r) => `${r.policyId}#${r.statement}`).sort()).toEqual(
              [...c.deciding].sort(),
            );
          }
          expect(d.errors.map((e) => e.code).sort()).toEqual([...(c.errors ?? [])].sort());
        });
      }
    });
  }
});
