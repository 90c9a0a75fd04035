/**
 * A writ.yaml where agent `good` follows every practice writ.yaml can express and agent `bad`
 * breaks each (with `twin` sharing its key and its upstream), and a helper to load it.
 */
import { generateKeyPairSync } from "node:crypto";
import { loadConfigText } from "../../src/config/index.js";
import type { WritConfig } from "../../src/core/index.js";
import type { OperationalState } from "../../src/operate/index.js";

function publicJwk(): string {
  const { publicKey } = generateKeyPairSync("ed25519");
  return JSON.stringify(publicKey.export({ format: "jwk" }));
}

export function fixtureYaml(): string {
  const good = publicJwk();
  const shared = publicJwk();
  const plain = publicJwk();
  return `version: 1
environments:
  dev: {}
  prod: {}
runnerClasses:
  tight:
    ceiling:
      maxTtl: 30m
      allow:
        - { action: "k8s:apps/deployments:get|patch", resource: "shop/*" }
        - { action: "mcp:files:read_text_file|delete_file", resource: "/srv/reports/*" }
        - { action: "mcp:web:read_page", resource: "docs.acme.example" }
  loose:
    ceiling:
      maxTtl: 8h
      allow:
        - { action: "k8s:*:*", resource: "*" }
        - { action: "mcp:web2:*", resource: "*" }
approverGroups:
  sre: { members: [alice@acme.example] }
agents:
  good:
    owner: alice@acme.example
    purpose: deploys the shop
    runnerClass: tight
    environments: [dev, prod]
    keys: { jwks: { keys: [${good}] } }
    baseline:
      - { action: "k8s:apps/deployments:get", resource: "shop/web" }
      - { action: "mcp:files:read_text_file", resource: "/srv/reports/*" }
      - { action: "mcp:web:read_page", resource: "docs.acme.example" }
    playbooks: [deploy, tidy]
    tools: ["files:read_text_file", "files:delete_file", "web:read_page"]
  bad:
    owner: "mallory <script>alert(1)</script>"
    purpose: does everything
    runnerClass: loose
    environments: [dev]
    keys: { jwks: { keys: [${shared}] } }
    baseline:
      - action: "k8s:apps/deployments:patch"
        resource: "*"
        standingWrite: it always has
    playbooks: [purge]
    tools: ["web2:*"]
    serviceAccounts: [shop/bot]
  twin:
    owner: bob@acme.example
    purpose: shares what it should not
    runnerClass: loose
    environments: [dev]
    keys: { jwks: { keys: [${shared}] } }
    tools: ["web2:fetch"]
    serviceAccounts: [shop/bot]
  quiet:
    owner: carol@acme.example
    purpose: has no tools
    runnerClass: tight
    environments: [dev]
    keys: { jwks: { keys: [${plain}] } }
    serviceAccounts: [ops/quiet]
playbooks:
  deploy:
    description: roll out one service
    risk: medium
    environments: [dev, prod]
    parameters:
      type: object
      properties: { service: { type: string, enum: [web, api] } }
      required: [service]
      additionalProperties: false
    grants:
      - { action: "k8s:apps/deployments:patch", resource: "shop/\${service}" }
    ttl: 15m
    approval: { prod: sre }
  tidy:
    description: delete one report
    risk: high
    environments: [dev, prod]
    grants:
      - { action: "mcp:files:delete_file", resource: "/srv/reports/old" }
    ttl: 10m
    approval: { dev: sre, prod: sre }
  purge:
    description: delete pods anywhere
    risk: high
    environments: [dev]
    grants:
      - action: "k8s:core/pods:delete"
        resource: "*"
        reviewedException: cleanup
    ttl: 4h
gateway:
  bounds:
    roots: [/srv/reports]
    hosts: [docs.acme.example]
  upstreams:
    files:
      command: mcp-server-filesystem
      args: ["/srv/reports"]
      tools:
        read_text_file: { resource: { from: path, as: path } }
        delete_file:
          resource: { from: path, as: path }
          irreversible: true
          privileged: true
          approval: sre
    web:
      url: https://tools.acme.example/mcp
      tools:
        read_page: { resource: { from: url, as: url-host }, untrusted: true }
    web2:
      url: https://other.acme.example/mcp
      headers:
        Authorization: "Bearer \${env:WEB2_TOKEN}"
      tools:
        fetch: { resource: { from: url, as: url-host }, untrusted: true }
        post_comment: { resource: { from: to, as: email-domain } }
        delete_page: { resource: { from: url, as: url-host } }
`;
}

export async function loadFixture(text = fixtureYaml()): Promise<{
  config: WritConfig;
  locate: (p: readonly (string | number)[]) => { line?: number; column?: number };
}> {
  const r = await loadConfigText(text, { file: "writ.yaml", baseDir: "/nonexistent" });
  if (!r.config) throw new Error(`fixture does not load: ${JSON.stringify(r.problems, null, 2)}`);
  return { config: r.config, locate: r.locate ?? (() => ({})) };
}

export function emptyState(at: Date, over: Partial<OperationalState> = {}): OperationalState {
  return {
    at,
    liveWrits: [],
    liveDownstream: [],
    lastActivity: new Map(),
    activityScan: { complete: true, records: 0, since: undefined },
    writLastUse: new Map(),
    storeAgents: new Set(),
    findings: [],
    scanRecorded: false,
    toolPins: [],
    ...over,
  };
}
