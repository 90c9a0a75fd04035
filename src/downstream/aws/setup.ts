/**
 * The IAM a user sets up for writ's AWS issuer, generated from the configured roles (printed by
 * `writ downstream aws policy`):
 * - role-session mode: the broker's own least-privilege identity policy (`sts:AssumeRole`,
 *   `sts:TagSession`, `sts:SetSourceIdentity` on the configured roles, and `iam:PutRolePolicy` /
 *   `iam:DeleteRolePolicy` on them for the revoke-older-sessions deny), and each role's trust policy
 *   naming the broker's principal;
 * - web-identity mode: no broker policy (writ holds no AWS keys); each role's trust policy names
 *   writ's environment issuer as an OIDC provider with `aud` and `sub` conditions, for
 *   `sts:AssumeRoleWithWebIdentity` and the tags and source identity the token carries.
 */
import { ROLE_ARN } from "./names.js";

export interface SetupInput {
  readonly mode: "role-session" | "web-identity";
  /** Playbook (or `*`) → role ARN. */
  readonly roles: ReadonlyMap<string, string>;
  /** role-session: the principal the broker's credentials belong to (a user or role ARN). */
  readonly brokerPrincipal?: string | undefined;
  /** web-identity: writ's environment issuer URL (`https://writ.example/env/prod`). */
  readonly issuer?: string | undefined;
  /** web-identity: the audience of the tokens agents present (default `sts.amazonaws.com`). */
  readonly audience?: string | undefined;
  /** web-identity: the agent ids allowed per role (the token's `sub`); default any agent. */
  readonly agents?: readonly string[] | undefined;
}

export interface AwsSetup {
  readonly mode: "role-session" | "web-identity";
  /** The broker's own identity policy (role-session only). */
  readonly brokerPolicy?: object;
  /** Role ARN → the trust policy it needs. */
  readonly trustPolicies: Readonly<Record<string, object>>;
  /** Human steps that a policy document cannot say. */
  readonly steps: readonly string[];
}

const SESSION_ACTIONS = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"];
const WEB_IDENTITY_ACTIONS = ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"];

export function awsSetup(input: SetupInput): AwsSetup {
  const roles = [...new Set(input.roles.values())].sort();
  const account = ROLE_ARN.exec(roles[0] ?? "")?.[2] ?? "ACCOUNT_ID";
  const partition = ROLE_ARN.exec(roles[0] ?? "")?.[1] ?? "aws";
  if (input.mode === "web-identity") {
    const issuer = (input.issuer ?? "https://WRIT_HOST/env/ENVIRONMENT").replace(/\/+$/, "");
    // IAM names the provider, and its condition keys, by the issuer URL without its scheme
    const host = issuer.replace(/^https?:\/\//, "");
    const audience = input.audience ?? "sts.amazonaws.com";
    const trust = {
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Principal: { Federated: `arn:${partition}:iam::${account}:oidc-provider/${host}` },
          Action: WEB_IDENTITY_ACTIONS,
          Condition: {
            StringEquals: {
              [`${host}:aud`]: audience,
              ...(input.agents?.length ? { [`${host}:sub`]: [...input.agents] } : {}),
            },
          },
        },
      ],
    };
    return {
      mode: "web-identity",
      trustPolicies: Object.fromEntries(roles.map((r) => [r, trust])),
      steps: [
        `create an IAM OIDC identity provider with URL ${issuer} and client id (audience) ${audience}; AWS reads ${issuer}/.well-known/openid-configuration and its jwks_uri (${issuer}/.well-known/web-identity-jwks.json, the environment's ES256 keys) over HTTPS`,
        "attach the trust policy above to each role; the `sub` condition ties a role to the agents that may assume it (the token's `sub` is the agent id)",
        "writ calls AssumeRoleWithWebIdentity itself with the writ's session policy; it holds no AWS keys, so revocation and the kill switch cannot stop a session already made: keep each role's MaxSessionDuration short",
      ],
    };
  }
  const broker = input.brokerPrincipal ?? `arn:${partition}:iam::${account}:user/writ-broker`;
  const brokerPolicy = {
    Version: "2012-10-17",
    Statement: [
      { Sid: "WritAssumeRoleSessions", Effect: "Allow", Action: SESSION_ACTIONS, Resource: roles },
      {
        Sid: "WritRevokeOlderSessions",
        Effect: "Allow",
        Action: ["iam:PutRolePolicy", "iam:DeleteRolePolicy"],
        Resource: roles,
      },
    ],
  };
  const trust = {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { AWS: broker }, Action: SESSION_ACTIONS }],
  };
  return {
    mode: "role-session",
    brokerPolicy,
    trustPolicies: Object.fromEntries(roles.map((r) => [r, trust])),
    steps: [
      `attach the broker policy to ${broker}, the principal whose keys writ reads (AWS_ACCESS_KEY_ID … or the profile)`,
      "attach the trust policy to each role; keep each role's own policies as wide as its playbooks need — the session policy narrows every session to its writ",
      "use roles dedicated to writ: the kill switch's deny for `everything` stops every session of the role issued before it",
      "leave room for writ's deny policies: a role holds at most 10,240 characters of inline policy",
    ],
  };
}
