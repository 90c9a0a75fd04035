/**
 * The findings queue: `writ scan --store` records a scan; `writ findings list|show|set` reads it and
 * changes a finding's status, each change kept in its history.
 *
 *   writ findings list [--status S] [--category C] [--json]
 *   writ findings show ID [--json]            the finding and its history
 *   writ findings set ID STATUS [--note TEXT] [--as WHO] [--json]
 *
 * Exit codes: 0 done, 2 usage or unknown finding, 3 store failure.
 */
import type { Command } from "commander";
import type { AnalysisResult } from "../analyzer/index.js";
import { isWritError } from "../core/index.js";
import { FINDING_STATUSES, type FindingStatus, type ScanSummary } from "../store/index.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";
import { type StoreTarget, withStore } from "./store.js";

export interface FindingsDefaults {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  /** Who changes a status, for the history (main.ts: WRIT_OPERATOR or USER). */
  readonly operator: string;
}

const mapError = (err: unknown) =>
  isWritError(err, "ERR_FINDING_NOT_FOUND") || isWritError(err, "ERR_FINDING_STATUS")
    ? new CliFailure(err.code, err.message, EXIT.usage)
    : err;

export async function persistScan(
  r: AnalysisResult,
  target: StoreTarget,
  at = new Date(),
): Promise<ScanSummary> {
  return withStore(target, { create: true, mapError }, async (store) => {
    await store.migrate();
    const summary = await store.findings.recordScan(r.findings, {
      at,
      workloads: r.workloadIds,
    });
    // the posture figures the metrics read (ClusterRoleBindings, workflows' explicit permissions)
    const p = r.posture ?? { clusterRoleBindings: 0, workflows: 0, workflowsExplicit: 0 };
    await store.metrics.recordScanPosture({ at, ...p, findings: r.findings.length });
    return summary;
  });
}

export function registerFindings(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: FindingsDefaults,
): void {
  const cmd = program
    .command("findings")
    .description("the analyzer's findings queue: list, show with history, set status");
  const target = (o: { data?: string }) => ({ data: o.data ?? d.dataDir, databaseUrl: d.databaseUrl });
  cmd
    .command("list")
    .option("--status <status>", `one of ${FINDING_STATUSES.join(", ")}`)
    .option("--category <category>", "unused-excess, unjustified-use or inherited-overreach")
    .option("--data <dir>", "data folder")
    .option("--json", "print JSON", false)
    .action(async (o: { status?: string; category?: string; data?: string; json: boolean }) => {
      if (o.status && !(FINDING_STATUSES as readonly string[]).includes(o.status))
        throw new CliFailure(
          "ERR_USAGE",
          `--status \`${o.status}\`: expected one of ${FINDING_STATUSES.join(", ")}`,
        );
      const list = await withStore(target(o), { mapError }, async (store) => {
        await store.migrate();
        return store.findings.list({
          status: o.status as FindingStatus | undefined,
          category: o.category,
        });
      });
      emit(io, o.json, { findings: list.map(({ finding: _f, ...rest }) => rest) }, () =>
        list.length === 0
          ? "no findings"
          : list
              .map(
                (f) =>
                  `${f.id}  ${f.status.padEnd(13)} ${f.category.padEnd(19)} ${f.severity.padEnd(8)} ${f.title}`,
              )
              .join("\n"),
      );
      setExit(EXIT.ok);
    });
  cmd
    .command("show")
    .argument("<id>")
    .option("--data <dir>", "data folder")
    .option("--json", "print JSON", false)
    .action(async (id: string, o: { data?: string; json: boolean }) => {
      const r = await withStore(target(o), { mapError }, async (store) => {
        await store.migrate();
        return store.findings.get(id);
      });
      emit(io, o.json, r, () =>
        [
          `${r.finding.id}  ${r.finding.status}  ${r.finding.category}  ${r.finding.severity}`,
          `  ${r.finding.title}`,
          "  history:",
          ...r.history.map(
            (h) =>
              `    ${h.at.toISOString()}  ${h.kind}${h.fromCategory || h.toCategory ? `  ${h.fromCategory ?? "—"} → ${h.toCategory ?? "—"}` : ""}${h.fromStatus || h.toStatus ? `  ${h.fromStatus ?? "—"} → ${h.toStatus ?? "—"}` : ""}  by ${h.actor}${h.note ? `: ${h.note}` : ""}`,
          ),
        ].join("\n"),
      );
      setExit(EXIT.ok);
    });
  cmd
    .command("set")
    .argument("<id>")
    .argument("<status>", FINDING_STATUSES.join("|"))
    .option("--note <text>", "why, for the history")
    .option("--as <who>", "who is changing it (default: WRIT_OPERATOR or USER)", d.operator)
    .option("--data <dir>", "data folder")
    .option("--json", "print JSON", false)
    .action(
      async (id: string, status: string, o: { note?: string; as: string; data?: string; json: boolean }) => {
        if (!(FINDING_STATUSES as readonly string[]).includes(status))
          throw new CliFailure(
            "ERR_USAGE",
            `status \`${status}\`: expected one of ${FINDING_STATUSES.join(", ")}`,
          );
        const f = await withStore(target(o), { mapError }, async (store) => {
          await store.migrate();
          return store.findings.setStatus(id, status as FindingStatus, {
            actor: o.as,
            note: o.note,
            at: new Date(),
          });
        });
        emit(io, o.json, { id: f.id, status: f.status }, () => `${f.id}: ${f.status}`);
        setExit(EXIT.ok);
      },
    );
}
