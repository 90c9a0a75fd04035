/**
 * The `downstream:` section of writ.yaml (issue 11): per environment, which AWS account and roles,
 * which GitHub App installation, which Kubernetes cluster a writ can be redeemed in. Checked with
 * the loader's `Checker`, so every problem carries file, line, column, path and a stable code.
 *
 * Secrets never live in writ.yaml: the broker's own keys and tokens are named as `{file: PATH}` or
 * `{env: NAME}` and read when the server starts (src/downstream). A literal key or token written
 * here — as a plain string where a reference belongs, under a key such as `secretAccessKey`, or
 * anywhere in the section in a recognisable shape (a PEM block, an AWS access key id, a GitHub
 * token, a JWT) — is refused with `ERR_CONFIG_DOWNSTREAM_SECRET`, and the message never repeats it.
 */
import { resolve } from "node:path";
import { type Path, q } from "../core/index.js";
import type {
  AwsDownstreamConfig,
  DownstreamConfig,
  EnvironmentDownstream,
  GithubDownstreamConfig,
  KubernetesDownstreamConfig,
} from "../downstream/types.js";
import type { Checker } from "./load.js";
import { SHAPES } from "./schema.js";

type Obj = Record<string, unknown>;

export interface DownstreamContext {
  readonly environments: ReadonlySet<string>;
  readonly playbooks: ReadonlySet<string>;
  /** Agent id → the environments it may work in. */
  readonly agents: ReadonlyMap<string, readonly string[]>;
  /** Relative `file:` references are resolved against this directory. */
  readonly baseDir: string;
}

const SYSTEMS = ["aws", "github", "kubernetes"] as const;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const ROLE_ARN = /^arn:aws(?:-cn|-us-gov|-iso|-iso-b)?:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
/** An IAM OIDC provider client id: up to 255 characters (CreateOpenIDConnectProvider), printable, no spaces. */
const AUDIENCE = /^[\x21-\x7e]{1,255}$/;
const PROFILE = /^[A-Za-z0-9_.+@-]{1,64}$/;
const APP_ID = /^(?:\d{1,20}|Iv[0-9A-Za-z.]{1,40})$/;
const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;
const MAX_INSTALLATION_ID = Number.MAX_SAFE_INTEGER;

/** Keys that would hold a credential itself: refused with the secret code, not as a mere unknown key. */
const SECRET_KEYS = new Set(
  [
    "accessKeyId",
    "secretAccessKey",
    "sessionToken",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "password",
    "secret",
    "clientSecret",
    "webhookSecret",
    "bearerToken",
    "clientKeyData",
    "client-key-data",
  ].map((k) => k.toLowerCase()),
);

/** Shapes of credentials that must never be written into writ.yaml, by what they are. */
const SECRET_SHAPES: readonly [RegExp, string][] = [
  [/-----BEGIN [A-Z0-9 ]*(?:PRIVATE KEY|CERTIFICATE)-----/, "a PEM block"],
  [/\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/, "an AWS access key id"],
  [/\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/, "a GitHub token"],
  [/\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/, "a JWT"],
];

function secretShape(s: string): string | undefined {
  for (const [re, what] of SECRET_SHAPES) if (re.test(s)) return what;
  return undefined;
}

/** Walks the whole section: any string shaped like a credential is refused where it stands. */
function refuseLiteralSecrets(c: Checker, v: unknown, path: Path): boolean {
  let found = false;
  const todo: [unknown, Path][] = [[v, path]];
  while (todo.length > 0) {
    const [node, at] = todo.pop()!;
    if (typeof node === "string") {
      const what = secretShape(node);
      if (what) {
        c.error(
          "ERR_CONFIG_DOWNSTREAM_SECRET",
          at,
          `holds what looks like ${what}: secrets never go in writ.yaml; name a file (\`{file: PATH}\`) or an environment variable (\`{env: NAME}\`)`,
        );
        found = true;
      }
    } else if (node !== null && typeof node === "object") {
      for (const [k, item] of Object.entries(node)) {
        todo.push([item, [...at, Array.isArray(node) ? Number(k) : k]]);
      }
    }
  }
  return found;
}

/** A string of the section; one shaped like a credential was refused already and is not repeated. */
function text(c: Checker, v: unknown, path: Path): string | undefined {
  if (typeof v === "string" && secretShape(v)) return undefined;
  return c.string(v, path);
}

/** Refuses keys that would hold a credential, before the unknown-key check names them. */
function refuseSecretKeys(c: Checker, obj: Obj, path: Path): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(obj)) {
    if (SECRET_KEYS.has(k.toLowerCase())) {
      c.error(
        "ERR_CONFIG_DOWNSTREAM_SECRET",
        [...path, k],
        `${q(k)}: the broker's credentials never go in writ.yaml; they come from the environment or a file named here`,
        { key: true },
      );
    } else out[k] = v;
  }
  return out;
}

/** A map key naming a declared thing (an environment, a playbook, an agent); the problem points at the key. */
function refKey(
  c: Checker,
  name: string,
  path: Path,
  what: string,
  known: { has(k: string): boolean },
): boolean {
  if (known.has(name)) return true;
  c.error("ERR_CONFIG_UNKNOWN_REF", path, `unknown ${what} ${q(name)}`, { key: true });
  return false;
}

/** `{file: PATH}` or `{env: NAME}`; a plain string is a literal secret and refused. */
function secretRef(
  c: Checker,
  v: unknown,
  path: Path,
  baseDir: string,
): { readonly file: string } | { readonly env: string } | undefined {
  if (typeof v === "string") {
    // a string shaped like a key was refused already, by what it looks like
    if (secretShape(v)) return undefined;
    c.error(
      "ERR_CONFIG_DOWNSTREAM_SECRET",
      path,
      "a literal secret is refused: name a file (`{file: PATH}`) or an environment variable (`{env: NAME}`)",
    );
    return undefined;
  }
  const obj = c.map(v, path, "`{file: PATH}` or `{env: NAME}`");
  if (!obj) return undefined;
  const keys = Object.keys(obj);
  // exactly the keys of one of the two shapes, refused with the secret code rather than as unknown keys
  const named = [SHAPES.secretFile, SHAPES.secretEnv].find(
    (s) => keys.length === s.required.length && s.required.every((k) => keys.includes(k)),
  );
  if (!named) {
    c.error("ERR_CONFIG_DOWNSTREAM_SECRET", path, "expected exactly one of `{file: PATH}` or `{env: NAME}`");
    return undefined;
  }
  if (named === SHAPES.secretEnv) {
    const name = text(c, obj.env, [...path, "env"]);
    if (name === undefined) return undefined;
    if (!ENV_NAME.test(name)) {
      c.error(
        "ERR_CONFIG_DOWNSTREAM_SECRET",
        [...path, "env"],
        "expected an environment variable's name (letters, digits, `_`; not starting with a digit)",
      );
      return undefined;
    }
    return { env: name };
  }
  const file = text(c, obj.file, [...path, "file"]);
  return file === undefined ? undefined : { file: resolve(baseDir, file) };
}

const CREDENTIALS = "must not carry credentials";

/** An absolute https URL without credentials, query or fragment; plain http only on loopback. */
function endpointUrl(c: Checker, v: unknown, path: Path): string | undefined {
  const s = text(c, v, path);
  if (s === undefined) return undefined;
  let why: string | undefined;
  try {
    const u = new URL(s);
    const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
    if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback))
      why = "expected https (plain http only to a loopback address)";
    else if (u.username !== "" || u.password !== "") why = CREDENTIALS;
    else if (u.search !== "" || u.hash !== "" || s.includes("#")) why = "must have no query or fragment";
  } catch {
    why = "not an absolute URL";
  }
  if (why) {
    // a URL carrying credentials is not repeated in the problem
    c.error("ERR_CONFIG_DOWNSTREAM_URL", path, why === CREDENTIALS ? `the URL ${why}` : `${q(s)}: ${why}`);
    return undefined;
  }
  return s.replace(/\/+$/, "");
}

function parseAws(
  c: Checker,
  v: unknown,
  path: Path,
  ctx: DownstreamContext,
): AwsDownstreamConfig | undefined {
  const raw = c.map(v, path);
  if (!raw) return undefined;
  const obj = refuseSecretKeys(c, raw, path);
  c.shape(obj, path, SHAPES.downstreamAws);
  let mode: AwsDownstreamConfig["mode"] = "role-session";
  if (obj.mode !== undefined) {
    if (obj.mode === "role-session" || obj.mode === "web-identity") mode = obj.mode;
    else
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "mode"],
        `mode ${q(obj.mode)}: expected \`role-session\` or \`web-identity\``,
      );
  }
  let region: string | undefined;
  if (obj.region !== undefined) {
    region = text(c, obj.region, [...path, "region"]);
    if (region !== undefined && !REGION.test(region)) {
      c.error(
        "ERR_CONFIG_DOWNSTREAM_REGION",
        [...path, "region"],
        `region ${q(region)}: expected an AWS region name such as \`eu-west-1\``,
      );
      region = undefined;
    }
  }
  const roles = new Map<string, string>();
  if (obj.roles !== undefined) {
    const rp = [...path, "roles"];
    const all = c.map(obj.roles, rp, "a map of playbook name (or `*`) to role ARN");
    if (all && Object.keys(all).length === 0)
      c.error("ERR_CONFIG_VALUE", rp, "name at least one role (a playbook, or `*` for every playbook)");
    for (const [name, arn] of Object.entries(all ?? {})) {
      if (name !== "*" && !refKey(c, name, [...rp, name], "playbook", ctx.playbooks)) continue;
      const s = text(c, arn, [...rp, name]);
      if (s === undefined) continue;
      if (!ROLE_ARN.test(s)) {
        c.error(
          "ERR_CONFIG_DOWNSTREAM_ARN",
          [...rp, name],
          `${q(s)}: expected an IAM role ARN, \`arn:aws:iam::ACCOUNT:role/NAME\` (12-digit account)`,
        );
        continue;
      }
      roles.set(name, s);
    }
  }
  const authorizationDetails =
    obj.authorizationDetails === undefined
      ? undefined
      : text(c, obj.authorizationDetails, [...path, "authorizationDetails"]);
  const endpoint =
    obj.endpoint === undefined ? undefined : endpointUrl(c, obj.endpoint, [...path, "endpoint"]);
  let audience: string | undefined;
  if (obj.audience !== undefined) {
    const ap = [...path, "audience"];
    audience = text(c, obj.audience, ap);
    if (audience !== undefined && mode !== "web-identity") {
      c.error(
        "ERR_CONFIG_DOWNSTREAM_AUDIENCE",
        ap,
        "`audience` is the web-identity token's `aud`: set it only with `mode: web-identity`",
      );
      audience = undefined;
    } else if (audience !== undefined && !AUDIENCE.test(audience)) {
      c.error(
        "ERR_CONFIG_DOWNSTREAM_AUDIENCE",
        ap,
        `audience ${q(audience)}: expected an IAM OIDC provider client id (1–255 printable characters, no spaces)`,
      );
      audience = undefined;
    }
  }
  let credentials: AwsDownstreamConfig["credentials"] = { from: "env" };
  if (obj.credentials !== undefined) {
    const cp = [...path, "credentials"];
    if (mode === "web-identity") {
      c.error(
        "ERR_CONFIG_VALUE",
        cp,
        "in `web-identity` mode writ holds no AWS credentials: it assumes the role with a token its issuer signs",
      );
    }
    const cr = c.map(obj.credentials, cp, "`{from: env}` or `{from: profile, profile: NAME}`");
    if (cr) {
      if (cr.from === "env") c.shape(cr, cp, SHAPES.awsCredentialsEnv);
      else if (cr.from === "profile") {
        c.shape(cr, cp, SHAPES.awsCredentialsProfile);
        const profile = cr.profile === undefined ? undefined : text(c, cr.profile, [...cp, "profile"]);
        if (profile !== undefined && !PROFILE.test(profile))
          c.error("ERR_CONFIG_VALUE", [...cp, "profile"], `profile ${q(profile)}: not a profile name`);
        else if (profile !== undefined) credentials = { from: "profile", profile };
      } else
        c.error("ERR_CONFIG_VALUE", [...cp, "from"], `from ${q(cr.from)}: expected \`env\` or \`profile\``);
    }
  }
  if (region === undefined || roles.size === 0) return undefined;
  return {
    mode,
    ...(audience !== undefined ? { audience } : {}),
    region,
    roles,
    authorizationDetails:
      authorizationDetails === undefined ? undefined : resolve(ctx.baseDir, authorizationDetails),
    endpoint,
    credentials,
  };
}

function parseGithub(
  c: Checker,
  v: unknown,
  path: Path,
  ctx: DownstreamContext,
): GithubDownstreamConfig | undefined {
  const raw = c.map(v, path);
  if (!raw) return undefined;
  const obj = refuseSecretKeys(c, raw, path);
  c.shape(obj, path, SHAPES.downstreamGithub);
  let appId: string | undefined;
  if (obj.appId !== undefined) {
    const s = typeof obj.appId === "number" ? String(obj.appId) : obj.appId;
    if (typeof s === "string" && APP_ID.test(s)) appId = s;
    else
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "appId"],
        `appId ${q(obj.appId)}: expected the App's numeric id (or its client id, \`Iv…\`)`,
      );
  }
  let installationId: number | undefined;
  if (obj.installationId !== undefined) {
    const n = obj.installationId;
    if (typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= MAX_INSTALLATION_ID)
      installationId = n;
    else
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "installationId"],
        `installationId ${q(n)}: expected the installation's numeric id`,
      );
  }
  const privateKey =
    obj.privateKey === undefined
      ? undefined
      : secretRef(c, obj.privateKey, [...path, "privateKey"], ctx.baseDir);
  const apiUrl =
    obj.apiUrl === undefined ? "https://api.github.com" : endpointUrl(c, obj.apiUrl, [...path, "apiUrl"]);
  if (appId === undefined || installationId === undefined || !privateKey || apiUrl === undefined)
    return undefined;
  return { appId, installationId, privateKey, apiUrl };
}

/** `namespace/name` with `{agent}` replaced by `agent`: a DNS label and a DNS subdomain. */
function serviceAccountProblem(template: string, agent: string): string | undefined {
  const parts = template.replaceAll("{agent}", agent).split("/");
  if (parts.length !== 2) return "expected `namespace/name`";
  const [ns, name] = parts as [string, string];
  if (!DNS_LABEL.test(ns))
    return `namespace ${q(ns)} is not a DNS label (lower-case letters, digits, \`-\`; at most 63)`;
  if (!DNS_SUBDOMAIN.test(name) || name.split(".").some((l) => !DNS_LABEL.test(l)))
    return `name ${q(name)} is not a DNS subdomain (lower-case letters, digits, \`-\`, \`.\`; at most 253)`;
  return undefined;
}

function parseKubernetes(
  c: Checker,
  v: unknown,
  path: Path,
  env: string,
  ctx: DownstreamContext,
): KubernetesDownstreamConfig | undefined {
  const raw = c.map(v, path);
  if (!raw) return undefined;
  const obj = refuseSecretKeys(c, raw, path);
  c.shape(obj, path, SHAPES.downstreamKubernetes);
  const server = obj.server === undefined ? undefined : endpointUrl(c, obj.server, [...path, "server"]);
  const caFile = obj.caFile === undefined ? undefined : text(c, obj.caFile, [...path, "caFile"]);
  const token =
    obj.token === undefined ? undefined : secretRef(c, obj.token, [...path, "token"], ctx.baseDir);
  let audience: string | undefined;
  if (obj.audience !== undefined) {
    audience = text(c, obj.audience, [...path, "audience"]);
    if (audience !== undefined && /[\s\p{Cc}]/u.test(audience)) {
      c.error("ERR_CONFIG_VALUE", [...path, "audience"], "an audience holds no spaces or control characters");
      audience = undefined;
    }
  }
  const serviceAccounts = new Map<string, string>();
  if (obj.serviceAccounts !== undefined) {
    const sp = [...path, "serviceAccounts"];
    const all = c.map(obj.serviceAccounts, sp, "a map of agent id (or `*`) to `namespace/name`");
    if (all && Object.keys(all).length === 0)
      c.error("ERR_CONFIG_VALUE", sp, "name at least one ServiceAccount (an agent, or `*` for every agent)");
    for (const [agent, sa] of Object.entries(all ?? {})) {
      if (agent !== "*" && !refKey(c, agent, [...sp, agent], "agent", ctx.agents)) continue;
      const s = text(c, sa, [...sp, agent]);
      if (s === undefined) continue;
      // `*` is checked with every agent that works in this environment (an `_` in an id is no DNS name)
      const agents =
        agent === "*" ? [...ctx.agents].filter(([, envs]) => envs.includes(env)).map(([id]) => id) : [agent];
      const why = [...agents, "agent"].map((a) => serviceAccountProblem(s, a)).find((p) => p !== undefined);
      if (why) {
        c.error("ERR_CONFIG_DOWNSTREAM_NAME", [...sp, agent], `${q(s)}: ${why}`);
        continue;
      }
      serviceAccounts.set(agent, s);
    }
  }
  if (server === undefined || !token || serviceAccounts.size === 0) return undefined;
  return {
    server,
    caFile: caFile === undefined ? undefined : resolve(ctx.baseDir, caFile),
    token,
    serviceAccounts,
    audience,
  };
}

/** `downstream:` → the model; undefined when the section is absent (no downstream systems). */
export function parseDownstream(
  c: Checker,
  v: unknown,
  ctx: DownstreamContext,
): DownstreamConfig | undefined {
  if (v === undefined || v === null) return undefined;
  const root = ["downstream"];
  const all = c.map(v, root, "a map of environment name to its downstream systems");
  if (!all) return undefined;
  const before = c.problems.length;
  refuseLiteralSecrets(c, all, root);
  const environments = new Map<string, EnvironmentDownstream>();
  for (const [env, sv] of Object.entries(all)) {
    const path = [...root, env];
    if (!refKey(c, env, path, "environment", ctx.environments)) continue;
    const obj = c.map(sv, path, "a map with `aws`, `github` or `kubernetes`");
    if (!obj) continue;
    c.shape(obj, path, SHAPES.downstreamEnvironment);
    if (!SYSTEMS.some((s) => obj[s] !== undefined)) {
      c.error("ERR_CONFIG_VALUE", path, "configure at least one of `aws`, `github`, `kubernetes`");
      continue;
    }
    const aws = obj.aws === undefined ? undefined : parseAws(c, obj.aws, [...path, "aws"], ctx);
    const github =
      obj.github === undefined ? undefined : parseGithub(c, obj.github, [...path, "github"], ctx);
    const kubernetes =
      obj.kubernetes === undefined
        ? undefined
        : parseKubernetes(c, obj.kubernetes, [...path, "kubernetes"], env, ctx);
    environments.set(env, { aws, github, kubernetes });
  }
  if (c.problems.slice(before).some((p) => p.severity === "error")) return undefined;
  return { environments };
}
