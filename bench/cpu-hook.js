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
function liveChildrenMs() {
  let ms = 0;
  for (const task of fs.readdirSync("/proc/self/task")) {
    for (const pid of fs.readFileSync(`/proc/self/task/${task}/children`, "utf8").trim().split(" ").filter(Boolean)) {
      try {
        const f = statFields(pid);
        ms += (Number(f[11]) + Number(f[12])) * tick;
      } catch {
        // exited meanwhile
      }
    }
  }
  return ms;
}
function record() {
  const fields = statFields("self");
  const cpu = process.cpuUsage();
  const role = process.argv.some((a) => a.includes("dynamic-provider") || a.includes("pulumi-resource-pulumi-nodejs"))
    ? "provider"
    : process.argv.some((a) => a.includes("cmd/run")) ? "program" : "node";
  fs.appendFileSync(file, `${JSON.stringify({ role, pid: process.pid, argv: process.argv.slice(1, 3), selfMs: Math.round((cpu.user + cpu.system) / 1000), childrenMs: (Number(fields[13]) + Number(fields[14])) * tick, liveChildrenMs: liveChildrenMs(), wallMs: Date.now() - started })}\n`);
}
if (file) {
  process.on("exit", record);
  for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => { record(); process.exit(0); });
}
