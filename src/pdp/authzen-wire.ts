/**
 * The AuthZEN Authorization API 1.0 as writ answers it (`authzen.ts`): the
 * bodies a caller sends to `POST /access/v1/evaluation` and `/evaluations` and what comes back.
 * Types only, for clients.
 */
import type { DecisionCode, Reason, ShadowRecord } from "../core/index.js";

export interface AuthzenSubject {
  /** writ decides for agents: any other type is answered `decision: false` (`unknown_agent`). */
  readonly type: "agent" | (string & {});
  /** The agent's id in writ.yaml. */
  readonly id: string;
}

export interface AuthzenAction {
  /** A writ action: `aws:s3:GetObject`, `k8s:apps/deployments:patch`, `mcp:fs:read_text_file`. */
  readonly name: string;
}

export interface AuthzenResource {
  /** Not used by writ (the action names the provider). */
  readonly type: string;
  /** The resource string: an ARN, `namespace/name`, `owner/repo`, a path. */
  readonly id: string;
}

export interface AuthzenContext {
  readonly environment: string;
  readonly ticket?: string;
  readonly writ_id?: string;
  readonly tainted?: boolean;
  readonly arguments?: Readonly<Record<string, unknown>>;
  readonly prompt_context_id?: string;
}

export interface AuthzenEvaluationRequest {
  readonly subject: AuthzenSubject;
  readonly action: AuthzenAction;
  readonly resource: AuthzenResource;
  readonly context: AuthzenContext;
}

export interface AuthzenEvaluationResponse {
  readonly decision: boolean;
  readonly context: {
    readonly reason_code: DecisionCode;
    readonly message: string;
    readonly reasons: readonly Reason[];
    /** What rules in shadow mode would have denied (docs/shadow.md); absent: nothing. */
    readonly shadow?: readonly ShadowRecord[];
  };
}

/** Several evaluations; top-level members are the defaults of each item (§7). */
export interface AuthzenEvaluationsRequest extends Partial<AuthzenEvaluationRequest> {
  readonly evaluations: readonly Partial<AuthzenEvaluationRequest>[];
  readonly options?: {
    readonly evaluations_semantic?: "execute_all" | "deny_on_first_deny" | "permit_on_first_permit";
  };
}

export interface AuthzenEvaluationsResponse {
  readonly evaluations: readonly AuthzenEvaluationResponse[];
}
