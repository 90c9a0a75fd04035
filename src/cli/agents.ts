/**
 * `writ agents list|show`: the agents inventory — what writ.yaml declares of each agent, the
 * credentials writ knows it holds, its last activity and open findings, with flags (docs/cli.md).
 *
 *   writ agents list [--config FILE] [--data DIR] [--dormant-days N] [--idle DURATION] [--json]
 *   writ agents show ID [same options]
 *
 * Exit codes: 0 done, 1 writ.yaml invalid, 2 usage or unknown agent, 3 store failure.
 */
import type { Command } from "commander";
import type { Policy } from "../app.js";
import { isWritError, parseDuration } from "../core/index.js";
import {
  agentText,
  buildInventory,
  DEFAULT_DORMANT_DAYS,
  type Inventory,
  inventoryText,
  type OperationalState,
  readOperationalState,
} from "../operate/index.js";
import type { Store } from "../store/index.js";
import { DEFAULT_CONFIG, requirePolicy } from "./common.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";
import { type StoreTarget, withStore } from "./store.js";

export interface AgentsDefaults {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
}

/** writ.yaml and one read of the store at `now`: what the inventory and the maturity check judge. */
export async function loadOperational(
  configFile: string,
  target: StoreTarget,
  io: Io,
  json: boolean,
  now: Date,
  extra?: (store: Store) => Promise<void>,
): Promise<{ policy: Policy; state: OperationalState }> {
  const policy = await requirePolicy(configFile, io, json);
  const state = await withStore(target, {}, async (store) => {
    await store.migrate();
    const s = await readOperationalState(store, { now });
    if (extra) await extra(store);
    return s;
  });
  return { policy, state };
}

export function durationOption(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDuration(text);
  } catch (err) {
    if (isWritError(err)) throw new CliFailure("ERR_USAGE", `${flag}: ${err.message}`);
    throw err;
  }
}

function dormantDays(text: string | undefined): number {
  if (text === undefined) return DEFAULT_DORMANT_DAYS;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1)
    throw new CliFailure(
      "ERR_USAGE",
      `--dormant-days \`${text}\`: expected a whole number of days, at least 1`,
    );
  return n;
}

interface ListOptions {
  config: string;
  data?: string;
  dormantDays?: string;
  idle?: string;
  json: boolean;
}

export function registerAgents(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: AgentsDefaults,
): void {
  const cmd = program
    .command("agents")
    .description("the agents inventory: declared, credentials, activity, flags");
  const inventory = async (o: ListOptions): Promise<Inventory> => {
    const days = dormantDays(o.dormantDays);
    const idle = durationOption("--idle", o.idle);
    const now = new Date();
    const { policy, state } = await loadOperational(
      o.config,
      { data: o.data ?? d.dataDir, databaseUrl: d.databaseUrl },
      io,
      o.json,
      now,
    );
    return buildInventory(policy.config, state, {
      now,
      dormantDays: days,
      idleSeconds: idle,
      locate: policy.locate,
    });
  };
  const options = (c: Command) =>
    c
      .option("--config <file>", "writ.yaml", DEFAULT_CONFIG)
      .option("--data <dir>", "data folder (the embedded store); WRIT_DATABASE_URL for PostgreSQL")
      .option(
        "--dormant-days <n>",
        `no activity for this many days flags an agent dormant (default ${DEFAULT_DORMANT_DAYS})`,
      )
      .option("--idle <duration>", "a live credential unused this long outlives its use (default 1h)")
      .option("--json", "print JSON", false);
  options(cmd.command("list").description("every agent: writ.yaml's and those only the store knows")).action(
    async (o: ListOptions) => {
      const inv = await inventory(o);
      emit(io, o.json, inv, () => inventoryText(inv));
      setExit(EXIT.ok);
    },
  );
  options(cmd.command("show").description("one agent in full").argument("<id>")).action(
    async (id: string, o: ListOptions) => {
      const inv = await inventory(o);
      const entry = inv.agents.find((a) => a.id === id);
      if (!entry)
        throw new CliFailure(
          "ERR_AGENT_NOT_FOUND",
          `no agent \`${id}\` in ${o.config} or the store`,
          EXIT.usage,
        );
      emit(
        io,
        o.json,
        { at: inv.at, dormantDays: inv.dormantDays, idleSeconds: inv.idleSeconds, agent: entry },
        () => agentText(inv, id),
      );
      setExit(EXIT.ok);
    },
  );
}
