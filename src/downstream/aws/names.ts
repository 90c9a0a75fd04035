/**
 * The names and values STS and IAM accept, as their API references state them: RoleSessionName and
 * SourceIdentity (`[\w+=,.@-]`, 2–64), session tags (key `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, 1–128;
 * value 0–256; at most 50), inline policy names (`[\w+=,.@-]`, 1–128), role ARNs. Shared by the
 * issuer (to refuse before calling) and the test fake (to refuse as AWS does).
 */
import { createHash } from "node:crypto";

export const NAME_CHARS = /^[\w+=,.@-]*$/;
export const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
export const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;
export const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/((?:[\x21-\x7e]+\/)*)([\w+=,.@-]{1,64})$/;
/** STS's bounds on `DurationSeconds` for AssumeRole (the role's MaxSessionDuration may be lower). */
export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 43_200;

export function isSessionName(s: string): boolean {
  return s.length >= 2 && s.length <= 64 && NAME_CHARS.test(s);
}

/** A RoleSessionName from a writ id: its allowed characters, at most 64, a digest when cut. */
export function sessionNameFor(writId: string): string {
  const clean = writId.replace(/[^\w+=,.@-]/g, "-");
  if (clean.length >= 2 && clean.length <= 64 && clean === writId) return clean;
  const digest = createHash("sha256").update(writId).digest("hex").slice(0, 16);
  return `${clean.slice(0, 47)}-${digest}`.slice(0, 64);
}

/** The role's name: the last segment of its ARN. */
export function roleNameOf(arn: string): string {
  const m = ROLE_ARN.exec(arn);
  return m ? m[4]! : arn.slice(arn.lastIndexOf("/") + 1);
}

/** An inline policy name (1–128 of `[\w+=,.@-]`) for a kill deny of one scope. */
export function denyPolicyName(scope: { readonly writ?: string; readonly agent?: string }): string {
  const part = (s: string) => {
    const clean = s.replace(/[^\w+=,.@-]/g, "-");
    return clean === s && clean.length <= 100
      ? clean
      : `${clean.slice(0, 80)}-${createHash("sha256").update(s).digest("hex").slice(0, 16)}`;
  };
  if (scope.writ !== undefined) return `writ-deny-writ-${part(scope.writ)}`;
  if (scope.agent !== undefined) return `writ-deny-agent-${part(scope.agent)}`;
  return "writ-deny-all";
}
