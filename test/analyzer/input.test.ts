/**
 * Bad or partial input is reported with file and line, and the rest is still analyzed: a broken
 * YAML document, an unknown kind, a truncated audit line; and the falco trace files, one of which
 * is the deliberately malformed `{"kind": 0}`.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  k8sAuditImporter,
  k8sManifestImporter,
  k8sPlugin,
  type ObservedEvent,
  scanPaths,
  textInput,
} from "../../src/analyzer/index.js";
import { corpus } from "./corpora.js";

const ROLE = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: reader, namespace: shop }
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get"]
`;

describe("bad or partial input", () => {
  it("a broken YAML document and an unknown kind are problems with their line; the other documents count", async () => {
    const text = `${ROLE}---\nkind: Role\nmetadata: { name: broken\n  rules: [\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w }\n---\n${ROLE.replace("reader", "writer")}`;
    const r = await k8sManifestImporter.import(textInput("m.yaml", text));
    expect(r.fragment.objects.map((o) => (o.value as { metadata: { name: string } }).metadata.name)).toEqual([
      "reader",
      "writer",
    ]);
    const codes = r.problems.map((p) => [p.code, p.file, p.line]);
    expect(codes).toContainEqual(["WARN_INPUT_UNKNOWN_KIND", "m.yaml", 13]);
    const broken = r.problems.find((p) => p.code === "ERR_INPUT_YAML");
    expect(broken?.line).toBeGreaterThanOrEqual(9);
    expect(broken?.line).toBeLessThanOrEqual(12);
  });

  it("a truncated audit line is a problem with its line number; the events around it count", async () => {
    const ev = (id: string) =>
      JSON.stringify({
        kind: "Event",
        apiVersion: "audit.k8s.io/v1",
        auditID: id,
        stage: "ResponseComplete",
        verb: "get",
        user: { username: "system:serviceaccount:shop:web" },
        objectRef: { resource: "pods", namespace: "shop", name: "p", apiVersion: "v1" },
        responseStatus: { code: 200 },
        requestReceivedTimestamp: "2026-11-01T10:00:00Z",
      });
    const text = [ev("a"), ev("b").slice(0, 60), ev("c"), ""].join("\n");
    const events: ObservedEvent[] = [];
    const r = await k8sAuditImporter.import(textInput("audit.log", text), { onEvent: (e) => events.push(e) });
    expect(events.map((e) => [e.requestId, e.source.line, e.action, e.resource, e.principal])).toEqual([
      ["a", 1, "k8s:core/pods:get", "shop/p", "k8s:ServiceAccount:shop/web"],
      ["c", 3, "k8s:core/pods:get", "shop/p", "k8s:ServiceAccount:shop/web"],
    ]);
    expect(r.problems.map((p) => [p.code, p.line])).toEqual([["ERR_INPUT_JSON_LINE", 2]]);
  });

  it("reads every falco k8s audit trace file, reporting the malformed one and keeping the rest", async () => {
    const dir = corpus("k8s-audit", "falco");
    const files = (await readdir(dir)).filter((f) => f.endsWith(".json")).map((f) => join(dir, f));
    expect(files.length).toBe(47);
    const r = await scanPaths(files, { plugins: [k8sPlugin] });
    // 52 lines: `{"kind": 0}` alone in its file, 2 at stage ResponseStarted (the same request is
    // logged again at ResponseComplete, so only that stage counts), and 49 events, all read
    expect(r.coverage.events).toBe(49);
    const bad = r.problems.filter((p) => p.file.endsWith("fal_01_003.json"));
    expect(bad.map((p) => p.code)).toEqual(["WARN_INPUT_UNRECOGNISED"]);
    expect(r.problems.filter((p) => !p.file.endsWith("fal_01_003.json"))).toEqual([]);
  });
});
