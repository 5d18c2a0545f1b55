#!/usr/bin/env node
/**
 * What one command through an `ip -batch` session costs the provider (inside the
 * sandbox, on its own namespace's lo): N commands as N separate runs (each waits for the
 * previous answer, as the provider's exchanges do), then the same N as one run.
 *
 *   bench/ip-roundtrip.js [--commands 1000]
 *
 * Prints wall time and this Node.js process's CPU for both (needs `npm run build`).
 */
"use strict";
const { parseArgs, enterSandbox, root } = require("./common");

const args = parseArgs();
const n = Number(args.commands ?? 1000);
enterSandbox(__filename);
const { runIp } = require(`${root}/dist/provider/ipsession.js`);
const command = ["link", "set", "dev", "lo", "up"];

(async () => {
  await runIp([command], undefined); // the session started
  const measure = async (label, work) => {
    const cpu = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await work();
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    console.log(`${label}: wall ${wallMs.toFixed(0)} ms (${(wallMs / n).toFixed(3)} ms each), node CPU ${cpuMs.toFixed(0)} ms (${(cpuMs / n).toFixed(3)} ms each)`);
  };
  await measure(`${n} runs of one command`, async () => {
    for (let i = 0; i < n; i++) await runIp([command], undefined);
  });
  await measure(`one run of ${n} commands`, () => runIp(Array.from({ length: n }, () => command), undefined));
  process.exit(0);
})();
