/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof` or the inspector): self time by function
 * and by file, the largest first. `npx tsx bench/profile-summary.ts FILE [TOP]`.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function summarise(profile: Profile, top = 40): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = profile.endTime - profile.startTime;
  const fnTime = new Map<string, number>();
  const fileTime = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const file = f.url
      .replace(/^file:\/\//, "")
      .replace(/.*\/node_modules\//, "nm:")
      .replace(/.*\/(src|test|bench)\//, "$1/");
    const fn = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
    fnTime.set(fn, (fnTime.get(fn) ?? 0) + us);
    const pkg = file.startsWith("nm:")
      ? file
          .split("/")
          .slice(0, file.startsWith("nm:@") ? 2 : 1)
          .join("/")
      : file || "(native)";
    fileTime.set(pkg, (fileTime.get(pkg) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const rows = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${pct(us)} ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  return [
    `total ${(total / 1000).toFixed(0)} ms`,
    "-- self time by function --",
    ...rows(fnTime, top),
    "-- self time by file or package --",
    ...rows(fileTime, 25),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) throw new TypeError("usage: profile-summary.ts FILE [TOP]");
  console.log(summarise(JSON.parse(readFileSync(file, "utf8")) as Profile, Number(process.argv[3] ?? 40)));
}
