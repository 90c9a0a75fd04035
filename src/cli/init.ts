/** `writ init`: a starter writ.yaml and a development key pair for one agent. */
import { chmod, mkdir, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import { schemaUrl } from "../config/schema.js";
import { q } from "../core/index.js";
import { isHookKind } from "../hook/protocol.js";
import { codingStarter, writeHookSettings } from "./init-hooks.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

export interface InitOptions {
  readonly dir: string;
  readonly agent: string;
  readonly owner: string;
  readonly force: boolean;
  readonly json: boolean;
  /** A running `writ serve` the agent's hook asks (else it judges offline). */
  readonly server?: string | undefined;
}

function starter(agent: string, owner: string, version: string): string {
  // the first line lets YAML editors complete and check the file against this version's schema
  return `# yaml-language-server: $schema=${schemaUrl(version)}
# writ.yaml: who may do what, and under which ceiling. Reference: docs/config.md
version: 1

environments:
  dev:
    description: Development
  prod:
    description: Production; changes need a ticket and happen in office hours
    ticket:
      pattern: "^CHG-[0-9]+$"
    changeWindows:
      - days: mon-fri
        hours: "09:00-17:00"
        timezone: UTC

runnerClasses:
  build:
    description: CI jobs that read code and publish artifacts
    ceiling:
      maxTtl: 30m
      allow:
        - action: "github:contents|pull_requests|statuses:read|write"
          resource: "my-org/*"
        - action: "aws:s3:GetObject|PutObject|ListBucket"
          resource: "arn:aws:s3:::my-org-artifacts|arn:aws:s3:::my-org-artifacts/*"
      deny:
        - action: "aws:iam:*"
        - action: "aws:kms:*"
        - action: "github:administration|secrets:*"
          resource: "*"

approverGroups:
  maintainers:
    members: [${JSON.stringify(owner)}]

agents:
  ${agent}:
    owner: ${JSON.stringify(owner)}
    purpose: Builds and tests pull requests
    runnerClass: build
    environments: [dev, prod]
    keys:
      file: keys/${agent}.jwks.json   # DEVELOPMENT key pair made by \`writ init\`
    baseline:
      - action: "github:contents|pull_requests:read"
        resource: "my-org/*"
    playbooks: [publish-artifact]

playbooks:
  publish-artifact:
    description: Upload one build artifact
    risk: medium
    environments: [dev, prod]
    parameters:
      type: object
      properties:
        name: { type: string, pattern: "^[a-z0-9-]+$" }
      required: [name]
      additionalProperties: false
    grants:
      - action: "aws:s3:PutObject"
        resource: "arn:aws:s3:::my-org-artifacts/\${name}/*"
    ttl: 15m
    maxUses: 5
    ticket: optional
    approval:
      prod: maintainers
`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function init(o: InitOptions, io: Io, version: string): Promise<number> {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(o.agent)) {
    throw new CliFailure(
      "ERR_USAGE",
      `--agent ${q(o.agent)}: use lower-case letters, digits, \`.\`, \`_\` or \`-\``,
    );
  }
  if (o.server !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.server);
    } catch {}
    if (!isHookKind(o.agent) || (url?.protocol !== "http:" && url?.protocol !== "https:"))
      throw new CliFailure(
        "ERR_USAGE",
        `--server ${q(o.server)}: the http(s) URL of a running writ serve, for --agent claude-code or gemini-cli`,
      );
  }
  const config = join(o.dir, "writ.yaml");
  const keysDir = join(o.dir, "keys");
  const pub = join(keysDir, `${o.agent}.jwks.json`);
  const priv = join(keysDir, `${o.agent}.DEVELOPMENT-ONLY.private.jwk`);
  if (!o.force) {
    for (const f of [config, pub, priv]) {
      if (await exists(f))
        throw new CliFailure("ERR_EXISTS", `${f} exists; pass --force to overwrite`, EXIT.usage);
    }
  }
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const pubJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pubJwk);
  await mkdir(keysDir, { recursive: true });
  // a coding agent's kind as the agent: its starter, and its hooks pointing at `writ hook`
  const kind = isHookKind(o.agent) ? o.agent : undefined;
  await writeFile(
    config,
    kind ? codingStarter(kind, resolve(o.dir), o.owner, version) : starter(o.agent, o.owner, version),
  );
  await writeFile(
    pub,
    `${JSON.stringify({ keys: [{ ...pubJwk, kid, alg: "EdDSA", use: "sig" }] }, null, 2)}\n`,
  );
  const privJwk = { ...(await exportJWK(privateKey)), kid, alg: "EdDSA" };
  await writeFile(priv, `${JSON.stringify(privJwk, null, 2)}\n`, { mode: 0o600 });
  await chmod(priv, 0o600);
  const hooks = kind
    ? await writeHookSettings(kind, o.dir, {
        agent: kind,
        environment: "dev",
        config: resolve(config),
        server: o.server,
      })
    : undefined;
  const result = { config, publicKeys: pub, privateKey: priv, kid, ...(hooks ? { hooks } : {}) };
  emit(io, o.json, result, () =>
    [
      `wrote ${config}`,
      `wrote ${pub} (public; registered in writ.yaml)`,
      `wrote ${priv} (private, mode 0600: a DEVELOPMENT key — keep it out of version control)`,
      ...(hooks
        ? [
            `${hooks.changed ? "wrote" : "kept"} ${hooks.file}: ${hooks.events.join(" and ")} run \`${hooks.command}\``,
          ]
        : []),
      `next: writ check --config ${config}`,
    ].join("\n"),
  );
  return EXIT.ok;
}

export function registerInit(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  version: string,
): void {
  program
    .command("init")
    .description(
      "write a starter writ.yaml and a development key pair for one agent; for claude-code, gemini-cli, codex or cursor, also its hook settings",
    )
    .option("--dir <dir>", "where to write", ".")
    .option("--agent <id>", "the agent's id", "build-bot")
    .option("--owner <email>", "the agent's owner", "you@example.com")
    .option(
      "--server <url>",
      "a coding agent: the running writ serve its hook asks (the thin client bin/writ-hook.sh: by bash for a loopback http server, else with curl; else writ hook)",
    )
    .option("--force", "overwrite existing files", false)
    .option("--json", "print JSON", false)
    .action(async (o: InitOptions) => setExit(await init(o, io, version)));
}
