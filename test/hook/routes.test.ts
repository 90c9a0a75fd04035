/**
 * `POST /hook/v1/<kind>` when the audit cannot be written: the answer stays a `deny`
 * (`hook_error`, fail closed), the cause is left in the server's log (pino, http/log.ts) with the
 * request's line naming the agent and the reason — and the tool's input is not in the log.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decisionPoint, loadPolicy } from "../../src/app.js";
import { openAuditLog } from "../../src/audit/index.js";
import { taints } from "../../src/gateway/index.js";
import { hookEngine, hookRoutes } from "../../src/hook/index.js";
import { createLogger, lineDestination, type RequestFields, requestContext } from "../../src/http/log.js";
import { openStore, type Store } from "../../src/store/index.js";
import { claude, makeProject, type Project } from "./fixture.js";

let p: Project;
let store: Store;

beforeAll(async () => {
  p = await makeProject();
  store = await openStore({ dataDir: p.dataDir });
  await store.migrate();
}, 60_000);

afterAll(async () => {
  await store?.close().catch(() => undefined);
});

describe("the hook route when the audit fails", () => {
  it("answers deny (hook_error) and logs the cause, never the input", async () => {
    const { policy, problems } = await loadPolicy(p.config);
    if (!policy) throw new Error(JSON.stringify(problems));
    const log = openAuditLog({ repo: store.audit });
    const pdp = decisionPoint(policy, []);
    const lines: string[] = [];
    const logger = await createLogger({ destination: lineDestination((l) => lines.push(l)) });
    const requests = requestContext();
    const app = hookRoutes({
      logger,
      requests,
      engine: hookEngine({
        decide: async (req) => pdp.decide(req),
        taints: taints(store),
        audit: (type, data) => log.append(type, data),
        hooks: policy.config.hooks,
        home: homedir(),
      }),
    });
    // the store goes away under the audit log: every append now fails
    await store.close();
    const marker = "input-marker-7f3a";
    const body = JSON.stringify({
      agent: "coder",
      environment: "dev",
      input: claude("PreToolUse", "Read", { file_path: join(p.src, "a.ts"), note: marker }, p.src),
    });
    const fields: RequestFields = {};
    const res = await requests.run(fields, () =>
      Promise.resolve(
        app.request("/hook/v1/claude-code", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        }),
      ),
    );
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { decision: string; code: string; reason: string };
    expect(answer.decision).toBe("deny");
    expect(answer.code).toBe("hook_error");
    expect(fields).toMatchObject({ agent: "coder", reason: "hook_error" });
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const failure = logged.find((l) => l.event === "hook.audit_failed");
    expect(failure, lines.join("\n")).toBeDefined();
    expect(failure).toMatchObject({
      level: "error",
      kind: "claude-code",
      agent: "coder",
      environment: "dev",
    });
    const error = failure!.error as { name: string; message: string };
    expect(typeof error.name).toBe("string");
    expect(error.message.length).toBeGreaterThan(0);
    expect(answer.reason).toContain(error.message.slice(0, 40));
    expect(lines.join("\n")).not.toContain(marker);
  }, 60_000);
});
