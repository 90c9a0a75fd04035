/**
 * The issuer registry and the server's start: each configured system's factory is called once per
 * environment with its own section; an issuer that cannot start stops `writ serve` with
 * `ERR_DOWNSTREAM_CONFIG` naming where (and leaves the data folder usable); without a `downstream:`
 * section there is no issuer and no reaper. Also the reaper's timer: a pass at start, then one per
 * period, never two at once, and stopped on close.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createServer, loadPolicy } from "../../src/app.js";
import { WritError } from "../../src/core/index.js";
import {
  buildRegistry,
  type DownstreamConfig,
  type DownstreamLedger,
  type DownstreamRecord,
  ERR_DOWNSTREAM_CONFIG,
  type IssuerFactories,
  startReaper,
} from "../../src/downstream/index.js";
import { openStore } from "../../src/store/index.js";
import { configDir } from "./fixture.js";
import { TestDownstream } from "./test-issuer.js";

const noLedger: DownstreamLedger = {
  intend: async () => {
    throw new Error("unused");
  },
  created: async () => {},
  removed: async () => {},
  due: async () => [],
  ofWrit: async () => [],
};
const deps = { ledger: noLedger, audit: async () => undefined };

async function configOf(): Promise<DownstreamConfig> {
  const { file } = await configDir();
  const loaded = await loadPolicy(file);
  return loaded.policy!.config.downstream!;
}

describe("the registry", () => {
  it("builds each configured system's issuer with its own section", async () => {
    const config = await configOf();
    const seen: string[] = [];
    const system = new TestDownstream();
    const f = system.factories();
    const factories: IssuerFactories = {
      aws: async (cfg, d) => {
        seen.push(`aws:${cfg.region}`);
        return f.aws(cfg, d);
      },
      github: async (cfg, d) => {
        seen.push(`github:${cfg.installationId}`);
        return f.github(cfg, d);
      },
      kubernetes: async (cfg, d) => {
        seen.push(`kubernetes:${cfg.server}`);
        return f.kubernetes(cfg, d);
      },
    };
    const registry = await buildRegistry(config, deps, factories);
    expect(seen).toEqual(["aws:eu-west-1", "github:678", "kubernetes:https://k8s.acme.example:6443"]);
    expect(registry.all().map((c) => `${c.environment}/${c.system}`)).toEqual([
      "dev/aws",
      "dev/github",
      "dev/kubernetes",
    ]);
    expect(registry.issuer("dev", "github")?.system).toBe("github");
    expect(registry.issuer("prod", "github")).toBeUndefined();
    expect((await buildRegistry(undefined, deps, factories)).all()).toEqual([]);
  });

  it("an issuer that cannot start is ERR_DOWNSTREAM_CONFIG naming where; so is one built for another system", async () => {
    const config = await configOf();
    const system = new TestDownstream();
    const broken: IssuerFactories = {
      ...system.factories(),
      github: async () => {
        throw new WritError(ERR_DOWNSTREAM_CONFIG, "the App key file is missing");
      },
    };
    await expect(buildRegistry(config, deps, broken)).rejects.toMatchObject({
      code: ERR_DOWNSTREAM_CONFIG,
      message: "downstream.dev.github: the App key file is missing",
    });
    const crossed: IssuerFactories = {
      ...system.factories(),
      aws: async (_c, d) => system.issuer("github", d),
    };
    await expect(buildRegistry(config, deps, crossed)).rejects.toMatchObject({ code: ERR_DOWNSTREAM_CONFIG });
  });

  it("a server whose issuers cannot start (no key file, no token here) fails closed", async () => {
    const { dir, file } = await configDir();
    const loaded = await loadPolicy(file);
    const dataDir = join(dir, "data");
    await expect(createServer({ policy: loaded.policy!, dataDir, version: "test" })).rejects.toMatchObject({
      code: ERR_DOWNSTREAM_CONFIG,
    });
    // the store was closed on the way out: the folder opens again
    const store = await openStore({ dataDir });
    await store.close();
  }, 120_000); // two openings of the embedded store: slow on a loaded machine
});

describe("the reaper's timer", () => {
  it("passes once at start and once per period, never two at once, and stops", async () => {
    let passes = 0;
    let concurrent = 0;
    let most = 0;
    const record = { id: "r", system: "github", environment: "dev" } as DownstreamRecord;
    const ledger: DownstreamLedger = {
      ...noLedger,
      due: async () => {
        passes++;
        concurrent++;
        most = Math.max(most, concurrent);
        await new Promise((r) => setTimeout(r, 30));
        concurrent--;
        return [record];
      },
    };
    const audits: string[] = [];
    const reaper = startReaper(
      {
        registry: { issuer: () => undefined, all: () => [] },
        ledger,
        audit: async (type) => {
          audits.push(type);
        },
      },
      { periodMs: 20 },
    );
    await new Promise((r) => setTimeout(r, 200));
    await reaper.stop();
    const after = passes;
    await new Promise((r) => setTimeout(r, 100));
    expect(passes).toBe(after);
    expect(passes).toBeGreaterThanOrEqual(3);
    expect(most).toBe(1);
    // no issuer for the record any more: audited as a failure each pass, left for the next
    expect(audits.length).toBe(passes);
    expect(new Set(audits)).toEqual(new Set(["downstream.remove_failed"]));
  });
});
