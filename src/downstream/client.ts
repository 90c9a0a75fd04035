/**
 * The agent's side of a redemption, for `writ creds`: a writ for one playbook intent whose audience
 * is the system's redemption endpoint, from the agent SDK (`client/`: baseline token, token
 * exchange, CIBA when the playbook needs approval, DPoP, `private_key_jwt`, nonces and short
 * slow-downs handled there), then redeemed at `POST /env/<env>/downstream/<system>` with a proof
 * bound to it for the system's credential. A refusal is the SDK's `WritRefusal` carrying the
 * broker's `reason`; a server that cannot be reached or answers something else than the protocol
 * says is a coded error (`ERR_CLIENT_UNREACHABLE`, `ERR_CLIENT_PROTOCOL`). No token is ever printed
 * by this module.
 */
import type { JsonWebKey } from "node:crypto";
import {
  createWritClient,
  ERR_CLIENT_OPTIONS,
  refusalFromResponse,
  type WritProgress,
} from "../client/index.js";
import { isWritError, q, WritError } from "../core/errors.js";
import {
  type AgentKey,
  ERR_CREDS_INSECURE_SERVER,
  type Intent,
  issuerOf,
  type Redeemed,
  redeemedOf,
  redemptionEndpoint,
  retryingLine,
} from "./agent.js";
import type { DownstreamSystem } from "./types.js";

export {
  type AgentKey,
  agentKeyFromJwk,
  ERR_CREDS_INSECURE_SERVER,
  ERR_CREDS_KEY,
  type Intent,
  type Redeemed,
} from "./agent.js";

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export interface AgentClientOptions {
  /** The broker's public base URL (what `writ serve` was told with `--public-url`). */
  readonly server: string;
  readonly environment: string;
  readonly agent: string;
  readonly key: AgentKey;
  readonly fetch?: Fetch | undefined;
  /** A line of progress (waiting for approval), for stderr. */
  readonly progress?: ((line: string) => void) | undefined;
  /** How long to wait for an approval at most, ms (default: until the request expires). */
  readonly approvalTimeoutMs?: number | undefined;
  /**
   * Plain HTTP to a server that is not this machine (`--insecure-http`). Default false: an `http:`
   * server must be loopback, as the agent SDK holds it; anything else is `ERR_CREDS_INSECURE_SERVER`.
   */
  readonly allowInsecureHttp?: boolean | undefined;
}

/** The progress the SDK reports, as the lines `writ creds` prints on stderr. */
function progressLine(
  playbook: string,
  approvalTimeoutMs: number | undefined,
  e: WritProgress,
): string | undefined {
  switch (e.kind) {
    case "retrying":
      return retryingLine(e.retryAfter);
    case "approval_requested": {
      const upTo = Math.min(e.expiresIn, (approvalTimeoutMs ?? Number.POSITIVE_INFINITY) / 1000);
      return `writ: playbook ${q(playbook)} needs approval: waiting for request ${e.authReqId} (up to ${Math.ceil(upTo)} s); approvers: writ approve ${e.authReqId}`;
    }
    case "approved":
      return `writ: request ${e.authReqId} approved`;
    default:
      return undefined;
  }
}

export function agentClient(opts: AgentClientOptions) {
  const server = opts.server.replace(/\/+$/, "");
  const issuer = issuerOf(server, opts.environment);
  const jwk = opts.key.key.export({ format: "jwk" });
  const allowInsecure = opts.allowInsecureHttp === true;
  let client: ReturnType<typeof createWritClient>;
  try {
    client = createWritClient({
      issuer,
      agentId: opts.agent,
      key: { ...jwk, ...(opts.key.kid === undefined ? {} : { kid: opts.key.kid }) } as JsonWebKey & {
        kty: string;
        d: string;
      },
      // the SDK's rule: plain HTTP to loopback only, unless allowed knowingly
      allowInsecureRequests: allowInsecure,
      ...(opts.fetch === undefined ? {} : { fetch: opts.fetch }),
    });
  } catch (err) {
    // the SDK refuses an http: issuer only when it is another machine's
    if (!allowInsecure && isWritError(err) && err.code === ERR_CLIENT_OPTIONS && /^http:/i.test(server))
      throw new WritError(
        ERR_CREDS_INSECURE_SERVER,
        `the server ${q(server)} is plain HTTP to another machine: use https, or pass --insecure-http to allow it knowingly`,
      );
    throw err;
  }

  /** A baseline token (the agent's standing permissions), for `resource` when given. */
  const baseline = (resource?: string): Promise<string> => client.baselineToken(resource);

  /** The audience a writ needs to be redeemed for `system`. */
  const audienceOf = (system: DownstreamSystem) => redemptionEndpoint(issuer, system);

  /**
   * A writ for `intent` with the audience `resource`: always a new one (each redemption spends a
   * use). `approvalRequired`: the broker already said the playbook needs approvers (the direct
   * path asked it): the approval request is made without asking the token exchange again.
   */
  async function writFor(
    intent: Intent,
    resource: string,
    o: { readonly approvalRequired?: boolean } = {},
  ): Promise<string> {
    const writ = await client.getWrit(
      {
        playbook: intent.playbook,
        params: intent.params,
        ...(intent.ticket === undefined ? {} : { ticket: intent.ticket }),
        resource,
      },
      {
        reuse: false,
        ...(o.approvalRequired === true ? { approvalRequired: true } : {}),
        ...(opts.approvalTimeoutMs === undefined ? {} : { approvalTimeout: opts.approvalTimeoutMs / 1000 }),
        onProgress: (e) => {
          const line = progressLine(intent.playbook, opts.approvalTimeoutMs, e);
          if (line !== undefined) opts.progress?.(line);
        },
      },
    );
    return writ.accessToken;
  }

  /** A writ for `intent`, its audience the redemption endpoint of `system`. */
  const writ = (intent: Intent, system: DownstreamSystem, o: { readonly approvalRequired?: boolean } = {}) =>
    writFor(intent, audienceOf(system), o);

  /** Redeems a writ for the system's credential. */
  async function redeem(system: DownstreamSystem, token: string): Promise<Redeemed> {
    const where = audienceOf(system);
    const res = await client.fetchWithWrit(where, { method: "POST" }, { writ: { accessToken: token } });
    if (res.status !== 200) throw await refusalFromResponse(res, where);
    return redeemedOf(await res.text(), system, where);
  }

  return { baseline, writ, writFor, redeem, issuer, audienceOf };
}

export type AgentClient = ReturnType<typeof agentClient>;
