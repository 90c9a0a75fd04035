/**
 * Turning a playbook run into the grants of a writ: parameters substituted (escaped) into the
 * grant templates and compiled. Checking the parameters against the playbook's JSON Schema, the
 * ceiling, the ticket, the window and the approvals is the caller's job (the broker), in that order.
 */
import type { ActiveWrit, Grant, Playbook } from "./model.js";
import { compileRule } from "./permission.js";
import { substitute } from "./template.js";

export function playbookGrants(playbook: Playbook, params: Readonly<Record<string, unknown>>): Grant[] {
  return playbook.grants.map((t) => ({
    kind: "grant",
    rule: compileRule({ action: substitute(t.action, params), resource: substitute(t.resource, params) }),
    path: t.path,
  }));
}

export interface WritInit {
  readonly id: string;
  readonly agent: string;
  readonly environment: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly usesLeft?: number | undefined;
}

export function instantiateWrit(
  playbook: Playbook,
  params: Readonly<Record<string, unknown>>,
  init: WritInit,
): ActiveWrit {
  return { kind: "writ", playbook: playbook.id, grants: playbookGrants(playbook, params), ...init };
}
