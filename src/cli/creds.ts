/**
 * `writ creds`: a writ redeemed for a downstream credential, in the protocol each tool reads, so the
 * agent's own tools work unchanged (docs/downstream.md):
 *
 *   writ creds aws     … → AWS `credential_process` JSON (`Version: 1`, keys, `Expiration`)
 *   writ creds kubectl … → client-go exec plugin `ExecCredential` (client.authentication.k8s.io/v1)
 *   writ creds git     … get|store|erase → git credential helper (stdin/stdout key=value lines)
 *   writ creds github  … [--export] → `GH_TOKEN=<token>` for `gh`
 *
 * with `--playbook P --param k=v … [--ticket T] [--env E] [--server URL] [--key FILE] [--agent ID]`
 * (`k:=JSON` for a value that is not a string). It gets a baseline token (private_key_jwt + DPoP),
 * exchanges it for a writ (waiting for approval, with a progress line on stderr, when the playbook
 * needs one), redeems it, and caches the credential in the user's cache folder (files 0600, keyed
 * by server, environment, agent, tool, playbook, parameters and ticket) until 60 s before it
 * expires. Refused: exit 1 and the broker's reason on stderr; never a stack trace.
 */
import { createHash } from "node:crypto";
import { lstat, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { isWritError, q } from "../core/errors.js";
import {
  agentClient,
  agentKeyFromJwk,
  BrokerRefusal,
  ERR_CREDS_KEY,
  ERR_CREDS_PROTOCOL,
  ERR_CREDS_UNREACHABLE,
  type Redeemed,
} from "../downstream/client.js";
import type { DownstreamSystem } from "../downstream/types.js";
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

const EXEC_VERSIONS = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"];

/**
 * The ExecCredential version kubectl asked for (its kubeconfig's `exec.apiVersion`, passed in
 * KUBERNETES_EXEC_INFO): v1 since kubectl 1.22, v1beta1 before (Debian's kubectl is 1.20). An
 * answer in another version than the one asked for is refused by kubectl.
 */
export function execCredentialVersion(execInfo: string | undefined): string {
  if (execInfo === undefined || execInfo === "") return EXEC_VERSIONS[0]!;
  let asked: unknown;
  try {
    asked = (JSON.parse(execInfo) as { apiVersion?: unknown }).apiVersion;
  } catch {
    throw new CliFailure("ERR_USAGE", "KUBERNETES_EXEC_INFO is not JSON: is this run by kubectl?");
  }
  if (typeof asked !== "string" || !EXEC_VERSIONS.includes(asked))
    throw new CliFailure(
      "ERR_USAGE",
      `kubectl asks for ExecCredential ${q(asked)}: writ answers ${EXEC_VERSIONS.join(" or ")} (set exec.apiVersion in the kubeconfig)`,
    );
  return asked;
}

const TOOLS: Readonly<Record<string, DownstreamSystem>> = {
  aws: "aws",
  kubectl: "kubernetes",
  git: "github",
  github: "github",
};

/** A credential is used until this long before it expires. */
const MARGIN_MS = 60_000;
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
}

/** `k=v` (a string) or `k:=JSON`. */
export function parseParams(items: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const item of items) {
    const m = /^([A-Za-z_][A-Za-z0-9_.-]{0,127})(:?=)([\s\S]*)$/.exec(item);
    if (!m)
      throw new CliFailure("ERR_USAGE", `--param ${q(item)}: expected \`name=value\` or \`name:=JSON\``);
    const [, name, op, value] = m as unknown as [string, string, string, string];
    if (Object.hasOwn(out, name)) throw new CliFailure("ERR_USAGE", `--param ${q(name)} is given twice`);
    if (op === ":=") {
      try {
        out[name] = JSON.parse(value);
      } catch {
        throw new CliFailure("ERR_USAGE", `--param ${q(name)}: ${q(value)} is not JSON`);
      }
    } else out[name] = value;
  }
  return { ...out };
}

interface Cached {
  readonly system: DownstreamSystem;
  readonly writ: string;
  readonly expiresAt: string;
  readonly notes: readonly string[];
  readonly credential: Readonly<Record<string, unknown>>;
}

function cacheFile(dir: string, parts: readonly unknown[]): string {
  return join(dir, `${createHash("sha256").update(JSON.stringify(parts)).digest("hex")}.json`);
}

/** A cached credential still good for a minute; anything odd about the file, and it is not used. */
async function readCache(file: string, now: Date): Promise<Cached | undefined> {
  try {
    const st = await lstat(file);
    if (!st.isFile() || (st.mode & 0o077) !== 0) return undefined;
    if (typeof process.getuid === "function" && st.uid !== process.getuid()) return undefined;
    const c = JSON.parse(await readFile(file, "utf8")) as Cached;
    const expires = new Date(c.expiresAt).getTime();
    if (!Number.isFinite(expires) || expires - MARGIN_MS <= now.getTime()) return undefined;
    if (c.credential === null || typeof c.credential !== "object") return undefined;
    return c;
  } catch {
    return undefined;
  }
}

async function writeCache(dir: string, file: string, r: Redeemed): Promise<void> {
  const entry: Cached = {
    system: r.system,
    writ: r.writ,
    expiresAt: r.expiresAt.toISOString(),
    notes: r.notes,
    credential: r.credential,
  };
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(entry), { mode: 0o600 });
    await rename(tmp, file);
  } catch {
    // a cache that cannot be written only costs the next call an exchange
  }
}

function field(c: Readonly<Record<string, unknown>>, name: string): string {
  const v = c[name];
  if (typeof v !== "string" || v === "")
    throw new CliFailure(ERR_CREDS_PROTOCOL, `the credential has no \`${name}\``, EXIT.failure);
  return v;
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
    .action(async (tool: string, action: string | undefined, o: CredsOptions) => {
      try {
        setExit(await creds(tool, action, o, io, d));
      } catch (err) {
        setExit(report(io, err));
      }
    });
}

function report(io: Io, err: unknown): number {
  if (err instanceof BrokerRefusal) {
    io.err(`writ: refused (${err.reason}): ${err.description}`);
    return EXIT.no;
  }
  if (err instanceof CliFailure) {
    io.err(`writ: ${err.message}`);
    return err.exitCode;
  }
  if (isWritError(err)) {
    io.err(`writ: ${err.message}`);
    return err.code === ERR_CREDS_UNREACHABLE || err.code === ERR_CREDS_PROTOCOL ? EXIT.failure : EXIT.usage;
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
  let cached = o.cache ? await readCache(file, now()) : undefined;
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
    const client = agentClient({
      server: server!,
      environment: environment!,
      agent: agent!,
      key: agentKeyFromJwk(keyText),
      progress: (line) => io.err(line),
    });
    const token = await client.writ({ playbook: o.playbook!, params, ticket: o.ticket }, system);
    const r = await client.redeem(system, token);
    if (o.cache) await writeCache(d.cacheDir, file, r);
    cached = {
      system: r.system,
      writ: r.writ,
      expiresAt: r.expiresAt.toISOString(),
      notes: r.notes,
      credential: r.credential,
    };
  }
  const c = cached.credential;
  switch (tool) {
    case "aws":
      io.out(
        JSON.stringify({
          Version: 1,
          AccessKeyId: field(c, "accessKeyId"),
          SecretAccessKey: field(c, "secretAccessKey"),
          SessionToken: field(c, "sessionToken"),
          Expiration: new Date(field(c, "expiration")).toISOString(),
        }),
      );
      break;
    case "kubectl":
      io.out(
        JSON.stringify({
          apiVersion: execCredentialVersion(d.execInfo),
          kind: "ExecCredential",
          status: {
            token: field(c, "token"),
            expirationTimestamp: new Date(field(c, "expiration")).toISOString().replace(/\.\d{3}Z$/, "Z"),
          },
        }),
      );
      break;
    case "git": {
      const expiry = Math.floor(new Date(field(c, "expiration")).getTime() / 1000);
      io.out(`username=x-access-token\npassword=${field(c, "token")}\npassword_expiry_utc=${expiry}\n`);
      break;
    }
    case "github":
      io.out(`${o.export ? "export " : ""}GH_TOKEN=${field(c, "token")}`);
      break;
  }
  return EXIT.ok;
}
