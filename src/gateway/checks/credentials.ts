/**
 * Per-writ credentials: an upstream with `credentials: { downstream }` is reached through the
 * session's writ's own connection, its credential minted by the downstream issuer
 * (`credentials.ts`). The writ is read again first: a revoked, expired or used-up one stops its
 * connections and is refused. Checked before a use is spent: a credential the issuer refuses costs
 * the writ nothing.
 */
import { q, type Upstream } from "../../core/index.js";
import { writForIssuer } from "../../downstream/index.js";
import { GatewayError } from "../errors.js";
import { definitionHash } from "../pins.js";
import type { UpstreamConnection } from "../upstreams.js";
import type { Call, CallCheck, CallEnv } from "./call.js";

/**
 * A listed tool's definition hash, computed once per definition the connection lists (its list is
 * replaced, never changed in place, when the upstream's tools change): not canonical JSON per call.
 */
const hashes = new WeakMap<object, string>();
function hashOf(tool: Parameters<typeof definitionHash>[0]): string {
  let h = hashes.get(tool);
  if (h === undefined) {
    h = definitionHash(tool);
    hashes.set(tool, h);
  }
  return h;
}

/** The writ's own connection, or the refusal; what the pool refuses (`scoped.acquire`) is thrown. */
async function writConnection(
  call: Call,
  env: CallEnv,
  u: Upstream,
): Promise<UpstreamConnection | GatewayError> {
  const system = u.credentials!.downstream;
  const { record, session: s, tool: k } = call;
  record.downstream = { system };
  const id = s.identity.writ?.id;
  if (id === undefined) {
    return new GatewayError(
      "downstream_no_grants",
      `upstream ${q(u.id)} gets ${system} credentials minted per writ, and this session has no writ`,
      { system },
    );
  }
  const stored = await env.deps.store.writs.get(id);
  const at = env.now();
  if (!stored || stored.agent !== s.identity.agent || stored.environment !== s.identity.environment) {
    return new GatewayError("writ_not_found", `writ ${q(id)} is not found`);
  }
  if (stored.maxUses !== undefined && stored.uses >= stored.maxUses) {
    env.scoped.closeWhere((x) => x.writ === id, "exhausted");
    return new GatewayError("writ_exhausted", `writ ${q(id)} has no uses left`);
  }
  if (stored.status !== "active" || stored.expiresAt.getTime() <= at.getTime()) {
    const revoked = stored.status !== "active";
    env.scoped.closeWhere((x) => x.writ === id, revoked ? "revoked" : "expired");
    return revoked
      ? new GatewayError("writ_revoked", `writ ${q(id)} is revoked`)
      : new GatewayError("writ_expired", `writ ${q(id)} has expired`);
  }
  const { conn, credentialExpiresAt } = await env.scoped.acquire(
    u,
    writForIssuer(env.deps.config, stored),
    at,
  );
  record.downstream = { system, credentialExpiresAt: credentialExpiresAt.toISOString() };
  // the writ's process must offer the very definition that was pinned and checked
  const tool = conn.tools().get(k.tool.name);
  if (!tool || hashOf(tool) !== k.hash) {
    return new GatewayError(
      "tool_quarantined",
      `${q(`${k.server}:${k.tool.name}`)} is ${tool ? "defined otherwise" : "missing"} on this writ's connection to the upstream`,
      { hash: tool ? hashOf(tool) : null },
    );
  }
  return conn;
}

export const credentials: CallCheck = (call, env) => {
  const u = env.gw.upstreams.get(call.server);
  if (!u?.credentials) return;
  return writConnection(call, env, u).then((conn) => {
    if (conn instanceof GatewayError) return conn;
    call.conn = conn;
    return undefined;
  });
};
