/**
 * Held calls: an irreversible tool's call (or a privileged one in a tainted session, when the tool
 * says `whenTainted: hold`) waits for an out-of-band approval bound to the hash of its exact
 * arguments. The broker's approval service keeps the requests, so approvers use the same
 * `writ approve` and approvals API as for writs: the subject is the agent, the environment, the
 * pseudo-playbook `mcp:<server>:<tool>` and, as parameters, the arguments' digest and the resources
 * the call touches. Approval for arguments A never admits arguments B: B's digest, hence its
 * binding, differs. An approval is used once and expires with its request.
 */
import { randomBytes } from "node:crypto";
import { type ApprovalService, approvalBinding } from "../broker/index.js";
import { isWritError, type Playbook, q, type WritConfig } from "../core/index.js";
import type { Store } from "../store/index.js";
import { GatewayError } from "./errors.js";

/** The pseudo-playbook an approval request for a held tool call names. */
export function toolSubject(server: string, tool: string): string {
  return `mcp:${server}:${tool}`;
}

/**
 * The config as the approval deciders must see it: every tool whose calls can be held appears as
 * a playbook `mcp:<server>:<tool>` with its approval policy in every environment, so the approval
 * service judges a held call's request by the tool's policy. (Names with `:` cannot collide with
 * writ.yaml playbooks.)
 */
export function withToolApprovals(config: WritConfig): WritConfig {
  const gw = config.gateway;
  if (gw === undefined) return config;
  const extra = new Map<string, Playbook>();
  const envs = [...config.environments.keys()];
  for (const u of gw.upstreams.values()) {
    for (const t of u.tools.values()) {
      if (t.approval === undefined) continue;
      const id = toolSubject(t.server, t.name);
      extra.set(id, {
        kind: "playbook",
        id,
        description: `held calls of MCP tool ${q(`${t.server}:${t.name}`)}`,
        parameters: { type: "object" },
        grants: [],
        ttlSeconds: t.approvalTtlSeconds,
        risk: "high",
        environments: envs,
        ticket: "none",
        approval: new Map(envs.map((e) => [e, t.approval!])),
        allowSelfApproval: false,
      });
    }
  }
  if (extra.size === 0) return config;
  return { ...config, playbooks: new Map([...config.playbooks, ...extra]) };
}

export interface HeldCall {
  readonly agent: string;
  readonly environment: string;
  readonly server: string;
  readonly tool: string;
  readonly argumentsDigest: string;
  /**
   * The exact arguments, kept beside the hold so approvers see what they approve (the console
   * shows them after checking they hash to `argumentsDigest`); removed with the hold.
   */
  readonly arguments?: unknown;
  readonly resources: readonly string[];
  /** Who asked: the sponsor when the token has one, else the agent. */
  readonly requester: string;
  readonly ttlSeconds: number;
  readonly why: "irreversible" | "tainted";
}

/**
 * Lets a held call through once its approval is granted (consuming it: the approval's id), or
 * returns its refusal naming the approval request: `approval_required` (a new request),
 * `approval_pending`, `approval_denied`. A failing store or approval service is thrown.
 */
export async function admitHeld(
  store: Pick<Store, "holds">,
  approvals: ApprovalService,
  call: HeldCall,
  now: Date,
): Promise<string | GatewayError> {
  const subject = {
    agent: call.agent,
    playbook: toolSubject(call.server, call.tool),
    params: { arguments: call.argumentsDigest, resources: [...call.resources], why: call.why },
    environment: call.environment,
  };
  const binding = approvalBinding(subject);
  const holds = store.holds;
  const row = await holds.find(binding);
  if (row !== undefined) {
    const status = await approvals.status(row.requestId, { binding, now }).catch((err) => {
      if (isWritError(err) && err.code.startsWith("ERR_APPROVAL")) return undefined;
      throw err;
    });
    const detail = { approval: row.requestId, binding };
    switch (status?.status) {
      case "approved":
        try {
          await approvals.consume(row.requestId, `call_${randomBytes(12).toString("base64url")}`, {
            binding,
            now,
          });
        } catch (err) {
          if (!(isWritError(err) && err.code.startsWith("ERR_APPROVAL"))) throw err;
          return new GatewayError(
            "approval_required",
            `approval ${q(row.requestId)} was used already`,
            detail,
          );
        }
        await holds.clear(binding);
        return row.requestId;
      case "pending":
        return new GatewayError(
          "approval_pending",
          `held for approval ${q(row.requestId)}: the approvers have not decided yet (expires ${status.expiresAt.toISOString()})`,
          { ...detail, expiresAt: status.expiresAt.toISOString() },
        );
      case "denied":
        return new GatewayError(
          "approval_denied",
          `approval ${q(row.requestId)} for these exact arguments was denied`,
          detail,
        );
      default:
        break; // expired, consumed or gone: ask again
    }
  }
  const request = await approvals.createRequest(
    { ...subject, requester: call.requester, expiresAt: new Date(now.getTime() + call.ttlSeconds * 1000) },
    { now },
  );
  const heldArguments = call.arguments === undefined ? null : JSON.stringify(call.arguments);
  await holds.record({ binding, requestId: request.id, createdAt: now, arguments: heldArguments });
  return new GatewayError(
    "approval_required",
    `${call.why === "irreversible" ? "an irreversible tool" : "a privileged tool in a tainted session"}: held for approval ${q(request.id)}; retry the same call once it is approved (\`writ approve ${request.id}\`)`,
    { approval: request.id, binding, expiresAt: request.expiresAt.toISOString() },
  );
}
