/**
 * `writ serve` with the test system standing in for AWS, GitHub and Kubernetes, as a process of its
 * own, for the `writ creds` tests: the same composition (`createServer`) on the same HTTP server
 * (`listenHttp`) as `writ serve`, only the issuer factories differ (the real issuers need their
 * systems). Prints `{"listening": URL}` as `writ serve --json` does; every issuer call goes to the
 * JSON-lines file given, so the test can count them.
 *
 *   node --import tsx test/downstream/serve-test-system.ts CONFIG DATA_DIR CALLS_FILE
 */
import { createServer, loadPolicy } from "../../src/app.js";
import { listenHttp } from "../../src/http/node.js";
import { TestDownstream } from "./test-issuer.js";

const [config, dataDir, callsFile] = process.argv.slice(2) as [string, string, string];
const loaded = await loadPolicy(config);
if (!loaded.policy) {
  process.stderr.write(`${JSON.stringify(loaded.problems)}\n`);
  process.exit(1);
}
const system = new TestDownstream(callsFile);
const server = await createServer({
  policy: loaded.policy,
  dataDir,
  version: "test",
  downstream: { factories: system.factories() },
});
const http = await listenHttp({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 });
const url = `http://127.0.0.1:${http.address.port}`;
server.setBaseUrl(url);
process.stdout.write(`${JSON.stringify({ listening: url })}\n`);
const stop = async () => {
  await http.close();
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
