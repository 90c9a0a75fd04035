/**
 * Delegated writs in the store, on every backend: a writ names its parent; revoking one revokes its
 * descendants, a descendant's use is spent from every ancestor or not at all, and `lineage` reads
 * the chain (docs/broker.md#delegation).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { ERR_WRIT_EXHAUSTED, ERR_WRIT_REVOKED, type NewWrit } from "../../src/store/index.js";
import { forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

let counter = 0;
function writ(overrides: Partial<NewWrit> = {}): NewWrit {
  counter += 1;
  return {
    id: `d-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    agent: "lead-bot",
    playbook: "work",
    environment: "dev",
    params: {},
    grants: [{ action: "k8s:apps/deployments:get", resource: "shop/checkout" }],
    issuedAt: at(0),
    expiresAt: at(600),
    ...overrides,
  };
}

async function refusal(p: Promise<unknown>): Promise<{ code?: string; message?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message?: string };
  }
  return {};
}

forEachBackend("store: delegated writs", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  /** A root, its child and grandchild, and an unrelated writ. */
  async function family(rootUses?: number) {
    const root = await h.store.writs.insert(writ({ maxUses: rootUses }));
    const child = await h.store.writs.insert(writ({ agent: "helper-bot", parent: root.id }));
    const grandchild = await h.store.writs.insert(writ({ agent: "sub-helper", parent: child.id }));
    const other = await h.store.writs.insert(writ());
    return { root, child, grandchild, other };
  }

  it("stores the parent, and reads a writ's lineage up to its root", async () => {
    const f = await family();
    expect(f.grandchild.parent).toBe(f.child.id);
    expect((await h.store.writs.get(f.child.id))?.parent).toBe(f.root.id);
    expect((await h.store.writs.lineage(f.grandchild.id)).map((w) => w.id)).toEqual([
      f.grandchild.id,
      f.child.id,
      f.root.id,
    ]);
    expect(await h.store.writs.lineage("no-such-writ")).toEqual([]);
  });

  it("revoking a writ revokes every descendant at once, and nothing else", async () => {
    const f = await family();
    const r = await h.store.writs.revoke(f.root.id, "test", at(10));
    expect(r.alreadyRevoked).toBe(false);
    expect(r.descendants.map((d) => d.id).sort()).toEqual([f.child.id, f.grandchild.id].sort());
    for (const id of [f.root.id, f.child.id, f.grandchild.id]) {
      expect((await h.store.writs.get(id))?.status).toBe("revoked");
    }
    expect((await h.store.writs.get(f.other.id))?.status).toBe("active");
    // revoking the middle of a chain leaves its ancestors alone
    const g = await family();
    await h.store.writs.revoke(g.child.id, "test", at(10));
    expect((await h.store.writs.get(g.root.id))?.status).toBe("active");
    expect((await h.store.writs.get(g.grandchild.id))?.status).toBe("revoked");
  });

  it("spends a descendant's use from every ancestor, or from none", async () => {
    const f = await family(2);
    expect(await h.store.writs.spendUse(f.grandchild.id, at(1))).toEqual({ uses: 1, usesLeft: 1 });
    expect((await h.store.writs.get(f.root.id))?.uses).toBe(1);
    expect((await h.store.writs.get(f.child.id))?.uses).toBe(1);
    expect(await h.store.writs.spendUse(f.root.id, at(2))).toEqual({ uses: 2, usesLeft: 0 });
    const r = await refusal(h.store.writs.spendUse(f.grandchild.id, at(3)));
    expect(r.code).toBe(ERR_WRIT_EXHAUSTED);
    expect(r.message).toContain(f.root.id);
    // nothing was charged for the refused use
    expect((await h.store.writs.get(f.grandchild.id))?.uses).toBe(1);
    expect((await h.store.writs.get(f.child.id))?.uses).toBe(1);
  });

  it("never lets concurrent descendants outspend their root", async () => {
    const root = await h.store.writs.insert(writ({ maxUses: 3 }));
    const kids = await Promise.all(
      [1, 2, 3, 4].map(() => h.store.writs.insert(writ({ agent: "helper-bot", parent: root.id }))),
    );
    const results = await Promise.allSettled(
      kids.flatMap((k) => [1, 2].map(() => h.store.writs.spendUse(k.id, at(1)))),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    for (const r of results) {
      if (r.status === "rejected") expect((r.reason as { code?: string }).code).toBe(ERR_WRIT_EXHAUSTED);
    }
    expect((await h.store.writs.get(root.id))?.uses).toBe(3);
  });

  it("refuses a use of a child whose parent is revoked", async () => {
    const root = await h.store.writs.insert(writ());
    const child = await h.store.writs.insert(writ({ agent: "helper-bot", parent: root.id }));
    await h.store.writs.revoke(root.id, "test", at(1));
    expect((await refusal(h.store.writs.spendUse(child.id, at(2)))).code).toBe(ERR_WRIT_REVOKED);
  });
});
