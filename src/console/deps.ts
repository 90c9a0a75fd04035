/** What the console is built from: the server's own objects, passed in by the composition root. */
import type { AuditLog } from "../audit/index.js";
import type { ApprovalService, Operator, ReplayCache } from "../broker/index.js";
import type { WritConfig } from "../core/index.js";
import type { RevokeResult, Store } from "../store/index.js";

export interface ConsoleDeps {
  /** writ.yaml as the approval service judges it (held tools appear as `mcp:<server>:<tool>` playbooks). */
  readonly config: WritConfig;
  readonly store: Pick<
    Store,
    "backend" | "holds" | "auditSearch" | "findings" | "liveWrits" | "history" | "operationalState" | "shadow"
  >;
  readonly audit: Pick<AuditLog, "verify" | "head" | "exportJson">;
  readonly approvals: ApprovalService;
  /** Kill switch (engage, lift, list) with the server's caches and downstream hooks. */
  readonly operator: Pick<Operator, "engageKill" | "liftKill" | "engagedKills">;
  /** For approvers' login and decision JWTs (each `jti` accepted once). */
  readonly replay: ReplayCache;
  /** The admin API's secret: operators sign in with it. */
  readonly adminToken: string;
  /** The public base URL (the audience of approvers' JWTs is `<base>/console/...`). */
  readonly baseUrl: () => string;
  /** Revokes one writ as the RFC 7009 endpoint does (store, audit, downstream, writ index). */
  readonly revokeWrit: (id: string, by: string) => Promise<RevokeResult>;
  /** `sha256:<hex>` of a value's canonical JSON: how held calls' arguments are bound. */
  readonly digest: (value: unknown) => string;
  /** Where a writ.yaml path is (line, column), for the inventory's and maturity's evidence. */
  readonly locate?: import("../operate/index.js").Locate | undefined;
  readonly clock?: (() => Date) | undefined;
  /** How long the Agents and Maturity pages serve one read of the store (ms; default 10 s, 0: every load). */
  readonly operateMaxAgeMs?: number | undefined;
}
