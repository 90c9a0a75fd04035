/**
 * The token endpoint's grant types, one file each: adding one is a file and a line in this table.
 * The endpoint looks the `grant_type` up here, authenticates the client, checks the DPoP proof the
 * entry asks for, then hands over to the entry's handler, which returns the answer or the refusal
 * for the endpoint to answer.
 */
import type { AuthenticatedClient } from "../client-auth.js";
import type { DpopProof } from "../dpop.js";
import {
  type BrokerDeps,
  CIBA_GRANT,
  type OAuthRequest,
  type OAuthResponse,
  type Outcome,
  TOKEN_EXCHANGE,
} from "../oauth.js";
import { cibaGrant } from "./ciba.js";
import { baselineToken } from "./client-credentials.js";
import { exchange } from "./token-exchange.js";

type Handler<P> = (
  env: string,
  client: AuthenticatedClient,
  proof: P,
  req: OAuthRequest,
  deps: BrokerDeps,
) => Promise<Outcome<OAuthResponse>>;

/** A grant type: whether this server serves it, whether it needs a DPoP proof, and its handler. */
export type GrantType = { readonly enabled: (deps: BrokerDeps) => boolean } & (
  | { readonly dpop: "optional"; readonly handle: Handler<DpopProof | undefined> }
  | { readonly dpop: "required"; readonly handle: Handler<DpopProof> }
);

const always = () => true;

export const GRANT_TYPES: ReadonlyMap<string, GrantType> = new Map<string, GrantType>([
  ["client_credentials", { enabled: always, dpop: "optional", handle: baselineToken }],
  [TOKEN_EXCHANGE, { enabled: always, dpop: "required", handle: exchange }],
  [
    CIBA_GRANT,
    {
      enabled: (deps) => deps.approvals !== undefined,
      dpop: "required",
      handle: (env, client, proof, req, deps) => cibaGrant(env, client, proof, req, deps, deps.approvals!),
    },
  ],
]);
