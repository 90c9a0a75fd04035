/**
 * `writ report shadow`: what rules in `mode: shadow` would have blocked, grouped by rule, agent and
 * reason, with counts, first and last seen and an example call (docs/shadow.md, docs/cli.md).
 *
 *   writ report shadow [--since 7d] [--data DIR] [--json]
 *
 * Reads the audit log from the store, as `writ audit` and `writ agents` do: the data folder's
 * embedded database, or a running server's PostgreSQL through WRIT_DATABASE_URL.
 * Exit codes: 0 done, 2 usage, 3 store failure.
 */
import type { Command } from "commander";
import { readShadowReport, shadowReportText } from "../operate/index.js";
import { durationOption } from "./agents.js";
import { EXIT, emit, type Io } from "./output.js";
import { withStore } from "./store.js";

export interface ReportDefaults {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
}

interface ShadowOptions {
  since: string;
  data?: string;
  json: boolean;
}

export function registerReport(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: ReportDefaults,
): void {
  const cmd = program.command("report").description("reports over the audit log");
  cmd
    .command("shadow")
    .description("what rules in shadow mode would have blocked: by rule, agent and reason")
    .option("--since <duration>", "how far back: 7d, 24h, 90m", "7d")
    .option("--data <dir>", "data folder (the embedded store); WRIT_DATABASE_URL for PostgreSQL")
    .option("--json", "print JSON", false)
    .action(async (o: ShadowOptions) => {
      const seconds = durationOption("--since", o.since)!;
      const now = new Date();
      const since = new Date(now.getTime() - seconds * 1000);
      const report = await withStore(
        { data: o.data ?? d.dataDir, databaseUrl: d.databaseUrl },
        {},
        async (store) => {
          await store.migrate();
          return readShadowReport(store, { since, now });
        },
      );
      emit(io, o.json, report, () => shadowReportText(report));
      setExit(EXIT.ok);
    });
}
