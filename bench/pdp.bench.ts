/**
 * Decision point throughput and latency, in one run:
 *
 *   (a) the core decision alone (the DecisionPoint without guardrails);
 *   (b) the core decision, then ten Cedar forbid guardrails with time, environment and argument
 *       conditions (the DecisionPoint as `writ serve` runs it);
 *   (c) the floor: raw `statefulIsAuthorized` on the same pre-parsed policies with the same
 *       entities and context, built once — what any Cedar-based decision point pays at least;
 *   (d) AuthZEN over loopback HTTP, `writ serve`'s app on PostgreSQL (and on the embedded store),
 *       16 requests in flight, every decision audited before its answer: goal 2,000 decisions/s
 *       on PostgreSQL (beside it, interleaved, the audit log answering a group commit's callers
 *       before it sends the next, as on the embedded store). The load generator is a process of
 *       its own (node:http with keep-alive, bench/exchange-load.ts), so the CPU is the server's
 *       alone; the same rows follow with the client's fetch in the server's thread, sharing its
 *       event loop.
 *
 * The config is realistic: four runner classes with ~20 ceiling rules each, five agents with
 * baselines, active writs. Every request is allowed by the core and passes the guardrails, so (b)
 * pays for a full Cedar evaluation each time (no forbid short-cuts it).
 *
 * Then the cost of an agent's writs: one DecisionPoint over the writ index over an embedded store
 * (what `writ serve` runs), one agent holding one writ and another holding 10,000, each decision
 * allowed by one of them (a different one each time, for a different object each time); p50 side by
 * side, and the ratio against the 1.5× the issue allows.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { statefulIsAuthorized } from "@cedar-policy/cedar-wasm/nodejs";
import { serve } from "@hono/node-server";
import { sql } from "kysely";
import { createServer, loadPolicy } from "../src/app.js";
import { loadConfigText } from "../src/config/index.js";
import { type ActiveWrit, compileRule, type Vocabulary, type WritConfig } from "../src/core/index.js";
import { compileGuardrails, DecisionPoint, type PdpRequest, WritIndex } from "../src/pdp/index.js";
import { openStore, toActiveWrit } from "../src/store/index.js";
import { batchFill, measure, measureConcurrent, measureHttpLoad, table, tempDatabase } from "./harness.js";

const rules = (items: readonly (readonly [string, string?, string?])[], indent: string) =>
  items
    .map(
      ([action, resource, standingWrite]) =>
        `${indent}- action: "${action}"\n${indent}  resource: "${resource ?? "*"}"` +
        (standingWrite ? `\n${indent}  standingWrite: ${standingWrite}` : ""),
    )
    .join("\n");

const DENY = [
  ["aws:iam:*"],
  ["aws:kms:*"],
  ["aws:organizations:*"],
  ["aws:secretsmanager:GetSecretValue"],
  ["k8s:core/secrets:*"],
  ["k8s:rbac.authorization.k8s.io/*:*"],
  ["k8s:core/pods/exec:*"],
  ["github:administration|secrets|workflows:*"],
] as const;

const CEILINGS = {
  analyst: [
    ["aws:s3:GetObject|ListBucket|GetObjectTagging", "arn:aws:s3:::acme-reports|arn:aws:s3:::acme-reports/*"],
    ["aws:s3:GetObject|ListBucket", "arn:aws:s3:::acme-billing-export|arn:aws:s3:::acme-billing-export/*"],
    ["aws:cloudwatch:GetMetricData|ListMetrics|DescribeAlarms|GetMetricStatistics"],
    ["aws:ce:GetCostAndUsage|GetCostForecast|GetDimensionValues|GetTags"],
    [
      "aws:athena:StartQueryExecution|GetQueryExecution|GetQueryResults",
      "arn:aws:athena:eu-west-2:111122223333:workgroup/reports",
    ],
    ["aws:glue:GetTable|GetTables|GetDatabase", "*"],
    ["aws:logs:FilterLogEvents|GetLogEvents", "arn:aws:logs:eu-west-2:111122223333:log-group:/acme/*"],
    ["k8s:apps/deployments:get|list|watch", "*/*"],
    ["k8s:apps/replicasets:get|list", "*/*"],
    ["k8s:core/pods:get|list|watch", "*/*"],
    ["k8s:core/nodes:get|list"],
    ["k8s:metrics.k8s.io/pods:get|list", "*/*"],
    ["github:contents|issues|pull_requests:read", "acme/*"],
    ["github:metadata:read", "acme/*"],
    ["mcp:filesystem:read_text_file|list_directory|search_files", "/srv/reports/*"],
    ["mcp:warehouse:run_query|list_tables", "*"],
    ["mcp:slack:post_message", "#cost-reports"],
    ["gcp:bigquery:jobs.create|tables.getData", "projects/acme-analytics/*"],
    ["gcp:storage:objects.get|objects.list", "projects/_/buckets/acme-exports/*"],
    ["aws:sts:GetCallerIdentity"],
  ],
  deploy: [
    ["k8s:apps/deployments:get|list|watch|patch|update", "checkout/*|payments/*|search/*"],
    ["k8s:apps/replicasets:get|list|watch", "checkout/*|payments/*|search/*"],
    ["k8s:core/pods:get|list|watch", "checkout/*|payments/*|search/*"],
    ["k8s:core/services:get|list", "checkout/*|payments/*|search/*"],
    ["k8s:core/configmaps:get|list|patch", "checkout/*|payments/*|search/*"],
    ["k8s:batch/jobs:get|list|create", "checkout/*|payments/*|search/*"],
    ["k8s:autoscaling/horizontalpodautoscalers:get|list|patch", "checkout/*|payments/*|search/*"],
    [
      "aws:ecr:BatchGetImage|GetDownloadUrlForLayer|DescribeImages|BatchCheckLayerAvailability",
      "arn:aws:ecr:eu-west-2:111122223333:repository/acme/*",
    ],
    ["aws:ecr:GetAuthorizationToken"],
    ["aws:s3:GetObject", "arn:aws:s3:::acme-artifacts/*"],
    ["aws:s3:PutObject", "arn:aws:s3:::acme-artifacts/releases/*"],
    ["aws:cloudfront:CreateInvalidation", "arn:aws:cloudfront::111122223333:distribution/*"],
    ["aws:ssm:GetParameter|GetParameters", "arn:aws:ssm:eu-west-2:111122223333:parameter/acme/release/*"],
    ["github:contents|deployments|statuses:read|write", "acme/checkout|acme/payments|acme/search"],
    ["github:pull_requests:read|write", "acme/checkout|acme/payments|acme/search"],
    ["github:checks:read", "acme/*"],
    ["github:metadata:read", "acme/*"],
    ["mcp:argocd:sync_application|get_application", "*"],
    ["mcp:slack:post_message", "#releases"],
    ["aws:sts:GetCallerIdentity"],
  ],
  "data-move": [
    ["aws:s3:GetObject|ListBucket|GetObjectTagging|GetObjectVersion", "arn:aws:s3:::acme-*"],
    ["aws:s3:PutObject|PutObjectTagging|DeleteObject", "arn:aws:s3:::acme-lake-*/*"],
    ["aws:s3:AbortMultipartUpload|ListMultipartUploadParts", "arn:aws:s3:::acme-lake-*/*"],
    ["aws:glue:GetTable|GetTables|GetDatabase|GetPartitions|BatchCreatePartition", "*"],
    [
      "aws:athena:StartQueryExecution|GetQueryExecution|GetQueryResults",
      "arn:aws:athena:eu-west-2:111122223333:workgroup/*",
    ],
    [
      "aws:kinesis:GetRecords|GetShardIterator|DescribeStream|ListShards",
      "arn:aws:kinesis:eu-west-2:111122223333:stream/acme-*",
    ],
    ["aws:sqs:ReceiveMessage|DeleteMessage|GetQueueAttributes", "arn:aws:sqs:eu-west-2:111122223333:acme-*"],
    ["aws:sns:Publish", "arn:aws:sns:eu-west-2:111122223333:acme-data-*"],
    ["aws:dynamodb:GetItem|Query|Scan|BatchGetItem", "arn:aws:dynamodb:eu-west-2:111122223333:table/acme-*"],
    ["aws:dynamodb:PutItem|BatchWriteItem", "arn:aws:dynamodb:eu-west-2:111122223333:table/acme-lake-*"],
    ["aws:cloudwatch:PutMetricData"],
    ["aws:logs:CreateLogStream|PutLogEvents", "arn:aws:logs:eu-west-2:111122223333:log-group:/acme/data/*"],
    ["gcp:storage:objects.get|objects.list|objects.create", "projects/_/buckets/acme-*"],
    ["gcp:bigquery:jobs.create|tables.getData|tables.updateData", "projects/acme-analytics/*"],
    ["mcp:filesystem:read_text_file|list_directory|write_file", "/srv/staging/*"],
    ["mcp:warehouse:run_query|list_tables|load_table", "*"],
    ["k8s:batch/jobs:get|list|create|delete", "data/*"],
    ["k8s:core/pods:get|list", "data/*"],
    ["github:contents:read", "acme/pipelines"],
    ["aws:sts:GetCallerIdentity"],
  ],
  "ops-assist": [
    ["k8s:core/pods:get|list|watch|delete", "*/*"],
    ["k8s:core/pods/log:get", "*/*"],
    ["k8s:core/events:get|list", "*/*"],
    ["k8s:apps/deployments:get|list|watch", "*/*"],
    ["k8s:apps/deployments/scale:get|patch|update", "checkout/*|payments/*|search/*"],
    ["k8s:apps/statefulsets:get|list", "*/*"],
    ["k8s:core/nodes:get|list"],
    ["aws:cloudwatch:GetMetricData|ListMetrics|DescribeAlarms|GetMetricStatistics"],
    [
      "aws:logs:FilterLogEvents|GetLogEvents|DescribeLogGroups|StartQuery|GetQueryResults",
      "arn:aws:logs:eu-west-2:111122223333:log-group:/acme/*",
    ],
    ["aws:ec2:DescribeInstances|DescribeInstanceStatus"],
    ["aws:rds:DescribeDBInstances|DescribeDBClusters"],
    ["aws:elasticloadbalancing:DescribeTargetHealth|DescribeLoadBalancers"],
    ["aws:autoscaling:DescribeAutoScalingGroups|SetDesiredCapacity", "*"],
    ["mcp:runbooks:*", "*"],
    ["mcp:pagerduty:get_incident|list_incidents|add_note|acknowledge", "*"],
    ["mcp:slack:post_message|read_channel", "#incidents|#ops"],
    ["mcp:grafana:query|get_dashboard", "*"],
    ["github:issues:read|write", "acme/*"],
    ["github:contents:read", "acme/*"],
    ["aws:sts:GetCallerIdentity"],
  ],
} as const;

const CONFIG = `version: 1
environments:
  dev: {}
  staging: {}
  prod:
    ticket:
      pattern: "^(CHG|INC)-[0-9]{4,}$"
    changeWindows:
      - days: mon-thu
        hours: "09:00-17:00"
        timezone: Europe/London
      - days: [fri]
        hours: "09:00-12:00"
        timezone: Europe/London
runnerClasses:
${Object.entries(CEILINGS)
  .map(
    ([id, allow]) => `  ${id}:
    ceiling:
      maxTtl: 2h
      allow:
${rules(allow, "        ")}
      deny:
${rules(DENY, "        ")}`,
  )
  .join("\n")}
agents:
  cost-analyst:
    owner: erin@acme.example
    purpose: Weekly cost and usage reports
    runnerClass: analyst
    environments: [dev, staging, prod]
    baseline:
${rules(
  [
    ["aws:s3:GetObject|ListBucket", "arn:aws:s3:::acme-reports|arn:aws:s3:::acme-reports/*"],
    ["aws:ce:GetCostAndUsage|GetCostForecast"],
    ["aws:cloudwatch:GetMetricData|ListMetrics"],
    ["k8s:apps/deployments:get|list", "*/*"],
    ["github:contents:read", "acme/*"],
    ["mcp:filesystem:read_text_file|list_directory", "/srv/reports/*"],
    ["mcp:warehouse:run_query|list_tables", "*", "read-only queries; the tool cannot tell"],
  ],
  "      ",
)}
    tools: ["filesystem:read_text_file", "filesystem:list_directory", "warehouse:*"]
  usage-analyst:
    owner: frank@acme.example
    purpose: Answers questions about product usage from the warehouse
    runnerClass: analyst
    environments: [dev, prod]
    baseline:
${rules(
  [
    ["mcp:warehouse:run_query|list_tables", "*", "read-only queries; the tool cannot tell"],
    ["gcp:bigquery:jobs.create|tables.getData", "projects/acme-analytics/*", "query jobs only"],
    ["aws:s3:GetObject", "arn:aws:s3:::acme-reports/*"],
  ],
  "      ",
)}
    tools: ["warehouse:*"]
  release-bot:
    owner: alice@acme.example
    purpose: Rolls services forward and back from CI
    runnerClass: deploy
    environments: [dev, staging, prod]
    baseline:
${rules(
  [
    ["k8s:apps/deployments:get|list", "checkout/*|payments/*|search/*"],
    ["k8s:core/pods:get|list", "checkout/*|payments/*|search/*"],
    ["github:contents:read", "acme/checkout|acme/payments|acme/search"],
    ["aws:ecr:DescribeImages", "arn:aws:ecr:eu-west-2:111122223333:repository/acme/*"],
  ],
  "      ",
)}
    tools: ["argocd:get_application"]
  bulk-mover:
    owner: gina@acme.example
    purpose: Moves many batches into the lake, one writ per batch
    runnerClass: data-move
    environments: [prod]
  data-mover:
    owner: gina@acme.example
    purpose: Moves nightly exports into the lake
    runnerClass: data-move
    environments: [dev, staging, prod]
    baseline:
${rules(
  [
    ["aws:s3:GetObject|ListBucket", "arn:aws:s3:::acme-*"],
    ["aws:glue:GetTable|GetTables|GetDatabase", "*"],
    ["mcp:filesystem:read_text_file|list_directory", "/srv/staging/*"],
  ],
  "      ",
)}
    tools: ["filesystem:*", "warehouse:*"]
  ops-assistant:
    owner: bob@acme.example
    purpose: Helps the on-call engineer triage incidents
    runnerClass: ops-assist
    environments: [dev, staging, prod]
    baseline:
${rules(
  [
    ["k8s:core/pods:get|list", "*/*"],
    ["k8s:core/pods/log:get", "*/*"],
    ["k8s:core/events:get|list", "*/*"],
    ["aws:logs:FilterLogEvents|GetLogEvents", "arn:aws:logs:eu-west-2:111122223333:log-group:/acme/*"],
    ["aws:cloudwatch:GetMetricData|DescribeAlarms"],
    ["mcp:runbooks:search|read", "*"],
    ["mcp:pagerduty:get_incident|list_incidents", "*"],
  ],
  "      ",
)}
    tools: ["runbooks:*", "pagerduty:*", "grafana:*"]
guardrails:
  - inline: |
      @id("prod-no-weekends")
      forbid(principal, action, resource)
      when { context.environment == "prod" && (context.time.local.weekday == "sat" || context.time.local.weekday == "sun") };

      @id("prod-writes-in-window")
      forbid(principal, action in [Writ::Action::"k8s:apps/deployments:patch", Writ::Action::"aws:s3:PutObject"], resource)
      when { context.environment == "prod" && (context.time.local.hour < 9 || context.time.local.hour >= 17) };

      @id("prod-needs-ticket")
      forbid(principal, action in [Writ::Action::"k8s:apps/deployments:patch", Writ::Action::"k8s:core/pods:delete"], resource)
      when { context.environment == "prod" && !(context has ticket) };

      @id("no-secret-paths")
      forbid(principal, action in Writ::Action::"mcp:filesystem", resource)
      when { context.arguments has path && (context.arguments.path like "*/.ssh/*" || context.arguments.path like "*.pem" || context.arguments.path like "/etc/*") };

      @id("tainted-sessions-do-not-write")
      forbid(principal, action in [Writ::Action::"mcp:filesystem:write_file", Writ::Action::"mcp:warehouse:load_table", Writ::Action::"mcp:slack:post_message"], resource)
      when { context.tainted };

      @id("no-huge-queries")
      forbid(principal, action == Writ::Action::"mcp:warehouse:run_query", resource)
      when { context.arguments has limit && context.arguments.limit > 1000000 };

      @id("no-pii-buckets")
      forbid(principal, action in Writ::Action::"aws:s3", resource)
      when { resource.id like "arn:aws:s3:::acme-*-pii*" && principal.runnerClass != "data-move" };

      @id("analysts-stay-out-of-prod-clusters-at-night")
      forbid(principal, action in Writ::Action::"k8s", resource)
      when { principal.runnerClass == "analyst" && context.environment == "prod" && context.time.hour < 6 };

      @id("kube-system-is-off-limits")
      forbid(principal, action in Writ::Action::"k8s", resource)
      when { resource.id like "kube-system/*" };

      @id("no-deletes-on-fridays")
      forbid(principal, action in [Writ::Action::"k8s:core/pods:delete", Writ::Action::"aws:s3:DeleteObject"], resource)
      when { context.environment == "prod" && context.time.local.weekday == "fri" };
`;

// Tuesday 3 March 2026, 11:00 in London: inside the change window
const NOW = new Date("2026-03-03T11:00:00Z");

function writ(id: string, agent: string, grants: [string, string][]): ActiveWrit {
  return {
    kind: "writ",
    id,
    agent,
    playbook: "bench",
    environment: "prod",
    grants: grants.map(([action, resource]) => ({
      kind: "grant",
      rule: compileRule({ action, resource }),
      path: [],
    })),
    issuedAt: new Date(NOW.getTime() - 60_000),
    expiresAt: new Date(NOW.getTime() + 15 * 60_000),
    usesLeft: 10,
  };
}

const WRITS: readonly ActiveWrit[] = [
  writ("w-deploy", "release-bot", [
    ["k8s:apps/deployments:get|patch", "checkout/checkout"],
    ["k8s:apps/replicasets:get|list", "checkout/*"],
    ["github:deployments:write", "acme/checkout"],
  ]),
  writ("w-load", "data-mover", [
    ["aws:s3:PutObject", "arn:aws:s3:::acme-lake-raw/2026/03/*"],
    ["mcp:warehouse:load_table", "*"],
  ]),
  writ("w-other", "ops-assistant", [["k8s:core/pods:delete", "payments/*"]]),
];

const REQUESTS: readonly PdpRequest[] = [
  ["cost-analyst", "aws:s3:GetObject", "arn:aws:s3:::acme-reports/2026/q1.csv", "prod"],
  ["cost-analyst", "aws:ce:GetCostAndUsage", "*", "prod"],
  ["cost-analyst", "mcp:warehouse:run_query", "*", "dev", { arguments: { sql: "select 1", limit: 100 } }],
  ["usage-analyst", "gcp:bigquery:jobs.create", "projects/acme-analytics/jobs/j1", "prod"],
  [
    "release-bot",
    "k8s:apps/deployments:patch",
    "checkout/checkout",
    "prod",
    { ticket: "CHG-1234", writId: "w-deploy" },
  ],
  ["release-bot", "github:contents:read", "acme/payments", "staging"],
  ["data-mover", "aws:s3:PutObject", "arn:aws:s3:::acme-lake-raw/2026/03/03/part-0001.parquet", "prod"],
  [
    "data-mover",
    "mcp:filesystem:read_text_file",
    "/srv/staging/export.csv",
    "dev",
    { arguments: { path: "/srv/staging/export.csv" } },
  ],
  ["ops-assistant", "k8s:core/pods/log:get", "payments/payments-7f9c", "prod", { promptContextId: "ctx-42" }],
  [
    "ops-assistant",
    "mcp:runbooks:search",
    "*",
    "prod",
    { arguments: { query: "payments 5xx" }, tainted: true },
  ],
].map(([agent, action, resource, environment, context]) => ({
  agent: agent as string,
  action: action as string,
  resource: resource as string,
  environment: environment as string,
  now: NOW,
  ...(context ? { context: context as PdpRequest["context"] } : {}),
}));

export async function run(): Promise<void> {
  const loaded = await loadConfigText(CONFIG, { file: "bench/writ.yaml" });
  if (!loaded.config) {
    throw new Error(
      `bench config does not load:\n${loaded.problems.map((p) => `${p.path}: ${p.message}`).join("\n")}`,
    );
  }
  const compiled = compileGuardrails(loaded.config, {
    sources: loaded.guardrailSources,
    vocab: loaded.vocab,
  });
  const errors = compiled.problems.filter((p) => p.severity === "error");
  if (errors.length > 0 || !compiled.guardrails) {
    throw new Error(
      `bench guardrails do not compile:\n${errors.map((p) => `${p.line}: ${p.message}`).join("\n")}`,
    );
  }
  const guardrails = compiled.guardrails;
  // the core alone: the same config without its guardrails
  const coreOnly = new DecisionPoint(
    { ...loaded.config, guardrails: undefined },
    { vocab: loaded.vocab, writs: WRITS },
  );
  const full = new DecisionPoint(loaded.config, { vocab: loaded.vocab, guardrails, writs: WRITS });
  // the same guardrails in shadow mode (docs/shadow.md): the enforcing set, then the shadow set
  const shadowCompiled = compileGuardrails(loaded.config, {
    sources: loaded.guardrailSources.map((src) => ({ ...src, mode: "shadow" as const })),
    vocab: loaded.vocab,
  });
  const shadowed = new DecisionPoint(loaded.config, {
    vocab: loaded.vocab,
    guardrails: shadowCompiled.guardrails,
    writs: WRITS,
  });

  // every request must be allowed on every path, so that each pays for the whole evaluation
  for (const r of REQUESTS) {
    for (const pdp of [coreOnly, full, shadowed]) {
      const d = await pdp.decide(r);
      if (!d.allowed)
        throw new Error(`bench request ${r.agent} ${r.action} ${r.resource}: ${d.code}: ${d.message}`);
    }
  }
  const calls = REQUESTS.map((r) => guardrails.cedarCall(r));
  for (const call of calls) {
    const a = statefulIsAuthorized(call);
    if (a.type !== "success" || a.response.decision !== "allow" || a.response.diagnostics.errors.length > 0) {
      throw new Error(`bench Cedar call fails: ${JSON.stringify(a)}`);
    }
  }

  const n = REQUESTS.length;
  const [a, b, b2, c, d] = await measure(
    [
      { name: "(a) core only", op: (i) => coreOnly.decide(REQUESTS[i % n]!) },
      {
        name: `(b) core + ${guardrails.policies.length} Cedar guardrails`,
        op: (i) => full.decide(REQUESTS[i % n]!),
      },
      {
        name: `(b') the same ${guardrails.policies.length} guardrails in shadow mode`,
        op: (i) => shadowed.decide(REQUESTS[i % n]!),
      },
      { name: "(c) floor: raw statefulIsAuthorized", op: (i) => statefulIsAuthorized(calls[i % n]!) },
      {
        // what (b) does minus writ's glue: the core's work, then the pre-built raw call
        name: "(c') core, then the raw call",
        op: (i) => {
          coreOnly.decideWith(REQUESTS[i % n]!, WRITS);
          return statefulIsAuthorized(calls[i % n]!);
        },
      },
    ],
    { warmupMs: 400, budgetMs: 2000, rounds: 8, maxIterations: 300_000 },
  );

  console.log(
    table(
      `PDP decisions (measured interleaved) — ${loaded.config.agents.size} agents, ${[...loaded.config.runnerClasses.values()].reduce((s, rc) => s + rc.ceiling.allow.length + rc.ceiling.deny.length, 0)} ceiling rules, ${WRITS.length} active writs, ${n} requests cycled`,
      [a!, b!, b2!, c!, d!],
      c!,
    ),
  );
  const glue = b!.p50 - d!.p50;
  console.log(
    [
      "",
      `Cedar's share of (b): ${(b!.p50 - a!.p50).toFixed(1)} µs at p50.`,
      `(b) over (c'), i.e. writ's own glue (entities, context, reasons): ${glue > 0 ? `${glue.toFixed(1)} µs` : "none measurable"} at p50.`,
      "(c') over (c): the same pre-built call costs more when the core's work runs between calls; that is not writ's glue.",
    ].join("\n"),
  );
  await writCost(loaded.config, loaded.vocab);
  await authzenOverHttp();
}

/** (d): AuthZEN evaluations over HTTP, 16 in flight, each audited, on each store. */
export async function authzenOverHttp(): Promise<void> {
  const ROOT = join(import.meta.dirname, "..");
  const { policy } = await loadPolicy(join(ROOT, "examples", "quickstart", "writ.yaml"));
  const dir = await mkdtemp(join(tmpdir(), "writ-bench-pdp-"));
  const database = await tempDatabase();
  if (typeof database === "string") console.log(`(PostgreSQL unreachable, its row is left out: ${database})`);
  // the row answering first on a database of its own: each row's batch fill is its own
  const before = typeof database === "string" ? database : await tempDatabase("_before");
  const servers: Array<{ name: string; url: string; fill(): Promise<string>; close(): Promise<void> }> = [];
  try {
    // PostgreSQL as served (the appends that arrived during a group commit sent before its callers
    // are answered: sendNextFirst), then answering first as the embedded store does: interleaved
    for (const [name, url, sendNextFirst] of [
      ...(typeof database === "string" || typeof before === "string"
        ? []
        : ([
            ["PostgreSQL (local, one server)", database.url, undefined],
            ["PostgreSQL, the answers before the next commit", before.url, false],
          ] as const)),
      ["embedded store", undefined, undefined] as const,
    ]) {
      const server = await createServer({
        policy: policy!,
        dataDir: join(dir, `server-${servers.length}`),
        databaseUrl: url,
        version: "bench",
        auditSendNextFirst: sendNextFirst,
      });
      const http = await new Promise<ReturnType<typeof serve>>((resolve) => {
        const s = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
      });
      const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
      server.setBaseUrl(base);
      const seq0 = (await server.audit.head()).seq;
      servers.push({
        name,
        url: `${base}/access/v1/evaluation`,
        // group commit's batch fill: the records since the start per transaction that stored them
        fill: async () => {
          const { records, commits, perCommit } = await batchFill(server.store.db, seq0);
          return `${name}: ${perCommit} records per commit (${records} in ${commits})`;
        },
        close: async () => {
          await new Promise<void>((resolve) => http.close(() => resolve()));
          await server.close();
        },
      });
    }
    const body = JSON.stringify({
      subject: { type: "agent", id: "cost-analyst" },
      action: { name: "aws:s3:GetObject" },
      resource: { type: "aws", id: "arn:aws:s3:::acme-reports/2026/10.csv" },
      context: { environment: "prod" },
    });
    const evaluate = (url: string) => async () => {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
      const answer = (await res.json()) as { decision?: unknown };
      if (res.status !== 200 || answer.decision !== true)
        throw new Error(`AuthZEN: ${res.status} ${JSON.stringify(answer)}`);
    };
    const settings = { concurrency: 16, warmupMs: 500, budgetMs: 3000, rounds: 6 };
    // the server alone in this process: the load generator in a process of its own, as a client is
    const rows = await measureHttpLoad(
      servers.map((s) => ({
        name: `AuthZEN evaluation, audited: ${s.name}`,
        url: s.url,
        body,
        expect: '"decision":true',
      })),
      settings,
    );
    // the same, with the client's fetch sharing the server's event loop (how this row was measured
    // before: the client then takes about half of the thread)
    const shared = await measureConcurrent(
      servers.map((s) => ({ name: `same, client in the server's thread: ${s.name}`, op: evaluate(s.url) })),
      settings,
    );
    console.log();
    console.log(
      table(
        "AuthZEN over loopback HTTP, 16 requests in flight (client in a process of its own, then in the server's thread)",
        [...rows, ...shared],
        rows[0]!,
      ),
    );
    console.log(
      `\nbatch fill over both rows — ${(await Promise.all(servers.map((s) => s.fill()))).join("; ")}`,
    );
    if (typeof database !== "string") {
      console.log(
        `\nconcurrency 16, PostgreSQL: ${rows[0]!.opsPerSecond.toFixed(0)} decisions/s, every one audited (goal ≥ 2,000/s; ${rows[1]!.opsPerSecond.toFixed(0)}/s answering before the next commit); ${shared[0]!.opsPerSecond.toFixed(0)}/s with the client in the server's thread`,
      );
    }
  } finally {
    for (const s of servers) await s.close();
    if (typeof database !== "string") await database.drop();
    if (typeof before !== "string") await before.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

const MANY = 10_000;
const LIMIT = 1.5;

/**
 * Decision p50 for an agent with one writ and an agent with 10,000, through one DecisionPoint over
 * the writ index over an embedded store, each request allowed by one of its writs.
 */
async function writCost(config: WritConfig, vocab: Vocabulary) {
  const dir = await mkdtemp(join(tmpdir(), "writ-bench-pdp-"));
  const store = await openStore({ dataDir: dir });
  try {
    await store.migrate();
    // one writ per batch: PutObject under its own prefix, for 10 minutes around NOW
    const writs = (agent: string, n: number) => sql`
      insert into writs (id, agent, playbook, environment, params, grants, issued_at, expires_at, max_uses)
      select ${agent} || '-' || i, ${agent}, 'move-batch', 'prod', jsonb_build_object('batch', i),
             jsonb_build_array(jsonb_build_object('action', 'aws:s3:PutObject',
               'resource', 'arn:aws:s3:::acme-lake-raw/batch-' || i || '/*')),
             ${new Date(NOW.getTime() - 60_000)}, ${new Date(NOW.getTime() + 10 * 60_000)}, 1000
      from generate_series(0, ${n - 1}) as i`;
    await writs("data-mover", 1).execute(store.db);
    await writs("bulk-mover", MANY).execute(store.db);
    const index = new WritIndex({
      load: async (agent, now) => (await store.writs.listUnexpired(agent, now)).map(toActiveWrit),
      changes: store.writChanges,
      clock: () => NOW,
    });
    const pdp = new DecisionPoint(
      { ...config, guardrails: undefined },
      { vocab, writs: (agent) => index.writsOf(agent) },
    );
    const request = (agent: string, batch: number, part: number): PdpRequest => ({
      agent,
      action: "aws:s3:PutObject",
      resource: `arn:aws:s3:::acme-lake-raw/batch-${batch}/2026/03/03/part-${String(part).padStart(4, "0")}.parquet`,
      environment: "prod",
      now: NOW,
    });
    // a different writ each time, in an order unrelated to issuance
    // every request its own resource string, so both cases pay for reading it
    const batches = Array.from({ length: 4096 }, (_, i) => (i * 7919) % MANY);
    const manyRequests = batches.map((b, i) => request("bulk-mover", b, i));
    const oneRequests = batches.map((_, i) => request("data-mover", 0, i));
    for (const r of [oneRequests[0]!, manyRequests[1]!, manyRequests[4095]!]) {
      const d = await pdp.decide(r);
      if (!d.allowed || d.reasons.length > 2)
        throw new Error(`bench request ${r.agent} ${r.resource}: ${d.code} with ${d.reasons.length} reasons`);
    }
    const [one, many] = await measure(
      [
        { name: "agent with 1 active writ", op: (i) => pdp.decide(oneRequests[i % oneRequests.length]!) },
        {
          name: `agent with ${MANY.toLocaleString("en-US")} active writs`,
          op: (i) => pdp.decide(manyRequests[i % manyRequests.length]!),
        },
      ],
      { warmupMs: 400, budgetMs: 2000, rounds: 8, maxIterations: 300_000 },
    );
    console.log();
    console.log(
      table(
        "Decision cost per active writ — DecisionPoint (core) over the writ index over the embedded store, each decision allowed by one writ",
        [one!, many!],
        one!,
      ),
    );
    const ratio = many!.p50 / one!.p50;
    console.log(
      `\np50 with ${MANY.toLocaleString("en-US")} writs / p50 with 1 writ: ${ratio.toFixed(2)}× (limit ${LIMIT}×): ${ratio <= LIMIT ? "within" : "OVER"}`,
    );
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
