// The load generator as a process of its own (bench/pdp-profile.ts): node:http with keep-alive,
// C requests in flight for MS milliseconds; prints {n, ms, rate, p50, p99, fail} as JSON.
import http from "node:http";

const [url, c, ms] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const body = process.argv[5];
const u = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: c });
const samples = [];
let fail;
const end = performance.now() + ms;
const t = performance.now();
function one() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let s = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (s += d));
        res.on("end", () => {
          if (res.statusCode !== 200 || !s.includes('"decision":true'))
            fail ??= `${res.statusCode} ${s.slice(0, 300)}`;
          samples.push(performance.now() - t0);
          resolve();
        });
      },
    );
    req.on("error", (e) => {
      fail ??= String(e);
      resolve();
    });
    req.end(body);
  });
}
await Promise.all(
  Array.from({ length: c }, async () => {
    while (!fail && performance.now() < end) await one();
  }),
);
const took = performance.now() - t;
samples.sort((a, b) => a - b);
const ru = process.cpuUsage();
console.log(
  JSON.stringify({
    cpuMs: (ru.user + ru.system) / 1000,
    n: samples.length,
    ms: took,
    rate: (samples.length / took) * 1000,
    p50: samples[Math.floor(samples.length / 2)],
    p99: samples[Math.floor(samples.length * 0.99)],
    fail,
  }),
);
agent.destroy();
