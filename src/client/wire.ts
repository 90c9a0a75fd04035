/**
 * What the agent's requests to the broker say, apart from how they are sent: the endpoints of an
 * environment's issuer, the token exchange's form, and when a refusal is waited out. Shared by the
 * SDK (`client.ts`, on oauth4webapi) and the redemption `writ creds` makes without it
 * (`downstream/direct.ts`); imports nothing, so a process that starts for one credential loads
 * little.
 */
import type { WritRefusal } from "./errors.js";

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** This machine: plain HTTP is allowed to it without being told. */
export const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** The longest `Retry-After` (s) of a 429 the client waits out by itself, unless told otherwise. */
export const MAX_RETRY_AFTER = 10;
/** How many 429s in a row are waited out before the refusal is the answer. */
export const MAX_WAITS = 3;

/** An environment's issuer's endpoints (`<public URL>/env/<environment>`). */
export function endpoints(issuer: string) {
  return {
    token: `${issuer}/token`,
    revocation: `${issuer}/revoke`,
    introspection: `${issuer}/introspect`,
    backchannel: `${issuer}/bc-authorize`,
  } as const;
}

/** What a writ is asked for: one run of one playbook. */
export interface PlaybookIntent {
  readonly playbook: string;
  readonly params?: Readonly<Record<string, unknown>> | undefined;
  readonly ticket?: string | undefined;
}

/** RFC 9396 `authorization_details` for a playbook intent. */
export function writDetails(r: PlaybookIntent): string {
  return JSON.stringify([
    {
      type: "writ_playbook",
      playbook: r.playbook,
      parameters: r.params ?? {},
      ...(r.ticket === undefined ? {} : { ticket: r.ticket }),
    },
  ]);
}

/** The token exchange's form (RFC 8693): the baseline token for a writ for `resource`. */
export function exchangeForm(subject: string, intent: PlaybookIntent, resource: string) {
  return {
    subject_token: subject,
    subject_token_type: ACCESS_TOKEN,
    resource,
    authorization_details: writDetails(intent),
  };
}

/** A 429 whose `Retry-After` is short is waited out, a few times in a row; else it is the answer. */
export function waitsOut(refusal: WritRefusal, waits: number, maxRetryAfter: number): boolean {
  return (
    refusal.status === 429 &&
    refusal.retryAfter !== undefined &&
    refusal.retryAfter <= maxRetryAfter &&
    waits < MAX_WAITS
  );
}
