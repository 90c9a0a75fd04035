/**
 * A stand-in for the agent in the hook benches: a plain Node process, apart from the server's,
 * that runs each hook the way Claude Code, Gemini CLI, Codex CLI and Cursor run a hook command —
 * its command line through `sh -c`, the hook's JSON on stdin, stdout and stderr read to their end —
 * and times it. The server stays in the bench's own process: timing the spawns from there would
 * charge every hook for copying the server's heap at fork (PGlite's memory), which no agent pays.
 *
 * In (stdin): one JSON object, `{ steps: [{ command, stdin, env, cpu?, rm? }] }`, run in order;
 * `rm` is a file removed before the step; `cpu: true` runs `sh -c <command>` as a child of
 * `bash -c '…; times'` to read its CPU time (the command's, its children's included) from bash's
 * `times`, which reads getrusage to the millisecond (sh's here, dash, counts 10 ms clock ticks:
 * a hook of a few ms read as 0). That costs the run an extra process — the benches time the wall
 * clock on runs without it.
 * Out (stdout): one JSON array, per step `{ wallMs, cpuMs, code, out }` (`out`: stdout and stderr
 * when the exit code is not 0).
 *
 * Plain JavaScript, no imports but Node's: its own start and heap are an agent's, not tsx's.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";

const CPU_WRAP = '"$@"; s=$?; times >&3; exit $s';

function once(step) {
  return new Promise((resolve, reject) => {
    if (step.rm) rmSync(step.rm, { force: true });
    const env = { ...process.env, ...step.env };
    const t0 = performance.now();
    const p = step.cpu
      ? spawn("bash", ["-c", CPU_WRAP, "bash", "sh", "-c", step.command], {
          env,
          stdio: ["pipe", "pipe", "pipe", "pipe"],
        })
      : spawn("sh", ["-c", step.command], { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let times = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      out += d;
    });
    if (step.cpu) {
      p.stdio[3].on("data", (d) => {
        times += d;
      });
    }
    p.on("error", reject);
    p.on("close", (code) => {
      const wallMs = performance.now() - t0;
      // `times`: the wrapper's own user and system time, then its children's (the command's)
      const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(times.trim());
      const cpuMs = m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : null;
      resolve({ wallMs, cpuMs, code: code ?? -1, out: code === 0 ? "" : out });
    });
    p.stdin.on("error", () => {}); // a process that exits before reading its input (a floor)
    p.stdin.end(step.stdin ?? "");
  });
}

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const { steps } = JSON.parse(input);
const results = [];
for (const step of steps) results.push(await once(step));
process.stdout.write(JSON.stringify(results));
