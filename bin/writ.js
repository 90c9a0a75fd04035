#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm run build makes dist/). `writ creds` is
// first answered from its cache without loading the CLI (tools call it on every start), and
// `writ hook` runs without it (agents call it around every tool call).
const argv = process.argv.slice(2);
let answered;
if (argv[0] === "hook") {
  const { runHook, readAll } = await import("../dist/cli/hook-fast.js");
  const out = await runHook(argv, process.env, { stdin: () => readAll(process.stdin) });
  process.stdout.write(out.stdout);
  process.stderr.write(out.stderr);
  process.exitCode = out.exitCode;
} else {
  if (argv[0] === "creds") {
    const { credsFromCache } = await import("../dist/cli/creds-fast.js");
    answered = await credsFromCache(argv, process.env);
  }
  if (answered !== undefined) process.stdout.write(`${answered.endsWith("\n") ? answered : `${answered}\n`}`);
  else {
    const { main } = await import("../dist/cli/main.js");
    process.exitCode = await main(argv);
  }
}
