/**
 * `writ creds` answered from the cache before the CLI is loaded: a tool calls its credential helper
 * on every start (aws's `credential_process`, kubectl's exec plugin), so a cached credential should
 * cost little more than starting Node. Only plain requests are answered here — aws, kubectl and
 * github, long options this parser reads exactly as the full command does, a fresh cache entry;
 * anything else (git's stdin protocol, `--no-cache`, a bare `--env`, a miss, any doubt) returns
 * `undefined` and the full command runs, with its checks and its errors.
 *
 * The build bundles this file into one CommonJS file (dist/cli/creds-fast.cjs, scripts/bundle-fast.mjs)
 * that bin/writ.cjs requires: no ESM loader, no module resolution, no node:crypto (the cache key's
 * hash is sha256.ts), no node:fs/promises, no stream for stdout.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cacheFile, formatCredential, parseParams, readCache, TOOLS } from "./creds-cache.js";
import { writeAll } from "./fast-io.js";

type Env = Readonly<Record<string, string | undefined>>;

/** The printed credential when the cache answers, else `undefined`. */
export async function credsFromCache(
  argv: readonly string[],
  env: Env,
  now = new Date(),
): Promise<string | undefined> {
  const [verb, tool, ...rest] = argv;
  if (verb !== "creds" || (tool !== "aws" && tool !== "kubectl" && tool !== "github")) return undefined;
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        playbook: { type: "string" },
        param: { type: "string", multiple: true },
        ticket: { type: "string" },
        env: { type: "string" },
        server: { type: "string" },
        key: { type: "string" },
        agent: { type: "string" },
        export: { type: "boolean" },
        // no request is made here: a cached entry exists only if the full command was allowed to ask
        "insecure-http": { type: "boolean" },
      },
    }));
  } catch {
    return undefined;
  }
  // an empty option the full command reads differently (an error, not the environment's default)
  if (Object.values(values).some((v) => v === "" || (Array.isArray(v) && v.includes("")))) return undefined;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const playbook = str(values.playbook);
  const environment = str(values.env) ?? str(env.WRIT_ENV);
  const server = str(values.server) ?? str(env.WRIT_SERVER);
  const agent = str(values.agent) ?? str(env.WRIT_AGENT);
  const key = str(values.key) ?? str(env.WRIT_AGENT_KEY);
  // what the full command would refuse, it refuses itself
  if (!playbook || !environment || !server || !agent || !key) return undefined;
  if (values.export === true && tool !== "github") return undefined;
  let params: Record<string, unknown>;
  try {
    params = parseParams((values.param as string[] | undefined) ?? []);
  } catch {
    return undefined;
  }
  const dir =
    str(env.WRIT_CACHE_DIR) ??
    join(str(env.XDG_CACHE_HOME) ?? join(str(env.HOME) ?? homedir(), ".cache"), "writ", "creds");
  const file = cacheFile(dir, [
    server,
    environment,
    agent,
    TOOLS[tool],
    playbook,
    params,
    typeof values.ticket === "string" ? values.ticket : null,
  ]);
  const cached = readCache(file, now);
  if (cached === undefined) return undefined;
  try {
    return formatCredential(tool, cached.credential, {
      exportForm: values.export === true,
      execInfo: env.KUBERNETES_EXEC_INFO,
    });
  } catch {
    return undefined;
  }
}

/** The process: prints a cached answer and returns true, or returns false for the full command. */
export async function credsMain(argv: readonly string[]): Promise<boolean> {
  const answered = await credsFromCache(argv, process.env);
  if (answered === undefined) return false;
  writeAll(1, answered.endsWith("\n") ? answered : `${answered}\n`);
  return true;
}
