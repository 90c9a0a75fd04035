/**
 * The embedded store's driver (src/store/pglite-dialect.ts): statements without parameters go to
 * the database as one wire message, not through PGlite's `exec` (its queue and second trip), and
 * still answer as `exec` does — rows typed by PGlite's parsers, the last statement's rows, affected
 * rows summed — with PostgreSQL's errors and their SQLSTATE, notifications delivered, and writes
 * riding with a carrier committed with it or not at all.
 */
import { PGlite } from "@electric-sql/pglite";
import { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqlState } from "../../src/store/errors.js";
import {
  carrierQuery,
  carryWith,
  PGliteDialect,
  registerCarrier,
  simpleQuery,
} from "../../src/store/pglite-dialect.js";

describe("pglite dialect: the simple protocol", () => {
  let client: PGlite;
  let db: Kysely<Record<string, never>>;
  const trips = { exec: 0, stream: 0 };

  beforeAll(async () => {
    client = await PGlite.create();
    const exec = client.exec.bind(client);
    const stream = client.execProtocolStream.bind(client);
    client.exec = (...a: Parameters<typeof exec>) => {
      trips.exec += 1;
      return exec(...a);
    };
    client.execProtocolStream = (...a: Parameters<typeof stream>) => {
      trips.stream += 1;
      return stream(...a);
    };
    const dialect = new PGliteDialect({ pglite: client });
    db = new Kysely({ dialect });
    registerCarrier(db, dialect);
    await db.executeQuery(simpleQuery("create table t (id int primary key, note text, doc jsonb)"));
  });
  afterAll(async () => {
    await db.destroy();
  });

  const run = <R>(text: string) => db.executeQuery<R>(simpleQuery(text));

  it("sends a statement as one wire message, not through exec", async () => {
    trips.exec = 0;
    trips.stream = 0;
    const r = await run<{ one: number }>("select 1 as one");
    expect(r.rows).toEqual([{ one: 1 }]);
    expect(trips).toEqual({ exec: 0, stream: 1 });
  });

  it("answers as exec does: the last statement's rows, typed, and the affected rows", async () => {
    await run(`insert into t values (1, 'a', '{"k":[1,2]}'), (2, 'b', null)`);
    // the same text both ways (it changes nothing the second time it runs)
    const text = `update t set note = note where id in (1, 2);
      select id, note, doc, now() as at from t order by id`;
    const r = await run<{ id: number; note: string; doc: unknown; at: Date }>(text);
    expect(r.rows.map(({ at, ...rest }) => rest)).toEqual([
      { id: 1, note: "a", doc: { k: [1, 2] } },
      { id: 2, note: "b", doc: null },
    ]);
    expect(r.rows[0]!.at).toBeInstanceOf(Date);
    const viaExec = await client.exec(text);
    expect(r.rows.map(({ at, ...rest }) => rest)).toEqual(
      viaExec.at(-1)!.rows.map(({ at, ...rest }: Record<string, unknown>) => rest),
    );
    expect(r.numAffectedRows).toBe(BigInt(viaExec.reduce((n, x) => n + (x.affectedRows ?? 0), 0)));
    expect(r.numAffectedRows).toBeGreaterThanOrEqual(2n);
  });

  it("throws PostgreSQL's error with its SQLSTATE, stores nothing of the failed text, and answers after", async () => {
    const failed = await run("insert into t values (3, 'c', null); select 1 / 0").catch((e: unknown) => e);
    expect(sqlState(failed)).toBe("22012");
    expect((await run<{ n: number }>("select count(*)::int as n from t where id = 3")).rows).toEqual([
      { n: 0 },
    ]);
    const duplicate = await run("insert into t values (1, 'again', null)").catch((e: unknown) => e);
    expect(sqlState(duplicate)).toBe("23505");
    expect((await run<{ one: number }>("select 1 as one")).rows).toEqual([{ one: 1 }]);
  });

  it("keeps a transaction across statements, and rolls it back", async () => {
    await db.transaction().execute(async (trx) => {
      await trx.executeQuery(simpleQuery("insert into t values (10, 'in', null)"));
      const inside = await trx.executeQuery<{ n: number }>(
        simpleQuery("select count(*)::int as n from t where id = 10"),
      );
      expect(inside.rows).toEqual([{ n: 1 }]);
    });
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.executeQuery(simpleQuery("insert into t values (11, 'out', null)"));
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const r = await run<{ id: number }>("select id from t where id in (10, 11) order by id");
    expect(r.rows).toEqual([{ id: 10 }]);
  });

  it("delivers notifications", async () => {
    const heard: string[] = [];
    const off = client.onNotification((channel, payload) => heard.push(`${channel}:${payload}`));
    try {
      await run("listen ch");
      await run("select pg_notify('ch', 'hello')");
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(heard).toEqual(["ch:hello"]);
    } finally {
      off();
      await run("unlisten ch");
    }
  });

  it("commits the writes riding with a carrier with it, or neither", async () => {
    let rider: string | undefined = "insert into t values (20, 'rider', null)";
    const outcomes: string[] = [];
    expect(
      carryWith(db, {
        take() {
          const text = rider;
          rider = undefined;
          return text;
        },
        settled: (err) => outcomes.push(err === undefined ? "committed" : `failed ${sqlState(err)}`),
      }),
    ).toBe(true);
    trips.stream = 0;
    const carried = await db.executeQuery<{ n: number }>(carrierQuery("select count(*)::int as n from t"));
    expect(trips.stream).toBe(1);
    expect(carried.rows).toEqual([{ n: 4 }]);
    rider = "insert into t values (21, 'rider', null)";
    const failed = await db
      .executeQuery(carrierQuery("insert into t values (1, 'taken', null)"))
      .catch((e: unknown) => e);
    expect(sqlState(failed)).toBe("23505");
    expect(outcomes).toEqual(["committed", "failed 23505"]);
    const r = await run<{ id: number }>("select id from t where id in (20, 21) order by id");
    expect(r.rows).toEqual([{ id: 20 }]);
  });
});
