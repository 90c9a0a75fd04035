/**
 * Durations (`90s`, `15m`, `1h30m`, `2d`) and change windows evaluated in their own time zone.
 * Pure: the current time is always an argument.
 */
import { q, WritError } from "./errors.js";
import type { ChangeWindow, Weekday } from "./model.js";

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function parseDuration(text: string): number {
  const trimmed = String(text).trim();
  const re = /(\d+)([smhd])/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(trimmed); m !== null; m = re.exec(trimmed)) {
    total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (trimmed.length === 0 || consumed !== trimmed.length) {
    throw new WritError(
      "ERR_DURATION",
      `duration ${q(text)}: expected a number and a unit, e.g. \`90s\`, \`15m\`, \`1h30m\`, \`2d\``,
    );
  }
  if (total <= 0) throw new WritError("ERR_DURATION", `duration ${q(text)}: must be longer than zero`);
  return total;
}

export function formatDuration(seconds: number): string {
  const parts: string[] = [];
  let rest = Math.floor(seconds);
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join("") || "0s";
}

export const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

/** `09:00` → minutes after midnight; `24:00` is allowed as an end. */
export function parseClock(text: string): number {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(text);
  if (!m || (m[1] === "24" && m[2] !== "00")) {
    throw new WritError("ERR_CLOCK", `time ${q(text)}: expected \`HH:MM\` on a 24-hour clock`);
  }
  return Number(m[1]) * 60 + Number(m[2]);
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      weekday: "short",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(tz, f);
  }
  return f;
}

export interface LocalTime {
  readonly weekday: Weekday;
  /** Minutes after local midnight. */
  readonly minute: number;
  readonly second: number;
}

export function localTime(at: Date, tz: string): LocalTime {
  const parts = Object.fromEntries(
    formatter(tz)
      .formatToParts(at)
      .map((p) => [p.type, p.value]),
  );
  const weekday = WEEKDAYS.indexOf(
    (parts.weekday ?? "").toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number],
  );
  return {
    weekday: weekday as Weekday,
    minute: Number(parts.hour) * 60 + Number(parts.minute),
    second: Number(parts.second),
  };
}

export interface WindowState {
  readonly inside: boolean;
  /** When inside: the moment the window that holds `at` closes. */
  readonly endsAt?: Date | undefined;
}

function insideOne(w: ChangeWindow, at: Date): Date | undefined {
  const t = localTime(at, w.timezone);
  const sinceMidnight = t.minute * 60 + t.second;
  const startS = w.start * 60;
  const endS = w.end * 60;
  const ms = at.getTime();
  if (w.end > w.start) {
    if (w.days.includes(t.weekday) && sinceMidnight >= startS && sinceMidnight < endS) {
      return new Date(ms + (endS - sinceMidnight) * 1000);
    }
    return undefined;
  }
  // runs past midnight: the part after midnight belongs to the previous day's window
  if (w.days.includes(t.weekday) && sinceMidnight >= startS) {
    return new Date(ms + (86400 - sinceMidnight + endS) * 1000);
  }
  const yesterday = ((t.weekday + 6) % 7) as Weekday;
  if (w.days.includes(yesterday) && sinceMidnight < endS) return new Date(ms + (endS - sinceMidnight) * 1000);
  return undefined;
}

/**
 * Is `at` inside any of the windows? An empty list means no restriction. When several windows hold
 * `at`, the latest end is reported. (Ends are computed in local wall-clock terms; across a DST
 * change inside the window they can be off by the DST shift — the broker caps TTLs by the end, so
 * the error is at most one hour and only on those two nights a year.)
 */
export function windowState(windows: readonly ChangeWindow[], at: Date): WindowState {
  if (windows.length === 0) return { inside: true };
  let best: Date | undefined;
  for (const w of windows) {
    const end = insideOne(w, at);
    if (end && (!best || end > best)) best = end;
  }
  return best ? { inside: true, endsAt: best } : { inside: false };
}
