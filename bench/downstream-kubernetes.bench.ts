/**
 * The Kubernetes downstream issuer against the fake API server (HTTPS on loopback, the real
 * @kubernetes/client-node), in one run:
 *
 *   - issuing: a writ with one namespaced grant → Secret, Role, RoleBinding, TokenRequest, each
 *     recorded in an in-memory ledger first; beside the floor, a bare TokenRequest with the same
 *     client (what any ServiceAccount-token issuer must do at least);
 *   - kill → first refused use, over 20 runs: the time from calling `kill({ writ })` to the fake
 *     API server answering 401 to the token (issue #11 asks ≤ 1 s at p99).
 */
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { harness, writ } from "../test/downstream/kubernetes-support.js";
import { credentialOf } from "../test/downstream/outcome.js";
import { type Measurement, measure, table } from "./harness.js";

export async function run(): Promise<void> {
  const h = await harness();
  try {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: "fake", server: h.fake.url, caFile: h.fake.caFile, skipTLSVerify: false },
      { name: "admin", token: h.fake.adminToken },
    );
    const core = kc.makeApiClient(CoreV1Api);
    const secret = await core.createNamespacedSecret({
      namespace: "agents",
      body: { metadata: { name: "bench-floor" }, type: "Opaque" },
    });
    const grants = [{ action: "k8s:apps/deployments:get|patch", resource: "shop/web" }];
    const rows: Measurement[] = await measure(
      [
        {
          name: "bare TokenRequest (floor)",
          op: () =>
            core.createNamespacedServiceAccountToken({
              name: "deployer",
              namespace: "agents",
              body: {
                spec: {
                  audiences: [],
                  expirationSeconds: 3600,
                  boundObjectRef: {
                    apiVersion: "v1",
                    kind: "Secret",
                    name: "bench-floor",
                    uid: secret.metadata?.uid,
                  },
                },
              },
            }),
        },
        {
          name: "issue (Secret, Role, RoleBinding, TokenRequest, ledger)",
          op: async () => {
            const w = writ(grants);
            await credentialOf(h.issuer.issue(w, new Date()));
          },
        },
      ],
      { warmupMs: 300, budgetMs: 3000, rounds: 6, maxIterations: 2000 },
    );
    const [floor] = rows;
    console.log(table("Kubernetes issuer (fake API server, HTTPS loopback)", rows, floor!, "ops/s"));
    await h.issuer.kill({}, new Date());

    // kill → first refused use
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const cred = await credentialOf(h.issuer.issue(writ(grants), new Date()));
      if (cred.system !== "kubernetes") throw new Error("unreachable");
      if (!h.fake.use(cred.token, "get", "apps", "deployments", "shop", "web").allowed) {
        throw new Error("the issued token should be allowed before the kill");
      }
      const w = h.ledger.all().at(-1)!.writ;
      const t0 = performance.now();
      await h.issuer.kill({ writ: w }, new Date());
      while (h.fake.use(cred.token, "get", "apps", "deployments", "shop", "web").code !== 401) {
        if (performance.now() - t0 > 5000) throw new Error("token still accepted 5 s after kill");
        await new Promise((r) => setTimeout(r, 1));
      }
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const pick = (p: number) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)]!;
    console.log(
      `\nkill → first refused use (20 runs): p50 ${pick(50).toFixed(1)} ms, p99 ${pick(99).toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms (target ≤ 1000 ms)`,
    );
  } finally {
    await h.fake.close();
  }
}
