import { describe, expect, it } from "vitest";
import { sendsNextFirst } from "../../src/app.js";

describe("writ serve's audit log: the next group commit sent before the answers", () => {
  it("on PostgreSQL by default, where the database commits it while the answers go out", () => {
    expect(sendsNextFirst({ databaseUrl: "postgres://127.0.0.1/writ" })).toBe(true);
  });

  it("not on the embedded store, whose commit would run on the server's thread ahead of the answers", () => {
    expect(sendsNextFirst({})).toBe(false);
    expect(sendsNextFirst({ databaseUrl: undefined })).toBe(false);
  });

  it("as told, on either store", () => {
    expect(sendsNextFirst({ databaseUrl: "postgres://127.0.0.1/writ", auditSendNextFirst: false })).toBe(
      false,
    );
    expect(sendsNextFirst({ auditSendNextFirst: true })).toBe(true);
  });
});
