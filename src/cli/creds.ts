import { readFile, rm } from "node:fs/promises";
import type { Command } from "commander";
// the client's errors alone: the SDK (oauth4webapi, fetch, WebCrypto) loads only when it is needed
import {
  ERR_CLIENT_APPROVAL_TIMEOUT,
  ERR_CLIENT_PROTOCOL,
  ERR_CLIENT_UNREACHABLE,
  WritRefusal,
} from "../client/errors.js";
import { isWritError, q } from "../core/errors.js";
import {
  type AgentKey,
  agentKeyFromJwk,
  ERR_CREDS_KEY,
  type Intent,
  type Redeemed,
} from "../downstream/agent.js";
import type { DownstreamSystem } from "../downstream/types.js";
import { cacheFile, formatCredential, parseParams, readCache, TOOLS, writeCache } from "./creds-cache.js";
import { CliFailure, EXIT, type Io } from "./output.js";

export interface CredsDefaults {
  /** WRIT_SERVER, WRIT_AGENT, WRIT_AGENT_KEY, WRIT_ENV (main.ts reads the environment). */
  readonly server?: string | undefined;
  readonly agent?: string | undefined;
  readonly key?: string | undefined;
  readonly environment?: string | undefined;
  /** The cache folder: WRIT_CACHE_DIR, else `$XDG_CACHE_HOME/writ/creds`, else `~/.cache/writ/creds`. */
  readonly cacheDir: string;
  /** The whole of stdin (git's helper protocol). */
  readonly stdin: () => Promise<string>;
  readonly now?: (() => Date) | undefined;
  /** KUBERNETES_EXEC_INFO, set by kubectl for its exec plugin: says which ExecCredential version it reads. */
  readonly execInfo?: string | undefined;
}

const MAX_STDIN = 64 * 1024;

interface CredsOptions {
  readonly playbook?: string;
  readonly param: string[];
  readonly ticket?: string;
  readonly env?: string | boolean;
  readonly server?: string;
  readonly key?: string;
  readonly agent?: string;
  readonly host: string;
  readonly export: boolean;
  readonly cache: boolean;
  readonly insecureHttp: boolean;
}

/** git's credential protocol: `key=value` lines. */
function gitAttributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const l = line.replace(/\r$/, "");
    if (l === "") continue;
    const i = l.indexOf("=");
    if (i > 0) out.set(l.slice(0, i), l.slice(i + 1));
  }
  return out;
}

export function registerCreds(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: CredsDefaults,
): void {
  program
    .command("creds")
    .description("a writ redeemed for a downstream credential, in the protocol of aws, kubectl, git or gh")
    .argument("<tool>", "aws | kubectl | git | github")
    .argument("[action]", "git only: get | store | erase (what git passes to a credential helper)")
    .option("--playbook <name>", "the playbook to ask a writ of")
    .option(
      "--param <k=v>",
      "a parameter (`k=v` a string, `k:=JSON` any JSON value); repeatable",
      (v, acc: string[]) => [...acc, v],
      [],
    )
    .option("--ticket <id>", "the change ticket")
    .option(
      "--env [environment]",
      "the environment (default WRIT_ENV); for `github` alone, the GH_TOKEN form",
    )
    .option("--server <url>", "the writ server's public URL (default WRIT_SERVER)")
    .option("--key <file>", "the agent's private JWK (default WRIT_AGENT_KEY)")
    .option("--agent <id>", "the agent id (default WRIT_AGENT)")
    .option("--host <host>", "git only: the host the token is for", "github.com")
    .option("--export", "github only: print `export GH_TOKEN=…`", false)
    .option("--no-cache", "neither read nor write the credential cache")
    .option(
      "--insecure-http",
      "allow plain HTTP to a server that is not this machine (loopback is always allowed)",
      false,
    )
    .action(async (tool: string, action: string | undefined, o: CredsOptions) => {
      try {
        setExit(await creds(tool, action, o, io, d));
      } catch (err) {
        setExit(report(io, err));
      }
    });
}

function report(io: Io, err: unknown): number {
  if (err instanceof WritRefusal) {
    io.err(`writ: refused (${err.reason}): ${err.description}`);
    return EXIT.no;
  }
  if (err instanceof CliFailure) {
    io.err(`writ: ${err.message}`);
    return err.exitCode;
  }
  if (isWritError(err)) {
    io.err(`writ: ${err.message}`);
    if (err.code === ERR_CLIENT_APPROVAL_TIMEOUT) return EXIT.no;
    return err.code === ERR_CLIENT_UNREACHABLE || err.code === ERR_CLIENT_PROTOCOL
      ? EXIT.failure
      : EXIT.usage;
  }
  io.err(`writ: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT.failure;
}

async function creds(
  tool: string,
  action: string | undefined,
  o: CredsOptions,
  io: Io,
  d: CredsDefaults,
): Promise<number> {
  const system = Object.hasOwn(TOOLS, tool) ? TOOLS[tool] : undefined;
  if (system === undefined)
    throw new CliFailure("ERR_USAGE", `unknown tool ${q(tool)}: aws, kubectl, git or github`);
  if (tool === "git") {
    if (action !== "get" && action !== "store" && action !== "erase")
      throw new CliFailure(
        "ERR_USAGE",
        "`writ creds git` is a credential helper: give `get`, `store` or `erase`",
      );
  } else if (action !== undefined) throw new CliFailure("ERR_USAGE", `unexpected argument ${q(action)}`);
  if (o.env === true && tool !== "github")
    throw new CliFailure("ERR_USAGE", "--env needs an environment name here");
  const environment = typeof o.env === "string" ? o.env : d.environment;
  const server = o.server ?? d.server;
  const agent = o.agent ?? d.agent;
  const keyFile = o.key ?? d.key;
  const missing = [
    ["--playbook", o.playbook],
    ["--env (or WRIT_ENV)", environment],
    ["--server (or WRIT_SERVER)", server],
    ["--agent (or WRIT_AGENT)", agent],
    ["--key (or WRIT_AGENT_KEY)", keyFile],
  ].filter(([, v]) => v === undefined || v === "");
  if (missing.length > 0) throw new CliFailure("ERR_USAGE", `missing ${missing.map(([n]) => n).join(", ")}`);
  const params = parseParams(o.param);
  const now = d.now ?? (() => new Date());

  // git asks for every host it talks to: only the configured one gets a token
  let gitInput: Map<string, string> | undefined;
  if (tool === "git") {
    const text = await d.stdin();
    if (text.length > MAX_STDIN) throw new CliFailure("ERR_USAGE", "git's request on stdin is too large");
    gitInput = gitAttributes(text);
    if (action === "store") return EXIT.ok;
    const forUs = gitInput.get("protocol") === "https" && gitInput.get("host") === o.host;
    if (!forUs) return EXIT.ok;
  }

  const file = cacheFile(d.cacheDir, [
    server,
    environment,
    agent,
    system,
    o.playbook,
    params,
    o.ticket ?? null,
  ]);
  if (action === "erase") {
    await rm(file, { force: true });
    return EXIT.ok;
  }
  let cached = o.cache ? readCache(file, now()) : undefined;
  if (cached === undefined) {
    let keyText: string;
    try {
      keyText = await readFile(keyFile!, "utf8");
    } catch (err) {
      throw new CliFailure(
        ERR_CREDS_KEY,
        `cannot read the agent key ${q(keyFile)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    const r = await redeemed(
      {
        server: server!,
        environment: environment!,
        agent: agent!,
        key: agentKeyFromJwk(keyText),
        progress: (line) => io.err(line),
        allowInsecureHttp: o.insecureHttp,
      },
      { playbook: o.playbook!, params, ticket: o.ticket },
      system,
    );
    if (o.cache) writeCache(d.cacheDir, file, r);
    cached = {
      system: r.system,
      writ: r.writ,
      expiresAt: r.expiresAt.toISOString(),
      notes: r.notes,
      credential: r.credential,
    };
  }
  io.out(formatCredential(tool, cached.credential, { exportForm: o.export, execInfo: d.execInfo }));
  return EXIT.ok;
}

export interface Asking {
  readonly server: string;
  readonly environment: string;
  readonly agent: string;
  readonly key: AgentKey;
  readonly progress: (line: string) => void;
  readonly allowInsecureHttp: boolean;
}

/**
 * A writ for `intent` redeemed for `system`'s credential: directly (node:http, node:crypto; most of
 * a cold start saved), or through the agent SDK where it is needed (approvals, a server the direct
 * path leaves to the SDK's judgement). When the direct path was told the playbook needs approvers,
 * the SDK makes the approval request without asking the token exchange again: one request, one
 * `broker.approval_required` record.
 */
export async function redeemed(a: Asking, intent: Intent, system: DownstreamSystem): Promise<Redeemed> {
  const { redeemDirect } = await import("../downstream/direct.js");
  const direct = await redeemDirect(a, intent, system);
  if (direct !== undefined && direct !== "approval") return direct;
  const { agentClient } = await import("../downstream/client.js");
  const client = agentClient(a);
  const approvalRequired = direct === "approval";
  return client.redeem(system, await client.writ(intent, system, { approvalRequired }));
}
