/**
 * The shape of writ.yaml as JSON Schema (2020-12): every map the loader reads, with its keys,
 * which are required, and what each holds. The loader takes each map's keys from here
 * (`Checker.shape`), so the published schema (`schema/writ.schema.json`, `npm run schema`) and
 * the checks cannot drift apart; what JSON Schema cannot say (references between sections,
 * containment, key files, Cedar) stays in the loader, with its own codes (docs/config-errors.md).
 */

export type JsonSchema = { readonly [k: string]: unknown };

/** A map with a fixed set of keys: JSON Schema for editors, key lists for the loader. */
export interface Shape extends JsonSchema {
  readonly type: "object";
  readonly description: string;
  readonly properties: { readonly [key: string]: JsonSchema };
  readonly required: readonly string[];
  readonly additionalProperties: false;
}

function shape(
  description: string,
  required: Record<string, JsonSchema>,
  optional: Record<string, JsonSchema> = {},
): Shape {
  return {
    type: "object",
    description,
    properties: { ...required, ...optional },
    required: Object.keys(required),
    additionalProperties: false,
  };
}

/** The keys of a shape the loader does not require. */
export function optionalKeys(s: Shape): string[] {
  return Object.keys(s.properties).filter((k) => !s.required.includes(k));
}

const ref = (name: string): JsonSchema => ({ $ref: `#/$defs/${name}` });
const text = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: "string",
  minLength: 1,
  description,
  ...extra,
});
const list = (items: JsonSchema, description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: "array",
  items,
  description,
  ...extra,
});
const flag = (description: string): JsonSchema => ({ type: "boolean", description });
/** A map of named entries (`environments`, `agents`, …): names as the loader's `ID` allows. */
const named = (of: JsonSchema, description: string): JsonSchema => ({
  type: "object",
  description,
  propertyNames: ref("id"),
  additionalProperties: of,
});
const oneOfStrings = (values: readonly string[], description: string): JsonSchema => ({
  enum: values,
  description,
});

/** Values that are not maps, shared by several shapes. */
const VALUES: Record<string, JsonSchema> = {
  id: {
    type: "string",
    pattern: "^[a-z0-9][a-z0-9._-]{0,63}$",
    description: "a name: lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit",
  },
  duration: {
    type: "string",
    pattern: "^\\s*(\\d+[smhd])+\\s*$",
    description: "a duration with units: `90s`, `15m`, `1h30m`, `2d` (at most a year)",
  },
  rate: {
    type: "string",
    pattern: "^\\s*\\d+\\s*/\\s*\\S+\\s*$",
    description: "`COUNT/DURATION`, e.g. `60/1m`",
  },
  audiences: list(
    text("an absolute URI without a fragment (RFC 8707)", { maxLength: 2000, format: "uri" }),
    "the audiences (RFC 8707 `resource` values) a writ may be issued for",
    { minItems: 1 },
  ),
  names: list(text("a name"), "names", { uniqueItems: true }),
  keys: {
    description: "public keys: a JWK set in a file, or inline",
    oneOf: [ref("keysFile"), ref("keysInline")],
  },
  approval: {
    description: "`none`, an approver group's name, `{group, count}`, `{allOf: [...]}` or `{anyOf: [...]}`",
    anyOf: [
      { const: "none" },
      text("an approver group: one approval from it"),
      ref("approvalGroup"),
      ref("approvalAllOf"),
      ref("approvalAnyOf"),
    ],
  },
  secretRef: {
    description: "a secret, named: never written in writ.yaml",
    oneOf: [ref("secretFile"), ref("secretEnv")],
  },
  configText: { type: "string", description: "text; `${env:NAME}` is replaced by that environment variable" },
  resourceTemplate: text("a resource template, e.g. `repo:${owner}/${repo}`"),
  mode: oneOfStrings(
    ["enforce", "shadow"],
    "`enforce` (default): the rule refuses; `shadow`: it records what it would have refused and refuses nothing (docs/shadow.md)",
  ),
};

export const SHAPES = {
  config: shape(
    "writ.yaml: environments, runner classes and agents, and what they may do (docs/config.md)",
    {
      version: { const: 1, description: "the format's version: 1" },
      environments: named(
        { anyOf: [{ type: "null" }, ref("environment")] },
        "where agents work (dev, prod, …)",
      ),
      runnerClasses: named(ref("runnerClass"), "classes of runner, each with its ceiling and limits"),
      agents: named(ref("agent"), "the agents, each registered in environments under a runner class"),
    },
    {
      approvers: {
        type: "object",
        description: "approvers by id (an e-mail, say), with the keys their approvals are signed with",
        propertyNames: { type: "string", pattern: "^[^\\s\\p{Cc}]{1,254}$" },
        additionalProperties: ref("approver"),
      },
      approverGroups: named(ref("approverGroup"), "groups of approvers named by approval policies"),
      playbooks: named(ref("playbook"), "the work writs are issued for"),
      guardrails: list(ref("guardrail"), "Cedar policies checked after every allowed decision"),
      gateway: ref("gateway"),
      downstream: named(ref("downstreamEnvironment"), "per environment, the systems writs are redeemed in"),
      hooks: ref("hooks"),
    },
  ),
  environment: shape(
    "an environment",
    {},
    {
      description: text("what it is"),
      ticket: ref("ticketPattern"),
      changeWindows: list(ref("changeWindow"), "when writs may be issued here"),
      audiences: ref("audiences"),
    },
  ),
  ticketPattern: shape("the form a ticket must have here", {
    pattern: text("a regular expression (Unicode) tickets must match"),
  }),
  changeWindow: shape("a change window", {
    days: {
      description: "days: `mon-fri`, `mon,wed`, or a list",
      anyOf: [text("days"), list(text("a day or a range"), "days")],
    },
    hours: text("`HH:MM-HH:MM`"),
    timezone: text("an IANA time zone, e.g. `Europe/Berlin`"),
  }),
  runnerClass: shape(
    "a runner class",
    { ceiling: ref("ceiling") },
    {
      description: text("what runs in this class"),
      limits: ref("limits"),
      delegation: ref("delegation"),
      mode: ref("mode"),
    },
  ),
  delegation: shape(
    "sub-agents: who may be given a child writ of this class's writs (docs/broker.md#delegation)",
    {},
    {
      actors: list(
        text("a runner class"),
        "runner classes whose agents may act as sub-agents (default none)",
      ),
      maxDepth: {
        type: "integer",
        minimum: 1,
        maximum: 8,
        description: "the longest delegation chain below a writ of this class (default 2)",
      },
    },
  ),
  ceiling: shape(
    "the most any writ for this class may grant",
    { maxTtl: ref("duration"), allow: list(ref("rule"), "what writs may grant") },
    { deny: list(ref("rule"), "what no writ may grant") },
  ),
  limits: shape(
    "per agent of this class",
    {},
    {
      activeWrits: { type: "integer", minimum: 1, maximum: 1_000_000, description: "writs active at once" },
      issuancePerMinute: {
        type: "integer",
        minimum: 1,
        maximum: 1_000_000,
        description: "writs issued in a minute",
      },
    },
  ),
  rule: shape(
    "an action and a resource (patterns)",
    { action: text("an action, e.g. `aws:s3:GetObject` or `github:contents:*`") },
    { resource: text("a resource pattern (default `*`)") },
  ),
  approverGroup: shape(
    "an approver group",
    { members: list(text("an approver's id"), "its members", { minItems: 1, uniqueItems: true }) },
    { description: text("who they are") },
  ),
  approver: shape("an approver", { keys: ref("keys") }, { description: text("who they are") }),
  keysFile: shape("a JWK set in a file", { file: text("a path, relative to writ.yaml") }),
  keysInline: shape("a JWK set, inline", {
    jwks: {
      type: "object",
      description: "`{keys: [...]}`: public JWKs only",
      required: ["keys"],
      properties: { keys: { type: "array", minItems: 1, maxItems: 100, items: { type: "object" } } },
    },
  }),
  approvalGroup: shape(
    "approvals from a group",
    { group: text("an approver group") },
    { count: { type: "integer", minimum: 1, description: "how many of its members (default 1)" } },
  ),
  approvalAllOf: shape("every one of these policies", {
    allOf: list(ref("approval"), "approval policies", { minItems: 1 }),
  }),
  approvalAnyOf: shape("one of these policies", {
    anyOf: list(ref("approval"), "approval policies", { minItems: 1 }),
  }),
  playbook: shape(
    "a playbook: the work a writ is issued for",
    {
      description: text("what the work is"),
      grants: list(ref("grantTemplate"), "what a writ for it grants", { minItems: 1 }),
      ttl: ref("duration"),
      risk: oneOfStrings(["low", "medium", "high"], "its risk"),
      environments: list(text("an environment"), "where it runs", { uniqueItems: true }),
    },
    {
      parameters: {
        type: "object",
        description: "a JSON Schema (`type: object`) for the parameters a request gives",
      },
      maxUses: { type: "integer", minimum: 1, maximum: 2 ** 31 - 1, description: "uses per writ" },
      ticket: oneOfStrings(["required", "optional", "none"], "whether a request names a ticket"),
      approval: {
        type: "object",
        description: "per environment, the approval policy",
        additionalProperties: ref("approval"),
      },
      allowSelfApproval: flag("whether the requesting agent's sponsor may approve"),
      audiences: ref("audiences"),
      sponsor: oneOfStrings(["optional", "required", "approver"], "whether a request names a sponsor"),
      mode: ref("mode"),
    },
  ),
  grantTemplate: shape(
    "a grant; `${param}` takes a parameter",
    { action: text("an action pattern") },
    {
      resource: text("a resource pattern (default `*`)"),
      reviewedException: text("why this grant may exceed containment (reviewed)"),
    },
  ),
  agent: shape(
    "an agent",
    {
      owner: text("who answers for it"),
      purpose: text("what it is for"),
      runnerClass: text("its runner class"),
      environments: list(text("an environment"), "where it works", { uniqueItems: true }),
    },
    {
      keys: ref("keys"),
      baseline: list(ref("baselineGrant"), "what it may always do"),
      deny: list(ref("agentDeny"), "what it may never do"),
      playbooks: list(text("a playbook"), "the playbooks it may ask writs for", { uniqueItems: true }),
      tools: list(
        { anyOf: [text("`server:tool`"), ref("toolNeeds")] },
        "the MCP tools it calls (`server:tool`, wildcards allowed)",
      ),
      workloads: list(ref("workload"), "where it runs in Kubernetes"),
      serviceAccounts: list(text("`namespace/name`"), "the ServiceAccounts it runs as", {
        uniqueItems: true,
      }),
      cloudIdentities: list(
        text("an IAM role ARN or a GCP service-account e-mail"),
        "the cloud identities it acts as",
        { uniqueItems: true },
      ),
      untrustedInputs: list(
        { anyOf: [text("`server:tool`"), ref("untrustedInput")] },
        "what brings untrusted content into its context",
      ),
      provisionedBindings: list(ref("binding"), "Kubernetes bindings made for it"),
    },
  ),
  agentDeny: shape(
    "an action and a resource it may never touch",
    { action: text("an action pattern") },
    { resource: text("a resource pattern (default `*`)"), mode: ref("mode") },
  ),
  baselineGrant: shape(
    "a standing grant",
    { action: text("an action pattern") },
    {
      resource: text("a resource pattern (default `*`)"),
      environments: list(text("an environment"), "only in these"),
      standingWrite: text("why a standing write is needed (reviewed)"),
    },
  ),
  toolNeeds: shape("a tool and what its calls need", {
    tool: text("`server:tool`"),
    permissions: list(ref("rule"), "the permissions its calls need"),
  }),
  workload: shape("a Kubernetes workload (globs allowed)", {
    kind: text("Deployment, StatefulSet, DaemonSet, CronJob, Job, Pod or ReplicaSet"),
    namespace: text("a namespace"),
    name: text("a name"),
  }),
  untrustedInput: shape(
    "a tool, or a span attribute, that brings untrusted content",
    {},
    {
      tool: text("`server:tool`"),
      attribute: text("a span attribute"),
      equals: { type: ["string", "number", "boolean"], description: "the attribute's value" },
      matches: text("a glob the attribute's value matches"),
    },
  ),
  binding: shape(
    "a RoleBinding or ClusterRoleBinding",
    {
      kind: oneOfStrings(["RoleBinding", "ClusterRoleBinding"], "its kind"),
      name: text("its name"),
    },
    { namespace: text("a RoleBinding's namespace") },
  ),
  guardrailFile: shape(
    "Cedar policies in a file",
    { file: text("a path, relative to writ.yaml") },
    { mode: ref("mode") },
  ),
  guardrailInline: shape("Cedar policies, inline", { inline: text("Cedar text") }, { mode: ref("mode") }),
  gateway: shape(
    "the MCP gateway (docs/gateway.md)",
    { upstreams: named({ anyOf: [ref("stdioUpstream"), ref("httpUpstream")] }, "the MCP servers behind it") },
    {
      resource: text("the gateway's audience: an absolute URI without a fragment", { format: "uri" }),
      limits: ref("gatewayLimits"),
      bounds: ref("bounds"),
      taintTtl: ref("duration"),
    },
  ),
  gatewayLimits: shape("call rates", {}, { perAgent: ref("rate"), perTool: ref("rate") }),
  hooks: shape(
    "coding agents' own tools, decided through their hooks (`writ hook`, docs/hooks.md)",
    {},
    {
      untrusted: list(
        text("an absolute path glob"),
        "files whose content is untrusted: reading one taints the session",
      ),
      taintTtl: ref("duration"),
    },
  ),
  bounds: shape(
    "what derived resources must stay within",
    {},
    {
      roots: list(text("a path"), "file roots"),
      hosts: list(text("a host"), "hosts"),
      domains: list(text("a domain"), "e-mail domains"),
      deny: list(text("a pattern"), "never these"),
      mode: ref("mode"),
    },
  ),
  stdioUpstream: shape(
    "an MCP server started as a process (stdio)",
    { command: text("the program") },
    {
      args: list(ref("configText"), "its arguments"),
      env: { type: "object", additionalProperties: ref("configText"), description: "its environment" },
      cwd: text("its working folder"),
      tools: { type: "object", additionalProperties: ref("toolDeclarationOrNull"), description: "its tools" },
      resource: { anyOf: [ref("resourceTemplate"), list(ref("resourceTemplate"), "templates")] },
      trustNewTools: flag("whether tools not pinned yet are served"),
      credentials: ref("upstreamCredentials"),
    },
  ),
  httpUpstream: shape(
    "an MCP server over Streamable HTTP",
    { url: text("an absolute http(s) URL without credentials", { format: "uri" }) },
    {
      headers: { type: "object", additionalProperties: ref("configText"), description: "request headers" },
      tools: { type: "object", additionalProperties: ref("toolDeclarationOrNull"), description: "its tools" },
      resource: { anyOf: [ref("resourceTemplate"), list(ref("resourceTemplate"), "templates")] },
      trustNewTools: flag("whether tools not pinned yet are served"),
      credentials: ref("upstreamCredentials"),
    },
  ),
  upstreamCredentials: shape(
    "the upstream's credential, minted per writ by a downstream issuer",
    { downstream: oneOfStrings(["aws", "github", "kubernetes"], "the system") },
    { maxWrits: { type: "integer", minimum: 1, description: "connections kept per writ" } },
  ),
  tool: shape(
    "a tool's declaration",
    {},
    {
      resource: {
        anyOf: [
          ref("resourceTemplate"),
          ref("resourceRule"),
          list({ anyOf: [ref("resourceTemplate"), ref("resourceRule")] }, "resources"),
        ],
      },
      constraints: {
        type: "object",
        additionalProperties: { type: "object" },
        description: "per argument, a JSON Schema",
      },
      irreversible: flag("whether calls are held for approval"),
      untrusted: flag("whether its results taint the context"),
      privileged: flag("whether a tainted context may not call it"),
      whenTainted: oneOfStrings(["refuse", "hold"], "what a tainted context's call gets"),
      approval: ref("approval"),
      approvalTtl: ref("duration"),
      rateLimit: ref("rate"),
      mode: ref("mode"),
    },
  ),
  resourceRule: shape(
    "a resource derived from an argument",
    {
      from: {
        description: "the argument (`name`, or `name[*]` for each item of a list)",
        anyOf: [text("an argument"), list(text("an argument"), "arguments")],
      },
      as: oneOfStrings(["path", "url-host", "email-domain", "repository"], "what the argument holds"),
    },
    { base: text("a base for relative paths"), foldCase: flag("compare without case") },
  ),
  downstreamEnvironment: shape(
    "an environment's downstream systems (docs/downstream.md)",
    {},
    { aws: ref("downstreamAws"), github: ref("downstreamGithub"), kubernetes: ref("downstreamKubernetes") },
  ),
  downstreamAws: shape(
    "AWS (docs/downstream-aws.md)",
    {
      region: text("an AWS region, e.g. `eu-west-1`", { pattern: "^[a-z]{2}(-[a-z]+)+-\\d{1,2}$" }),
      roles: {
        type: "object",
        minProperties: 1,
        description: "per playbook (or `*`), the role ARN",
        additionalProperties: text("an IAM role ARN"),
      },
    },
    {
      mode: oneOfStrings(["role-session", "web-identity"], "how credentials are made"),
      audience: text("web-identity only: the token's `aud`, the IAM OIDC provider's client id", {
        maxLength: 255,
      }),
      authorizationDetails: text("a file of IAM authorization details"),
      endpoint: text("the STS endpoint (https)", { format: "uri" }),
      credentials: { oneOf: [ref("awsCredentialsEnv"), ref("awsCredentialsProfile")] },
    },
  ),
  awsCredentialsEnv: shape("the broker's AWS credentials from its environment", {
    from: { const: "env" },
  }),
  awsCredentialsProfile: shape("the broker's AWS credentials from a profile", {
    from: { const: "profile" },
    profile: text("a profile name"),
  }),
  downstreamGithub: shape(
    "a GitHub App installation (docs/downstream-github.md)",
    {
      appId: { anyOf: [{ type: "integer", minimum: 0 }, text("the App's id or client id")] },
      installationId: { type: "integer", minimum: 1 },
      privateKey: ref("secretRef"),
    },
    { apiUrl: text("the API's URL (https)", { format: "uri" }) },
  ),
  downstreamKubernetes: shape(
    "a Kubernetes cluster (docs/downstream-kubernetes.md)",
    {
      server: text("the API server's URL (https)", { format: "uri" }),
      token: ref("secretRef"),
      serviceAccounts: {
        type: "object",
        minProperties: 1,
        description: "per agent (or `*`), `namespace/name`",
        additionalProperties: text("`namespace/name`; `{agent}` is the agent's id"),
      },
    },
    { caFile: text("the cluster's CA certificate"), audience: text("the token's audience") },
  ),
  secretFile: shape("a secret in a file", { file: text("a path, relative to writ.yaml") }),
  secretEnv: shape("a secret in an environment variable", {
    env: text("the variable's name", { pattern: "^[A-Za-z_][A-Za-z0-9_]{0,127}$" }),
  }),
} as const satisfies Record<string, Shape>;

/** The published URL of this version's schema (what `writ init` writes in its first line). */
export function schemaUrl(version: string): string {
  return `https://unpkg.com/writ@${version}/schema/writ.schema.json`;
}

/** The JSON Schema of writ.yaml: `SHAPES.config` at the top, every other shape and value in `$defs`. */
export function writConfigSchema(version: string): JsonSchema {
  const { config, ...rest } = SHAPES;
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: schemaUrl(version),
    title: "writ.yaml",
    ...config,
    $defs: {
      ...VALUES,
      guardrail: { oneOf: [ref("guardrailFile"), ref("guardrailInline")] },
      toolDeclarationOrNull: { anyOf: [{ type: "null" }, ref("tool")] },
      ...rest,
    },
  };
}
