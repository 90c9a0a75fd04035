/**
 * What `writ creds` shares with its start-up fast path (creds-fast.ts): the tools, the cache (files
 * 0600 under the user's cache folder, keyed by server, environment, agent, system, playbook,
 * parameters and ticket) and each tool's output format. Kept small: the fast path loads this alone —
 * synchronous node:fs (loaded with Node itself; node:fs/promises is not) and the hash in plain
 * JavaScript (node:crypto costs a start several milliseconds).
 */
import { lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { q } from "../core/errors.js";
import type { Redeemed } from "../downstream/agent.js";
import type { DownstreamSystem } from "../downstream/types.js";
import { CliFailure, EXIT } from "./output.js";
import { sha256Hex } from "./sha256.js";

/** The redeemed credential lacks what the tool needs (docs/errors.md). */
const ERR_CREDS_PROTOCOL = "ERR_CREDS_PROTOCOL";

/** A credential is used until this long before it expires. */
export const MARGIN_MS = 60_000;

export const TOOLS: Readonly<Record<string, DownstreamSystem>> = {
  aws: "aws",
  kubectl: "kubernetes",
  git: "github",
  github: "github",
};

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

/** A redemption as the cache holds it: its expiry an ISO string. */
export type Cached = Omit<Redeemed, "expiresAt"> & { readonly expiresAt: string };

/** The cache file of one request. */
export function cacheFile(dir: string, parts: readonly unknown[]): string {
  return join(dir, `${sha256Hex(JSON.stringify(parts))}.json`);
}

/** A cached credential still good for a minute; anything odd about the file, and it is not used. */
export function readCache(file: string, now: Date): Cached | undefined {
  try {
    const st = lstatSync(file);
    if (!st.isFile() || (st.mode & 0o077) !== 0) return undefined;
    if (typeof process.getuid === "function" && st.uid !== process.getuid()) return undefined;
    const c = JSON.parse(readFileSync(file, "utf8")) as Cached;
    const expires = new Date(c.expiresAt).getTime();
    if (!Number.isFinite(expires) || expires - MARGIN_MS <= now.getTime()) return undefined;
    if (c.credential === null || typeof c.credential !== "object") return undefined;
    return c;
  } catch {
    return undefined;
  }
}

export function writeCache(dir: string, file: string, r: Redeemed): void {
  const entry: Cached = {
    system: r.system,
    writ: r.writ,
    expiresAt: r.expiresAt.toISOString(),
    notes: r.notes,
    credential: r.credential,
  };
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, file);
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

/**
 * The credential as the tool reads it: aws's `credential_process` JSON, kubectl's ExecCredential,
 * git's credential-helper answer, or gh's `GH_TOKEN=`.
 */
export function formatCredential(
  tool: string,
  c: Readonly<Record<string, unknown>>,
  opts: { readonly exportForm: boolean; readonly execInfo?: string | undefined },
): string {
  switch (tool) {
    case "aws":
      return JSON.stringify({
        Version: 1,
        AccessKeyId: field(c, "accessKeyId"),
        SecretAccessKey: field(c, "secretAccessKey"),
        SessionToken: field(c, "sessionToken"),
        Expiration: new Date(field(c, "expiration")).toISOString(),
      });
    case "kubectl":
      return JSON.stringify({
        apiVersion: execCredentialVersion(opts.execInfo),
        kind: "ExecCredential",
        status: {
          token: field(c, "token"),
          expirationTimestamp: new Date(field(c, "expiration")).toISOString().replace(/\.\d{3}Z$/, "Z"),
        },
      });
    case "git": {
      const expiry = Math.floor(new Date(field(c, "expiration")).getTime() / 1000);
      return `username=x-access-token\npassword=${field(c, "token")}\npassword_expiry_utc=${expiry}\n`;
    }
    case "github":
      return `${opts.exportForm ? "export " : ""}GH_TOKEN=${field(c, "token")}`;
  }
  throw new CliFailure("ERR_USAGE", `unknown tool ${q(tool)}: aws, kubectl, git or github`);
}
