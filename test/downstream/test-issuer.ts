/**
 * A stand-in downstream system and its issuer, for the systems that cannot run here (the real AWS,
 * GitHub and Kubernetes issuers come with their own fakes). It behaves as the interface demands:
 * it records intent in the ledger before "creating" anything and marks it created after, refuses a
 * writ with no grants of its system (`downstream_no_grants`), and keeps the credentials it handed
 * out so a test can ask whether one still works — after `revoke` of its record, or a `kill` of its
 * writ, agent or everything, it does not. Every call is logged (also to a JSON-lines file, for a
 * server in another process).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import type {
  DownstreamIssuer,
  DownstreamReason,
  DownstreamSystem,
  IssuerDeps,
  IssuerFactories,
  WritForIssuer,
} from "../../src/downstream/index.js";
import { issued, refused } from "../../src/downstream/index.js";

export interface IssuerCall {
  readonly op: "issue" | "revoke" | "kill";
  readonly system: DownstreamSystem;
  readonly environment: string;
  readonly writ?: string | undefined;
  readonly agent?: string | undefined;
  readonly record?: string | undefined;
}

interface Handed {
  readonly secret: string;
  readonly system: DownstreamSystem;
  readonly writ: string;
  readonly agent: string;
  readonly environment: string;
  readonly record: string;
  dead: boolean;
}

export class TestDownstream {
  readonly calls: IssuerCall[] = [];
  readonly #handed = new Map<string, Handed>();
  /** The next `issue` refuses with this reason. */
  refuseNext: DownstreamReason | undefined;
  /** `revoke` throws while set (the system unreachable). */
  failRevoke = false;
  /** `issue` records its intent, then throws as if the process crashed before creating. */
  crashAfterIntent = false;

  constructor(private readonly logFile?: string) {}

  #log(call: IssuerCall): void {
    this.calls.push(call);
    if (this.logFile) appendFileSync(this.logFile, `${JSON.stringify(call)}\n`);
  }

  /** Whether a credential handed out still works downstream. */
  works(secret: string): boolean {
    const h = this.#handed.get(secret);
    return h !== undefined && !h.dead;
  }

  factories(): IssuerFactories {
    return {
      aws: async (cfg, deps) => this.issuer("aws", deps, cfg.region),
      github: async (_cfg, deps) => this.issuer("github", deps),
      kubernetes: async (cfg, deps) => this.issuer("kubernetes", deps, cfg.server),
    };
  }

  issuer(system: DownstreamSystem, deps: IssuerDeps, where = ""): DownstreamIssuer {
    const provider = system === "kubernetes" ? "k8s:" : `${system}:`;
    let environment = "";
    return {
      system,
      issue: async (writ: WritForIssuer, now: Date) => {
        environment = writ.environment;
        this.#log({ op: "issue", system, environment, writ: writ.id, agent: writ.agent });
        if (this.refuseNext) {
          const reason = this.refuseNext;
          this.refuseNext = undefined;
          return refused(reason, `the test system refuses writ ${writ.id}`);
        }
        if (!writ.grants.some((g) => g.action.startsWith(provider)))
          return refused("downstream_no_grants", `the writ grants nothing on ${system}`);
        const record = await deps.ledger.intend({
          id: `rec-${randomUUID()}`,
          system,
          environment: writ.environment,
          writ: writ.id,
          agent: writ.agent,
          kind: "test-token",
          locator: { name: `writ-${writ.id}` },
          expiresAt: writ.expiresAt,
        });
        if (this.crashAfterIntent) throw new Error("crashed between intent and creation");
        const secret = randomBytes(24).toString("base64url");
        this.#handed.set(secret, {
          secret,
          system,
          writ: writ.id,
          agent: writ.agent,
          environment: writ.environment,
          record: record.id,
          dead: false,
        });
        await deps.ledger.created(record.id, { created: now.toISOString() });
        const expiration = writ.expiresAt;
        const notes = [`issued by the test ${system} system${where ? ` at ${where}` : ""}`];
        if (system === "aws")
          return issued({
            system,
            accessKeyId: `ASIATEST${secret.slice(0, 12).toUpperCase()}`,
            secretAccessKey: secret,
            sessionToken: `session-${secret}`,
            expiration,
            notes,
          });
        if (system === "github")
          return issued({
            system,
            token: secret,
            expiration,
            repositories: ["acme/checkout"],
            permissions: { contents: "write" },
            notes,
          });
        return issued({ system, token: secret, expiration, server: where, notes });
      },
      revoke: async (record) => {
        this.#log({
          op: "revoke",
          system,
          environment: record.environment,
          writ: record.writ,
          record: record.id,
        });
        if (this.failRevoke) throw new Error("the test system is unreachable");
        for (const h of this.#handed.values()) if (h.record === record.id) h.dead = true;
      },
      kill: async (scope) => {
        this.#log({ op: "kill", system, environment, writ: scope.writ, agent: scope.agent });
        for (const h of this.#handed.values()) {
          if (h.system !== system || (environment !== "" && h.environment !== environment)) continue;
          if (scope.writ !== undefined && h.writ !== scope.writ) continue;
          if (scope.agent !== undefined && h.agent !== scope.agent) continue;
          h.dead = true;
        }
      },
    };
  }
}
