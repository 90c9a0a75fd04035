/**
 * The defence behind the HTTP edges' checks: a value the database cannot hold (NUL in text) is a
 * coded `ERR_VALUE_UNSTORABLE` from the repositories — the caller's input — never an anonymous
 * `ERR_STORE` that the edges can only answer with 500. On both backends: PGlite and PostgreSQL
 * refuse NUL in text with SQLSTATE 22021.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { approvalService, killSwitch } from "../../src/broker/index.js";
import { isWritError } from "../../src/core/index.js";
import { ERR_VALUE_UNSTORABLE } from "../../src/store/index.js";
import { forEachBackend } from "./backends.js";

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "no error";
  } catch (err) {
    return isWritError(err) ? err.code : `uncoded: ${String(err)}`;
  }
}

forEachBackend("values the store cannot hold", (h) => {
  beforeAll(() => h.setup(), 60_000);
  afterAll(() => h.teardown());

  it("NUL in an agent id: ERR_VALUE_UNSTORABLE when listing its writs", async () => {
    expect(await codeOf(h.store.writs.listActive("agent\u0000", new Date()))).toBe(ERR_VALUE_UNSTORABLE);
  });

  it("NUL in a kill scope: ERR_VALUE_UNSTORABLE when lifting it", async () => {
    const kill = killSwitch(h.store);
    expect(await codeOf(kill.lift({ kind: "agent", agent: "a\u0000" }, { by: "ops" }))).toBe(
      ERR_VALUE_UNSTORABLE,
    );
  });

  it("NUL in an approval id or environment: ERR_VALUE_UNSTORABLE", async () => {
    const approvals = approvalService(h.store);
    expect(await codeOf(approvals.get("ar_\u0000"))).toBe(ERR_VALUE_UNSTORABLE);
    expect(await codeOf(approvals.listPending({ environment: "\u0000" }))).toBe(ERR_VALUE_UNSTORABLE);
  });

  it("the store still answers after the refusals", async () => {
    expect(await h.store.writs.listActive("agent", new Date())).toEqual([]);
  });
});
