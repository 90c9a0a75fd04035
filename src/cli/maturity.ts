/**
 * `writ maturity`: each agent scored against the practices writ is built on, with the evidence for
 * each answer and what to change (docs/maturity.md).
 *
 *   writ maturity [--config FILE] [--data DIR] [--agent ID] [--json | --format text|json|html]
 *                 [--max-ttl DURATION] [--audit-key FILE]… [--no-verify-audit] [--fail-under PCT]
 *
 * Exit codes: 0 done (whatever the scores), 1 an agent scored under `--fail-under` (or writ.yaml
 * is invalid), 2 usage or unknown agent, 3 store failure.
 */
import type { Command } from "commander";
import { openAuditLog } from "../audit/index.js";
import {
  type AuditEvidence,
  assessMaturity,
  type MaturityReport,
  maturityHtml,
  maturityText,
} from "../operate/index.js";
import { durationOption, loadOperational } from "./agents.js";
import { trustedKeys } from "./audit.js";
import { DEFAULT_CONFIG } from "./common.js";
import { CliFailure, EXIT, type Io } from "./output.js";

export interface MaturityDefaults {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
}

interface MaturityCliOptions {
  config: string;
  data?: string;
  agent?: string;
  json: boolean;
  format?: string;
  maxTtl?: string;
  auditKey: string[];
  verifyAudit: boolean;
  failUnder?: string;
}

const FORMATS = ["text", "json", "html"] as const;

function percent(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 100)
    throw new CliFailure("ERR_USAGE", `--fail-under \`${text}\`: expected a whole percentage from 0 to 100`);
  return n;
}

export function registerMaturity(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: MaturityDefaults,
): void {
  program
    .command("maturity")
    .description("score each agent against writ's practices, with evidence and what to change")
    .option("--config <file>", "writ.yaml", DEFAULT_CONFIG)
    .option("--data <dir>", "data folder (the embedded store); WRIT_DATABASE_URL for PostgreSQL")
    .option("--agent <id>", "only this agent")
    .option("--json", "print JSON (same as --format json)", false)
    .option("--format <format>", `one of ${FORMATS.join(", ")} (default text)`)
    .option("--max-ttl <duration>", "credentials living longer are not short-lived (default 1h)")
    .option(
      "--audit-key <file>",
      "a public key the audit checkpoints may be signed with (repeatable; default: the data folder's)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option("--no-verify-audit", "do not walk the audit chain (the log's answer is then unknown)")
    .option("--fail-under <pct>", "exit 1 when an agent scores under this percentage")
    .action(async (o: MaturityCliOptions) => {
      if (o.format !== undefined && !(FORMATS as readonly string[]).includes(o.format))
        throw new CliFailure("ERR_USAGE", `--format \`${o.format}\`: expected one of ${FORMATS.join(", ")}`);
      if (o.json && o.format !== undefined && o.format !== "json")
        throw new CliFailure("ERR_USAGE", `--json and --format ${o.format} disagree`);
      const format = o.json ? "json" : (o.format ?? "text");
      const failUnder = percent(o.failUnder);
      const maxTtl = durationOption("--max-ttl", o.maxTtl);
      if (maxTtl === 0) throw new CliFailure("ERR_USAGE", "--max-ttl: must be longer than 0s");
      const data = o.data ?? d.dataDir;
      const now = new Date();
      let audit: AuditEvidence = { kind: "not-checked", reason: "--no-verify-audit" };
      const { policy, state } = await loadOperational(
        o.config,
        { data, databaseUrl: d.databaseUrl },
        io,
        format === "json",
        now,
        async (store) => {
          if (!o.verifyAudit) return;
          const keys = await trustedKeys({ key: o.auditKey, data });
          if (keys.length === 0) {
            audit = {
              kind: "not-checked",
              reason: `no trusted public key: none in ${data}/keys and no --audit-key`,
            };
            return;
          }
          const r = await openAuditLog({ repo: store.audit }).verify({ trustedKeys: keys });
          audit = {
            kind: "verified",
            ok: r.ok,
            records: r.records,
            checkpoints: r.checkpoints,
            lastCheckpointSeq: r.lastCheckpointSeq,
            unsigned: r.unsigned,
            firstBad: r.firstBad,
            keys: keys.map((k) => k.kid),
          };
        },
      );
      if (o.agent !== undefined && !policy.config.agents.has(o.agent))
        throw new CliFailure("ERR_AGENT_NOT_FOUND", `no agent \`${o.agent}\` in ${o.config}`, EXIT.usage);
      const full = assessMaturity(policy.config, state, audit, {
        now,
        locate: policy.locate,
        maxTtlSeconds: maxTtl,
      });
      const report: MaturityReport =
        o.agent === undefined ? full : { ...full, agents: full.agents.filter((a) => a.agent === o.agent) };
      io.out(
        format === "json"
          ? JSON.stringify(report, null, 2)
          : format === "html"
            ? maturityHtml(report)
            : maturityText(report),
      );
      const under = failUnder !== undefined && report.agents.some((a) => a.score < failUnder);
      setExit(under ? EXIT.no : EXIT.ok);
    });
}
