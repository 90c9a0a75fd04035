/**
 * The load generator for HTTP benchmarks, in a thread of its own, so that the client's work (fetch,
 * its HTTP parsing and JSON) does not take the server's thread: each slice keeps `concurrency`
 * POSTs in flight for `ms` milliseconds and answers with their latencies. A wrong answer fails the
 * slice. Plain JavaScript: a worker thread does not inherit the tsx loader.
 */
import { parentPort } from "node:worker_threads";

parentPort.on("message", async ({ url, body, headers, concurrency, ms, expect }) => {
  const samples = [];
  let failure;
  const end = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (failure === undefined && performance.now() < end) {
        const t0 = performance.now();
        try {
          const res = await fetch(url, { method: "POST", headers, body });
          const text = await res.text();
          if (res.status !== 200 || !text.includes(expect)) failure = `${res.status} ${text.slice(0, 300)}`;
        } catch (err) {
          failure = String(err);
        }
        samples.push((performance.now() - t0) * 1000);
      }
    }),
  );
  parentPort.postMessage({ samples, ms: performance.now() - started, failure });
});
