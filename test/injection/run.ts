/**
 * Prints the injection suite's report: `npx tsx test/injection/run.ts`. The same measurement the
 * test asserts on, for reading.
 */
import { formatReport, runInjectionSuite } from "./suite.js";

const report = await runInjectionSuite();
process.stdout.write(`${formatReport(report)}\n`);
