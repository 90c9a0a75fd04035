/**
 * The kill switch as the gateway sees it: the engaged kills, read every `pollMs` (so a kill on any
 * process reaches this one within that), and whether one stops an identity. A kill switch that
 * cannot be read stops everyone (fail closed).
 */
import { blocks, type KillSwitch } from "../broker/index.js";
import { type Agent, q } from "../core/index.js";

type Engaged = Awaited<ReturnType<KillSwitch["engaged"]>>;

/** Why the kills (or a kill switch that cannot be read) stop this identity, if they do. */
export function killedWhy(
  kills: Engaged | "unreadable",
  agentOf: (id: string) => Pick<Agent, "id" | "runnerClass"> | undefined,
  id: { readonly agent: string; readonly environment: string },
): string | undefined {
  if (kills === "unreadable") return "the kill switch cannot be read";
  const agent = agentOf(id.agent);
  if (!agent) return `agent ${q(id.agent)} is no longer declared`;
  const k = kills.find((kill) => blocks(kill, agent, id.environment));
  return k ? `kill switch ${q(k.id)} is engaged` : undefined;
}

export interface KillWatchOptions {
  readonly kill: Pick<KillSwitch, "engaged">;
  readonly agentOf: (id: string) => Pick<Agent, "id" | "runnerClass"> | undefined;
  /** After every read: end what the kills now stop. */
  readonly afterPoll: () => Promise<void>;
  readonly pollMs: number;
}

export class KillWatch {
  #kills: Engaged | "unreadable" = [];
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  readonly #o: KillWatchOptions;

  constructor(o: KillWatchOptions) {
    this.#o = o;
  }

  /** Reads the kills once, then every `pollMs` (one read at a time) until `stop`. */
  async start(): Promise<void> {
    await this.poll();
    this.#timer = setInterval(() => {
      if (this.#polling) return;
      this.#polling = true;
      this.poll().finally(() => {
        this.#polling = false;
      });
    }, this.#o.pollMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async poll(): Promise<void> {
    try {
      this.#kills = await this.#o.kill.engaged();
    } catch {
      this.#kills = "unreadable"; // fail closed: no call passes while the kill switch cannot be read
    }
    await this.#o.afterPoll();
  }

  killedWhy(id: { readonly agent: string; readonly environment: string }): string | undefined {
    return killedWhy(this.#kills, this.#o.agentOf, id);
  }
}
