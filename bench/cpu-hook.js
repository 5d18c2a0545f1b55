// Preloaded into every Node.js process of a profiled run (bench/profile.js sets
// NODE_OPTIONS): on exit, appends the process's own CPU time and that of its children
// (`ip`, `nft`: those it waited for, and the `ip -batch` sessions still running), when
// it ran, when the program registered its first resource and what the provider's
// operations took, to $NSLAB_CPU_LOG.
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
// Timeline marks: in the program, when the first nslab resource is registered; in the
// provider, each nslab operation (kind, op, start, end), summarised per kind and op.
const marks = {};
const ops = new Map();
const Module = require("node:module");
const load = Module._load;
Module._load = function (request, ...rest) {
  let exported = load.call(this, request, ...rest);
  if (exported && exported[Symbol.for("nslab.lazy")]) return exported;
  // The provider process: when its host had loaded (the main module's requires done)
  // and when it first turned a resource's provider text into a provider (the first
  // check or read it served), whatever the provider (nslab's or bench/floor's).
  if (rest[1] === true && /dynamic-provider/.test(request)) marks.hostLoadedMs = Date.now();
  if (request === "require-from-string" && !marks.fromString) {
    marks.fromString = true;
    const fromString = exported;
    exported = function (...args) {
      marks.firstProviderCallMs ??= Date.now();
      return fromString.apply(this, args);
    };
  }
  if (!marks.wrapped && exported && typeof exported.registerResource === "function" && typeof exported.readResource === "function") {
    marks.wrapped = true;
    const register = exported.registerResource;
    exported.registerResource = function (...args) {
      if (String(args[2]).startsWith("pulumi-nodejs:dynamic")) marks.firstRegisterMs ??= Date.now();
      return register.apply(this, args);
    };
  }
  if (!marks.dispatch && exported && typeof exported.dispatch === "function" && exported.kernel) {
    marks.dispatch = true;
    const timedOp = (kind, op, run) => async (...args) => {
      const begin = Date.now();
      try {
        return await run(...args);
      } finally {
        const key = `${kind} ${op}`;
        const o = ops.get(key) ?? { n: 0, firstMs: begin, lastMs: 0, busyMs: 0 };
        o.n++;
        o.lastMs = Math.max(o.lastMs, Date.now());
        o.busyMs += Date.now() - begin;
        ops.set(key, o);
      }
    };
    // The provider text of older states calls dispatch(kind, op, args); today's asks
    // handlerFor(kind) for the kind's operations once: time both.
    const dispatch = exported.dispatch;
    exported.dispatch = function (kind, op, args) {
      return timedOp(kind, op, () => dispatch.call(this, kind, op, args))();
    };
    if (typeof exported.handlerFor === "function") {
      const handlerFor = exported.handlerFor;
      exported.handlerFor = function (kind) {
        const handler = handlerFor.call(this, kind);
        return Object.fromEntries(Object.entries(handler).map(([op, fn]) => [op, timedOp(kind, op, fn)]));
      };
    }
  }
  return exported;
};
function record() {
  const fields = statFields("self");
  const cpu = process.cpuUsage();
  const role = process.argv.some((a) => a.includes("dynamic-provider") || a.includes("pulumi-resource-pulumi-nodejs"))
    ? "provider"
    : process.argv.some((a) => a.includes("cmd/run")) ? "program" : "node";
  fs.appendFileSync(file, `${JSON.stringify({ role, pid: process.pid, argv: process.argv.slice(1, 3), selfMs: Math.round((cpu.user + cpu.system) / 1000), childrenMs: (Number(fields[13]) + Number(fields[14])) * tick, liveChildrenMs: liveChildrenMs(), wallMs: Date.now() - started, startMs: Math.round(performance.timeOrigin), endMs: Date.now(), firstRegisterMs: marks.firstRegisterMs, hostLoadedMs: marks.hostLoadedMs, firstProviderCallMs: marks.firstProviderCallMs, ops: Object.fromEntries(ops) })}\n`);
}
if (file) {
  process.on("exit", record);
  for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => { record(); process.exit(0); });
}
