/**
 * `writ kill`: stop issuance and revoke every outstanding writ for an agent, a runner class, an
 * environment or everything, in one call; `--lift` ends it.
 *
 *   writ kill --agent A | --class C | --env E | --all [--reason TEXT] [--lift] [--json]
 *
 * It writes to the store directly, as the operator who can reach it; when a running `writ serve`
 * holds the embedded store, it asks that server instead (its admin API, see operator.ts). Every
 * kill and lift is audited. Exit codes: 0 done, 1 nothing to lift, 2 usage, 3 store failure.
 */
import type { Command } from "commander";
import { describeScope, type EngageResult, type KillScope } from "../broker/kill.js";
import { isWritError } from "../core/index.js";
import { DEFAULT_CONFIG, requirePolicy } from "./common.js";
import { withOperator } from "./operator.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

export interface KillOptions {
  readonly agent?: string;
  readonly class?: string;
  readonly env?: string;
  readonly all: boolean;
  readonly reason?: string;
  readonly lift: boolean;
  readonly config: string;
  readonly data?: string;
  readonly json: boolean;
}

export interface KillDefaults {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  /** Who is pulling the switch, for the record (main.ts: WRIT_OPERATOR or USER). */
  readonly operator: string;
}

function scopeFrom(o: KillOptions): KillScope {
  const given: KillScope[] = [];
  if (o.agent !== undefined) given.push({ kind: "agent", agent: o.agent });
  if (o.class !== undefined) given.push({ kind: "class", runnerClass: o.class });
  if (o.env !== undefined) given.push({ kind: "environment", environment: o.env });
  if (o.all) given.push({ kind: "all" });
  if (given.length !== 1)
    throw new CliFailure("ERR_USAGE", "give exactly one of --agent, --class, --env, --all");
  return given[0]!;
}

function renderEngage(r: EngageResult): string {
  const lines = [
    `${r.already ? "kill switch already engaged" : "kill switch engaged"} for ${describeScope(r.kill.scope)} (${r.kill.id})`,
    `  issuance stopped; ${r.revoked.length} outstanding writ(s) revoked`,
  ];
  for (const w of r.revoked)
    lines.push(
      `  - ${w.id}  ${w.agent}  ${w.playbook}  ${w.environment}  (would have expired ${w.expiresAt.toISOString()})`,
    );
  lines.push(`  lift with: writ kill --lift ${flagsOf(r.kill.scope)}`);
  return lines.join("\n");
}

function flagsOf(scope: KillScope): string {
  switch (scope.kind) {
    case "agent":
      return `--agent ${scope.agent}`;
    case "class":
      return `--class ${scope.runnerClass}`;
    case "environment":
      return `--env ${scope.environment}`;
    case "all":
      return "--all";
  }
}

export async function kill(o: KillOptions, io: Io, d: KillDefaults): Promise<number> {
  const scope = scopeFrom(o);
  const policy = await requirePolicy(o.config, io, o.json);
  const mapError = (err: unknown) => {
    if (isWritError(err, "ERR_KILL_NOT_ENGAGED")) return new CliFailure(err.code, err.message, EXIT.no);
    if (isWritError(err, "ERR_KILL_SCOPE")) return new CliFailure(err.code, err.message, EXIT.usage);
    return err;
  };
  const target = { data: o.data ?? d.dataDir, databaseUrl: d.databaseUrl };
  return withOperator(target, policy.config, { create: true, migrate: true, mapError }, async (ops) => {
    if (o.lift) {
      const { lifted } = await ops.liftKill(scope, { by: d.operator });
      emit(
        io,
        o.json,
        { lifted },
        () => `kill switch lifted for ${describeScope(scope)} (${lifted.map((k) => k.id).join(", ")})`,
      );
      return EXIT.ok;
    }
    const r = await ops.engageKill(scope, { by: d.operator, reason: o.reason });
    emit(io, o.json, r, () => renderEngage(r));
    return EXIT.ok;
  });
}

export function registerKill(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: KillDefaults,
): void {
  program
    .command("kill")
    .description("stop issuance and revoke every outstanding writ in scope, at once; --lift ends it")
    .option("--agent <id>", "one agent")
    .option("--class <runner-class>", "every agent of a runner class")
    .option("--env <environment>", "one environment")
    .option("--all", "everything", false)
    .option("--reason <text>", "why, for the record")
    .option("--lift", "lift the kill switch of exactly this scope", false)
    .option("-c, --config <file>", "the config file", DEFAULT_CONFIG)
    .option("--data <dir>", `data folder (default: WRIT_DATA_DIR or ${d.dataDir})`)
    .option("--json", "print JSON", false)
    .action(async (o: KillOptions) => setExit(await kill(o, io, d)));
}
