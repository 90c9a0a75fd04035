/**
 * `writ tools list` and `writ tools approve SERVER:TOOL`: the gateway's pinned tool definitions.
 * A tool whose definition changed since it was pinned, or that is new on an upstream already
 * pinned, is quarantined — hidden and refused — until an operator approves the definition the
 * gateway saw last (optionally naming its hash, so what is approved is what was reviewed).
 *
 *   writ tools list [--config FILE] [--data DIR] [--json]
 *   writ tools approve SERVER:TOOL [--hash SHA256] [--data DIR] [--json]
 *
 * They read and write the store; when a running `writ serve` (or `writ gateway --stdio`) holds the
 * embedded store, they ask that process over its admin API. Exit codes: 0 done, 1 no such pin (or another hash was seen),
 * 2 usage, 3 store failure.
 */
import type { Command } from "commander";
import { isWritError } from "../core/index.js";
import {
  ERR_PIN_NOT_FOUND,
  type PinOperator,
  parseToolRef,
  pinStore,
  remotePins,
  type ToolPin,
} from "../gateway/index.js";
import { ERR_STORE_LOCKED } from "../store/index.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";
import { readServeFile } from "./serve-file.js";
import { withStore } from "./store.js";

export interface ToolsDefaults {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  /** Who approves, for the record (main.ts: WRIT_OPERATOR or USER). */
  readonly operator: string;
}

interface Common {
  readonly data?: string;
  readonly json: boolean;
}

async function withPins<T>(o: Common, d: ToolsDefaults, fn: (pins: PinOperator) => Promise<T>): Promise<T> {
  const data = o.data ?? d.dataDir;
  const mapError = (err: unknown) =>
    isWritError(err, ERR_PIN_NOT_FOUND) ? new CliFailure(err.code, err.message, EXIT.no) : err;
  try {
    return await withStore({ data, databaseUrl: d.databaseUrl }, { mapError }, async (store) => {
      await store.migrate();
      return fn(pinStore(store));
    });
  } catch (err) {
    if (!(err instanceof CliFailure) || err.code !== ERR_STORE_LOCKED) throw err;
    const running = await readServeFile(data);
    if (running === undefined) throw err;
    try {
      return await fn(remotePins(running.url, running.adminToken));
    } catch (remote) {
      throw mapError(remote);
    }
  }
}

function render(p: ToolPin): string {
  const state = p.status === "pinned" ? "pinned     " : "QUARANTINED";
  const extra =
    p.status === "quarantined"
      ? `  seen ${p.seenHash.slice(0, 12)}… (${p.approvedHash === undefined ? "new on a pinned upstream" : `pinned ${p.approvedHash.slice(0, 12)}…`}) — writ tools approve ${p.server}:${p.tool} --hash ${p.seenHash}`
      : `  ${p.seenHash.slice(0, 12)}…  approved by ${p.approvedBy ?? "?"}`;
  return `${state}  ${p.server}:${p.tool}${extra}`;
}

export function registerTools(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: ToolsDefaults,
): void {
  const tools = program.command("tools").description("the gateway's pinned tool definitions");
  tools
    .command("list")
    .description("every tool the gateway has seen, pinned or quarantined")
    .option("--data <dir>", `data folder (default: WRIT_DATA_DIR or ${d.dataDir})`)
    .option("--json", "print JSON", false)
    .action(async (o: Common) => {
      const pins = await withPins(o, d, (p) => p.list());
      emit(io, o.json, { pins }, () =>
        pins.length === 0 ? "the gateway has seen no tools yet" : pins.map(render).join("\n"),
      );
      setExit(pins.some((p) => p.status === "quarantined") ? EXIT.no : EXIT.ok);
    });
  tools
    .command("approve <server:tool>")
    .description("approve the definition last seen: it becomes the pinned one and leaves quarantine")
    .option("--hash <sha256>", "approve only if this is the definition seen last")
    .option("--data <dir>", `data folder (default: WRIT_DATA_DIR or ${d.dataDir})`)
    .option("--json", "print JSON", false)
    .action(async (ref: string, o: Common & { hash?: string }) => {
      let target: { server: string; tool: string };
      try {
        target = parseToolRef(ref);
      } catch (err) {
        throw new CliFailure("ERR_USAGE", (err as Error).message);
      }
      if (o.hash !== undefined && !/^[0-9a-f]{64}$/.test(o.hash)) {
        throw new CliFailure("ERR_USAGE", "--hash: expected 64 lower-case hex digits (SHA-256)");
      }
      const pin = await withPins(o, d, (p) =>
        p.approve(target.server, target.tool, { by: d.operator, hash: o.hash }),
      );
      emit(io, o.json, pin, () => `approved ${pin.server}:${pin.tool} (${pin.seenHash})`);
      setExit(EXIT.ok);
    });
}
