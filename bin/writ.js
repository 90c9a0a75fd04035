#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm run build makes dist/). `writ creds` is
// first answered from its cache without loading the CLI (tools call it on every start).
const argv = process.argv.slice(2);
let answered;
if (argv[0] === "creds") {
  const { credsFromCache } = await import("../dist/cli/creds-fast.js");
  answered = await credsFromCache(argv, process.env);
}
if (answered !== undefined) process.stdout.write(`${answered.endsWith("\n") ? answered : `${answered}\n`}`);
else {
  const { main } = await import("../dist/cli/main.js");
  process.exitCode = await main(argv);
}
