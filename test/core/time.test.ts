import { describe, expect, it } from "vitest";
import { type ChangeWindow, isWritError, parseDuration, windowState } from "../../src/core/index.js";

const win = (days: number[], start: string, end: string, timezone: string): ChangeWindow => {
  const m = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3));
  return {
    kind: "change-window",
    days: days as ChangeWindow["days"],
    start: m(start),
    end: m(end),
    timezone,
  };
};

describe("durations", () => {
  it.each([
    ["90s", 90],
    ["15m", 900],
    ["1h30m", 5400],
    ["2d", 172800],
  ])("%s", (text, seconds) => expect(parseDuration(text)).toBe(seconds));

  it.each(["", "15", "15 m", "1h 30m", "0s", "-5m", "5w"])("refuses %j", (text) => {
    try {
      parseDuration(text);
      expect.fail("parsed");
    } catch (e) {
      expect(isWritError(e, "ERR_DURATION")).toBe(true);
    }
  });
});

describe("change windows", () => {
  const london = [win([1, 2, 3, 4], "09:00", "17:00", "Europe/London")];

  it("inside, with the end in the window's own zone (BST: UTC+1)", () => {
    const s = windowState(london, new Date("2026-07-01T10:00:00Z")); // Wed 11:00 BST
    expect(s.inside).toBe(true);
    expect(s.endsAt?.toISOString()).toBe("2026-07-01T16:00:00.000Z");
  });

  it("outside after hours and on other days", () => {
    expect(windowState(london, new Date("2026-07-01T16:30:00Z")).inside).toBe(false); // 17:30 BST
    expect(windowState(london, new Date("2026-07-03T10:00:00Z")).inside).toBe(false); // Friday
  });

  it("a window past midnight belongs to the day it starts", () => {
    const night = [win([5], "22:00", "02:00", "UTC")]; // Friday night
    expect(windowState(night, new Date("2026-07-03T23:00:00Z")).endsAt?.toISOString()).toBe(
      "2026-07-04T02:00:00.000Z",
    );
    expect(windowState(night, new Date("2026-07-04T01:00:00Z")).inside).toBe(true); // Saturday 01:00
    expect(windowState(night, new Date("2026-07-05T01:00:00Z")).inside).toBe(false); // Sunday 01:00
  });

  it("no windows means always inside", () => {
    expect(windowState([], new Date()).inside).toBe(true);
  });
});
