/**
 * Downstream issuers (issue 11): a writ redeemed for the native credential of the system its grants
 * name — an AWS role session, a GitHub App installation token, a Kubernetes ServiceAccount token —
 * scoped to exactly the writ's grants (∩ ceiling − denies), living no longer than the writ, and
 * revoked with it.
 *
 * One interface, one module per system (`aws.ts`, `github.ts`, `kubernetes.ts`). The broker's own
 * credentials for each system come from the environment or files named here, never from
 * `writ.yaml` itself.
 */
import type { RuleText } from "../core/index.js";
import type { DownstreamOutcome } from "./refusal.js";

/** The systems a writ can be redeemed in. */
export type DownstreamSystem = "aws" | "github" | "kubernetes";

/** What an issuer sees of a writ: the stored writ's fields that scope and name the credential. */
export interface WritForIssuer {
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly environment: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** The writ's grants as issued (already within the ceiling and its denies). */
  readonly grants: readonly RuleText[];
  /** The runner class ceiling's denies, which the credential must also exclude. */
  readonly denies: readonly RuleText[];
  readonly sponsor?: string | undefined;
  readonly ticket?: string | undefined;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

/**
 * One object created downstream for a writ (a role session, a token, a Role/RoleBinding/Secret).
 * Recorded in the store *before* it is created (`state: "intended"`) and updated after
 * (`"created"`), so the reaper can remove it after a crash between the two.
 */
export interface DownstreamRecord {
  /** Unique per record (random). */
  readonly id: string;
  readonly system: DownstreamSystem;
  readonly environment: string;
  readonly writ: string;
  readonly agent: string;
  /** What kind of object (`sts-session`, `installation-token`, `role`, `rolebinding`, `secret`, …). */
  readonly kind: string;
  /** How to find it again to remove it: issuer-specific, JSON-serialisable, never a secret. */
  readonly locator: Readonly<Record<string, unknown>>;
  readonly state: "intended" | "created" | "removed";
  /** Nothing created for this record can be used after this instant. */
  readonly expiresAt: Date;
  readonly createdAt: Date;
  /**
   * An object that exists because its writ ended and must stay until `expiresAt` (AWS's "revoke
   * older sessions" deny): due by its own expiry only, not when its writ is revoked or expires.
   * Default false: an object made for a live writ, due as soon as the writ ends.
   */
  readonly outlivesWrit?: boolean | undefined;
}

/** The credential handed to the agent, in the system's own terms. */
export type DownstreamCredential =
  | {
      readonly system: "aws";
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken: string;
      readonly expiration: Date;
      /** Said to the agent when the session outlives the writ (STS's 900 s floor) and similar. */
      readonly notes: readonly string[];
    }
  | {
      readonly system: "github";
      readonly token: string;
      readonly expiration: Date;
      readonly repositories: readonly string[];
      readonly permissions: Readonly<Record<string, "read" | "write" | "admin">>;
      readonly notes: readonly string[];
    }
  | {
      readonly system: "kubernetes";
      readonly token: string;
      readonly expiration: Date;
      readonly server: string;
      readonly caData?: string | undefined;
      readonly notes: readonly string[];
    };

/** Record keeping an issuer does through the store: intent before the call, result after. */
export interface DownstreamLedger {
  /** Records an object about to be created (state `intended`); returns the record. */
  intend(r: Omit<DownstreamRecord, "state" | "createdAt">): Promise<DownstreamRecord>;
  /** Marks a record created, with the locator the system answered (e.g. a resourceVersion). */
  created(id: string, locator?: Readonly<Record<string, unknown>>): Promise<void>;
  /** Marks a record removed (its object no longer exists downstream). */
  removed(id: string): Promise<void>;
  /**
   * Records not yet removed whose writ has expired or been revoked, or that expired by `now` (one
   * that `outlivesWrit`: only once it expired).
   */
  due(now: Date): Promise<readonly DownstreamRecord[]>;
  /** Records of one writ, any state. */
  ofWrit(writ: string): Promise<readonly DownstreamRecord[]>;
}

/** Audit hook: every downstream call is audited (`downstream.<event>`). */
export type DownstreamAudit = (type: string, data: Record<string, unknown>) => Promise<unknown>;

export interface DownstreamIssuer {
  readonly system: DownstreamSystem;
  /**
   * The credential for `writ`, scoped to its grants of this system, or the refusal: an outcome
   * with `ok: false` and the reason (`downstream_scope_exceeds_writ`, `downstream_permission_missing`,
   * `downstream_no_grants`, `downstream_unavailable` …) — never a broader credential. Rejects only
   * on failures nobody expects (the ledger or the audit log down), which callers answer as
   * `downstream_unavailable` and audit.
   */
  issue(writ: WritForIssuer, now: Date): Promise<DownstreamOutcome<DownstreamCredential>>;
  /** Removes (or neutralises) one record's object downstream; idempotent (gone already is fine). */
  revoke(record: DownstreamRecord, now: Date): Promise<void>;
  /**
   * A kill switch for `scope` (one writ, one agent, or everything this issuer made): stops every
   * credential already handed out from working, e.g. AWS's "revoke older sessions" deny.
   */
  kill(scope: { readonly writ?: string; readonly agent?: string }, now: Date): Promise<void>;
}

/**
 * `downstream:` in `writ.yaml`, per environment: `downstream: { <env>: { aws?, github?, kubernetes? } }`.
 * Secrets are never written here: each system's credentials are named by an environment variable
 * or a file path, read and checked when the server starts (a coded error when missing or unusable).
 */
export interface DownstreamConfig {
  /** Environment name → the systems configured for it. */
  readonly environments: ReadonlyMap<string, EnvironmentDownstream>;
}

export interface EnvironmentDownstream {
  readonly aws?: AwsDownstreamConfig | undefined;
  readonly github?: GithubDownstreamConfig | undefined;
  readonly kubernetes?: KubernetesDownstreamConfig | undefined;
}

export interface AwsDownstreamConfig {
  /**
   * `role-session`: writ calls sts:AssumeRole with its own AWS keys; `web-identity`: writ calls
   * sts:AssumeRoleWithWebIdentity with a token its environment issuer signs, and holds no AWS keys.
   * Both pass the writ's session policy.
   */
  readonly mode: "role-session" | "web-identity";
  /** web-identity: the token's `aud`, the IAM OIDC provider's client id (default `sts.amazonaws.com`). */
  readonly audience?: string | undefined;
  readonly region: string;
  /** Playbook name (or `*`) → the role ARN its sessions assume. */
  readonly roles: ReadonlyMap<string, string>;
  /**
   * The account's `aws iam get-account-authorization-details` output (a file), read for the proof
   * of scoping: the role's own policies intersected with the session policy.
   */
  readonly authorizationDetails?: string | undefined;
  /** Override of the STS/IAM endpoint (tests, VPC endpoints); default the regional AWS endpoint. */
  readonly endpoint?: string | undefined;
  /** Where the broker's own AWS credentials come from: `env` (AWS_ACCESS_KEY_ID …) or a profile. */
  readonly credentials: { readonly from: "env" } | { readonly from: "profile"; readonly profile: string };
}

export interface GithubDownstreamConfig {
  readonly appId: string;
  readonly installationId: number;
  /** The App's private key (PEM): a file path or an environment variable's name, never the key. */
  readonly privateKey: { readonly file: string } | { readonly env: string };
  /** Default `https://api.github.com` (GitHub Enterprise: `https://HOST/api/v3`). */
  readonly apiUrl: string;
}

export interface KubernetesDownstreamConfig {
  /** The API server URL. */
  readonly server: string;
  /** CA bundle file for the API server (optional: the system's roots otherwise). */
  readonly caFile?: string | undefined;
  /** The broker's own bearer token: a file path or an environment variable's name. */
  readonly token: { readonly file: string } | { readonly env: string };
  /** Agent id (or `*`) → its ServiceAccount (`namespace/name`; `{agent}` is replaced). */
  readonly serviceAccounts: ReadonlyMap<string, string>;
  /** The audience of the TokenRequest (default: the API server's). */
  readonly audience?: string | undefined;
}

/**
 * A refusal by an issuer: the `reason` of its refused outcome (of a `WritError` with code
 * `ERR_DOWNSTREAM_REFUSED` when `revoke` or `kill` fails); the broker answers it as an OAuth error
 * carrying the reason, as for any other refusal.
 */
export type DownstreamReason =
  | "downstream_scope_exceeds_writ"
  | "downstream_permission_missing"
  | "downstream_no_grants"
  | "downstream_not_configured"
  | "downstream_unavailable"
  /** The credential's scope cannot be said within the system's size limit (AWS: a 2,048-character session policy). */
  | "downstream_policy_too_large";

/** Every `DownstreamReason`, for reading one back from an error. */
export const DOWNSTREAM_REASONS: readonly DownstreamReason[] = [
  "downstream_scope_exceeds_writ",
  "downstream_permission_missing",
  "downstream_no_grants",
  "downstream_not_configured",
  "downstream_unavailable",
  "downstream_policy_too_large",
];

export const ERR_DOWNSTREAM_REFUSED = "ERR_DOWNSTREAM_REFUSED";
/** Configuration of a downstream system unusable at start (a missing key file, a bad ARN …). */
export const ERR_DOWNSTREAM_CONFIG = "ERR_DOWNSTREAM_CONFIG";

/** What every issuer factory gets. */
export interface IssuerDeps {
  readonly ledger: DownstreamLedger;
  readonly audit: DownstreamAudit;
  /** Where environment-variable credentials are read from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  readonly clock?: (() => Date) | undefined;
  /** Signs AWS web-identity tokens under the environment's issuer (needed by web-identity mode). */
  readonly webIdentity?: import("./aws/web-identity.js").WebIdentitySigner | undefined;
}

/*
 * The factories, one per module, all async (they read and check their credentials at start and
 * throw `WritError(ERR_DOWNSTREAM_CONFIG, …)` when unusable):
 *   src/downstream/aws.ts         export function awsIssuer(cfg: AwsDownstreamConfig, deps: IssuerDeps): Promise<DownstreamIssuer>
 *   src/downstream/github.ts      export function githubIssuer(cfg: GithubDownstreamConfig, deps: IssuerDeps): Promise<DownstreamIssuer>
 *   src/downstream/kubernetes.ts  export function kubernetesIssuer(cfg: KubernetesDownstreamConfig, deps: IssuerDeps): Promise<DownstreamIssuer>
 */
