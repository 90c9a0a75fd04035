/**
 * The real `kubectl` against the fake API server, with a kubeconfig whose user is the static token
 * the Kubernetes issuer handed out: what the writ grants works (`get pods`), what it does not is
 * Forbidden (`delete`, another namespace), and after revocation the token is Unauthorized.
 * kubectl is required (Debian's `kubernetes-client`, installed by .ci/run when missing): a machine
 * without it fails here rather than skipping.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, harness, writ } from "./kubernetes-support.js";
import { credentialOf } from "./outcome.js";

const KUBECTL = process.env.WRIT_TEST_KUBECTL ?? "kubectl";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let h: Harness;
let dir: string;

/** Runs kubectl without blocking the event loop (the fake API server lives in this process). */
function kubectl(kubeconfig: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      KUBECTL,
      ["--kubeconfig", kubeconfig, "--cache-dir", join(dir, "cache"), "--request-timeout", "10s", ...args],
      // no KUBECONFIG, no HOME of the user running the tests
      { encoding: "utf8", timeout: 30_000, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir } },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== "number") {
          reject(
            new Error(`kubectl could not be run (${String(err.code)}): install Debian's kubernetes-client`),
          );
          return;
        }
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

function kubeconfig(token: string): string {
  const file = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      `- name: fake\n  cluster:\n    server: ${JSON.stringify(h.fake.url)}\n    certificate-authority: ${JSON.stringify(h.fake.caFile)}`,
      "users:",
      `- name: agent\n  user:\n    token: ${JSON.stringify(token)}`,
      "contexts:",
      "- name: writ\n  context:\n    cluster: fake\n    user: agent",
      "current-context: writ",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "writ-kubectl-"));
  h = await harness();
  h.fake.seed("", "pods", { metadata: { name: "web", namespace: "shop" } });
  h.fake.seed("", "pods", { metadata: { name: "db", namespace: "prod" } });
});
afterAll(async () => {
  await h.fake.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("kubectl with the issued token against the fake API server", () => {
  it("lists pods where the writ allows, is Forbidden elsewhere and for delete, Unauthorized after revocation", async () => {
    const w = writ([{ action: "k8s:core/pods:get|list", resource: "shop/*" }]);
    const cred = await credentialOf(h.issuer.issue(w, new Date()));
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    const cfg = kubeconfig(cred.token);

    const get = await kubectl(cfg, "get", "pods", "-n", "shop");
    expect(get.stderr).toBe("");
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/^NAME\s/);
    expect(get.stdout).toMatch(/\nweb\s/);

    const one = await kubectl(cfg, "get", "pod", "web", "-n", "shop", "-o", "jsonpath={.metadata.name}");
    expect(one).toMatchObject({ code: 0, stdout: "web" });

    const del = await kubectl(cfg, "delete", "pod", "web", "-n", "shop");
    expect(del.code).not.toBe(0);
    expect(del.stderr).toContain("Forbidden");
    expect(del.stderr).toContain('cannot delete resource "pods"');
    expect(
      h.fake
        .objects("", "pods")
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(["db", "web"]);

    const other = await kubectl(cfg, "get", "pods", "-n", "prod");
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain("Forbidden");

    const secrets = await kubectl(cfg, "get", "secrets", "-n", "shop");
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toContain("Forbidden");

    // revoke the writ: the next kubectl call is refused by authentication
    h.ledger.revokeWrit(w.id);
    for (const r of await h.ledger.due(new Date())) await h.issuer.revoke(r, new Date());
    const after = await kubectl(cfg, "get", "pods", "-n", "shop");
    expect(after.code).not.toBe(0);
    expect(after.stderr).toMatch(/Unauthorized/);
  });

  it("a token from a killed agent is refused by kubectl's next call", async () => {
    const cred = await credentialOf(
      h.issuer.issue(writ([{ action: "k8s:core/pods:list", resource: "*/*" }]), new Date()),
    );
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    const cfg = kubeconfig(cred.token);
    const all = await kubectl(cfg, "get", "pods", "-A");
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/\bdb\b/);
    expect(all.stdout).toMatch(/\bweb\b/);
    await h.issuer.kill({ agent: "deployer" }, new Date());
    const after = await kubectl(cfg, "get", "pods", "-A");
    expect(after.code).not.toBe(0);
    expect(after.stderr).toMatch(/Unauthorized/);
  });
});
