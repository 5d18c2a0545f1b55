// Preloaded into every Node.js process of a profiled run (bench/profile.js sets
// NODE_OPTIONS): on exit, appends the process's own CPU time and that of its children
// (`ip`, `nft`: those it waited for, and the `ip -batch` sessions still running) to
// $NSLAB_CPU_LOG.
"use strict";
const fs = require("node:fs");
const file = process.env.NSLAB_CPU_LOG;
const started = Date.now();
const tick = 10; // ms per clock tick (USER_HZ = 100)
const statFields = (pid) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
};
/** CPU time of this process's live descendants (ip sessions, their launcher), and of
 * the children they have reaped. */
function liveChildrenMs() {
  const childrenOf = (pid) => {
    const out = [];
    try {
      for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
        out.push(...fs.readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(" ").filter(Boolean));
      }
    } catch {
      // exited meanwhile
    }
    return out;
  };
  let ms = 0;
  const walk = (pid) => {
    for (const child of childrenOf(pid)) {
      try {
        const f = statFields(child);
        ms += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * tick;
      } catch {
        continue; // exited meanwhile
      }
      walk(child);
    }
  };
  walk("self");
  return ms;
}
function record() {
  const fields = statFields("self");
  const cpu = process.cpuUsage();
  const role = process.argv.some((a) => a.includes("dynamic-provider") || a.includes("pulumi-resource-pulumi-nodejs"))
    ? "provider"
    : process.argv.some((a) => a.includes("cmd/run")) ? "program" : "node";
  fs.appendFileSync(file, `${JSON.stringify({ role, pid: process.pid, argv: process.argv.slice(1, 3), selfMs: Math.round((cpu.user + cpu.system) / 1000), childrenMs: (Number(fields[13]) + Number(fields[14])) * tick, liveChildrenMs: liveChildrenMs(), wallMs: Date.now() - started, startMs: Math.round(performance.timeOrigin), endMs: Date.now() })}\n`);
}
if (file) {
  process.on("exit", record);
  for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => { record(); process.exit(0); });
}
