/**
 * `writ hook <agent-kind>`, loaded without the CLI: an agent runs it before and after every tool
 * call, so its cold path is Node's start, this file, the hook protocol (hook/protocol.ts) and one
 * HTTP request to a running `writ serve` (`--server` / `WRIT_SERVER`). Without a server the call is
 * judged in this process against the local store (hook-snapshot.ts, loaded only then).
 * Every failure — bad input, no identity, no server, a bad answer — blocks the call (exit 2, the
 * reason on stderr): fail closed.
 *
 * The build bundles this file into one CommonJS file (dist/cli/hook-fast.cjs, scripts/bundle-fast.mjs)
 * that bin/writ.cjs requires: no ESM loader, no module resolution, no stream for stdin or stdout.
 */
import { request as httpRequest } from "node:http";
import { parseArgs } from "node:util";
import {
  failClosed,
  HOOK_KINDS,
  type HookInput,
  type HookOutput,
  isHookKind,
  MAX_HOOK_INPUT,
  parseHookInput,
  renderAnswer,
  wireInput,
} from "../hook/protocol.js";
import { readStdin, writeAll } from "./fast-io.js";

type Env = Readonly<Record<string, string | undefined>>;

interface Verdict {
  readonly decision: "allow" | "deny" | "ask";
  readonly code: string;
  readonly reason: string;
}

export interface HookIo {
  readonly stdin: () => Promise<string>;
}

const TIMEOUT_MS = 10_000;
const MAX_ANSWER = 64 * 1024;

async function post(url: URL, body: string, token: string | undefined): Promise<Verdict> {
  // TLS is loaded only for an https server: it costs a plain-http hook a few milliseconds
  const request = url.protocol === "https:" ? (await import("node:https")).request : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        timeout: TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER) req.destroy(new Error("the answer is too large"));
          else chunks.push(c);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) {
            let detail = text.slice(0, 300);
            try {
              detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
            } catch {}
            reject(new Error(`the server answered ${res.statusCode}: ${detail}`));
            return;
          }
          try {
            const v = JSON.parse(text) as Verdict;
            if (!["allow", "deny", "ask"].includes(v.decision) || typeof v.reason !== "string") {
              reject(new Error("the server's answer is not a hook verdict"));
            } else resolve(v);
          } catch {
            reject(new Error("the server's answer is not JSON"));
          }
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * A WritError's code, known by its shape: this file is bundled with its own copy of the class, and
 * hook-snapshot.cjs and hook-offline.js throw their own.
 */
function codeOf(err: unknown, fallback: string): string {
  const e = err as { name?: unknown; code?: unknown };
  return err instanceof Error && e.name === "WritError" && typeof e.code === "string" ? e.code : fallback;
}

/** The process: `writ hook …` with its arguments, stdin and environment; sets the exit code. */
export async function hookMain(argv: readonly string[]): Promise<void> {
  const out = await runHook(argv, process.env, { stdin: () => readStdin(MAX_HOOK_INPUT + 1) });
  if (out.stdout) writeAll(1, out.stdout);
  if (out.stderr) writeAll(2, out.stderr);
  process.exitCode = out.exitCode;
}

/** Runs one hook call; returns what to print and the exit code. */
export async function runHook(argv: readonly string[], env: Env, io: HookIo): Promise<HookOutput> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv.slice(argv[0] === "hook" ? 1 : 0),
      strict: true,
      allowPositionals: true,
      options: {
        server: { type: "string" },
        agent: { type: "string" },
        env: { type: "string" },
        config: { type: "string" },
        "allow-skips-prompt": { type: "boolean" },
      },
    }));
  } catch (err) {
    return failClosed("ERR_USAGE", (err as Error).message);
  }
  const kind = positionals[0] ?? "";
  if (positionals.length !== 1 || !isHookKind(kind)) {
    return failClosed(
      "ERR_HOOK_AGENT_KIND",
      `${JSON.stringify(kind)} is not an agent kind: expected ${HOOK_KINDS.join(", ")}`,
    );
  }
  let input: HookInput;
  try {
    input = parseHookInput(kind, await io.stdin());
  } catch (err) {
    return failClosed(codeOf(err, "ERR_HOOK_INPUT"), (err as Error).message);
  }
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const agent = str(values.agent) ?? str(env.WRIT_AGENT);
  const environment = str(values.env) ?? str(env.WRIT_ENV);
  if (agent === undefined || environment === undefined) {
    return failClosed(
      "ERR_HOOK_IDENTITY",
      "the agent and its environment are not set: give --agent and --env, or WRIT_AGENT and WRIT_ENV in the hook's environment",
    );
  }
  const server = str(values.server) ?? str(env.WRIT_SERVER);
  let verdict: Verdict;
  if (server !== undefined) {
    let url: URL;
    try {
      url = new URL(`hook/v1/${kind}`, server.endsWith("/") ? server : `${server}/`);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
    } catch {
      return failClosed("ERR_HOOK_SERVER", `${JSON.stringify(server)} is not an http(s) URL`);
    }
    try {
      const body = JSON.stringify({ agent, environment, input: wireInput(input) });
      verdict = await post(url, body, str(env.WRIT_PDP_TOKEN));
    } catch (err) {
      return failClosed("ERR_HOOK_SERVER", `${url.origin}: ${(err as Error).message}`);
    }
  } else {
    try {
      const { judgeLocal } = await import("./hook-snapshot.js");
      verdict = await judgeLocal(
        {
          configFile: str(values.config) ?? str(env.WRIT_CONFIG) ?? "writ.yaml",
          dataDir: str(env.WRIT_DATA_DIR) ?? ".writ",
          databaseUrl: str(env.WRIT_DATABASE_URL),
        },
        { agent, environment },
        input,
      );
    } catch (err) {
      return failClosed(codeOf(err, "ERR_INTERNAL"), (err as Error).message.slice(0, 1000));
    }
  }
  const skips = values["allow-skips-prompt"] === true || env.WRIT_HOOK_ALLOW_SKIPS_PROMPT === "1";
  return renderAnswer(kind, input.phase, verdict.decision, verdict.reason, skips, input.event);
}
