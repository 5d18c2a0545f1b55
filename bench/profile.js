#!/usr/bin/env node
/**
 * Where the time of one `pulumi up` of the benchmark lab goes: wall time, and CPU time
 * split between the Pulumi engine (Go: CLI and language host), the Node.js program, the
 * provider process and the processes it spawns (`ip`, `nft`). Inside the sandbox.
 *
 *   bench/profile.js [--hosts 100] [--op up|refresh|refresh-only|destroy] [--program lab|floor|lab-root-ends]
 *                    [--mode tuned|stock] [--checkpoints] [--execs] [--go-profile PREFIX]
 *
 * --mode stock runs the plain `pulumi` command in a default environment (see pulumiEnv in
 * bench/common.js) instead of scripts/pulumi with the bench's settings. --checkpoints
 * keeps a copy of every state file the profiled operation writes
 * (PULUMI_DIY_BACKEND_RETAIN_CHECKPOINTS) and prints how many and how many bytes; the
 * copies cost time of their own, so take timings without it. --execs runs the profiled
 * operation under `strace -f -e trace=execve` and prints how many programs it executed,
 * by name (strace slows everything down: timings without it too). --go-profile PREFIX
 * has the CLI write its own Go CPU profile of the operation to PREFIX.PID.cpu (and a trace
 * and a memory profile beside it); `go tool pprof -top PULUMI PREFIX.PID.cpu` reads it.
 *
 * --program lab-bare profiles the lab without the project settings the README recommends
 * (no tsconfig.json, so Pulumi type-checks the program; no `nodeargs` and no `plugins` in
 * Pulumi.yaml, so no nslab/preload unless the environment adds it): what a project set up
 * without them runs.
 * --program floor profiles bench/floor instead of the lab: the same resources served by
 * a provider that does nothing (Pulumi's own cost). --program lab-root-ends profiles the
 * lab declared with each veth's `a` end on the bridge, so that all veth deletes are in
 * one namespace.
 *
 * refresh is `pulumi preview --refresh` (reads every object, then runs the program to
 * compare); refresh-only is `pulumi refresh --preview-only` (reads, no program).
 *
 * Runs up (and refresh when asked), profiles the chosen operation, then destroys.
 * Prints the CPU split, then a timeline: when each Node.js process ran, when the program
 * registered its first nslab resource, and the provider's operations per kind (calls, first
 * start, last end, mean time each).
 */
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const { root, parseArgs, enterSandbox, pulumiEnv, copyProgram } = require("./common");

const args = parseArgs();
const hosts = Number(args.hosts ?? 100);
const op = args.op ?? "up";
// Each program: its folder under bench/ and the stack config it adds to `hosts`.
const programs = { lab: ["lab", {}], floor: ["floor", {}], "lab-root-ends": ["lab", { rootEnds: "true" }], "lab-bare": ["lab", {}] };
if (!Object.hasOwn(programs, args.program ?? "lab")) throw new Error(`--program takes ${Object.keys(programs).join(", ")}`);
const [programDir, programConfig] = programs[args.program ?? "lab"];
const mode = args.mode ?? "tuned";
const countCheckpoints = process.argv.includes("--checkpoints");
const countExecs = process.argv.includes("--execs");
enterSandbox(__filename);

const work = path.join(root, "bench/.work");
fs.mkdirSync(work, { recursive: true });
const dir = fs.mkdtempSync(path.join(work, `profile-${hosts}-`));
copyProgram(programDir, dir);
if (args.program === "lab-bare") {
  fs.rmSync(path.join(dir, "tsconfig.json"), { force: true });
  const yaml = path.join(dir, "Pulumi.yaml");
  fs.writeFileSync(yaml, fs.readFileSync(yaml, "utf8").split("\nplugins:")[0].split("\n").filter((l) => !/^\s*(nodeargs:|#)/.test(l)).join("\n"));
}
fs.mkdirSync(`${dir}/state`);
const cpuLog = path.join(dir, "cpu.jsonl");
const { command, env } = pulumiEnv(dir, mode);
const execLog = path.join(dir, "execs.txt");
const pulumi = (argv, extraEnv = {}, traced = false) => {
  const t0 = Date.now();
  const timedArgv = ["/usr/bin/time", "-f", "%e %U %S", command, ...argv, "--cwd", dir, "--stack", "bench"];
  const [program, ...programArgs] = traced ? ["strace", "-ff", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", execLog, ...timedArgv] : timedArgv;
  const r = spawnSync(program, programArgs, {
    encoding: "utf8",
    env: { ...env, ...extraEnv },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`pulumi ${argv.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  const [wall, user, sys] = r.stderr.trim().split("\n").pop().split(" ").map(Number);
  return { wallMs: wall * 1000, cpuMs: (user + sys) * 1000, t0 };
};
/** The state files kept by PULUMI_DIY_BACKEND_RETAIN_CHECKPOINTS (STACK.json.<time>): count and bytes. */
function checkpoints() {
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (/\.json\.[0-9]+$/.test(e.name)) files.push(path.join(d, e.name));
    }
  };
  walk(`${dir}/state`);
  const sizes = files.map((f) => fs.statSync(f).size);
  return { files, bytes: sizes.reduce((a, b) => a + b, 0), largest: Math.max(0, ...sizes) };
}
const commands = {
  up: ["up", "--yes", "--skip-preview", "--non-interactive"],
  refresh: ["preview", "--refresh", "--expect-no-changes", "--non-interactive"],
  "refresh-only": ["refresh", "--preview-only", "--expect-no-changes", "--non-interactive"],
  destroy: ["destroy", "--yes", "--skip-preview", "--non-interactive"],
};
const profiled = { NODE_OPTIONS: `${env.NODE_OPTIONS ? `${env.NODE_OPTIONS} ` : ""}--require ${path.join(__dirname, "cpu-hook.js")}${process.env.CPU_PROF_DIR ? ` --cpu-prof --cpu-prof-dir=${process.env.CPU_PROF_DIR}` : ""}`, NSLAB_CPU_LOG: cpuLog };

spawnSync(command, ["stack", "init", "bench", "--cwd", dir], { env });
pulumi(["config", "set", "hosts", String(hosts)]);
for (const [key, value] of Object.entries(programConfig)) pulumi(["config", "set", key, value]);
let total;
let written;
try {
  if (op !== "up") pulumi(commands.up);
  const retain = countCheckpoints ? { PULUMI_DIY_BACKEND_RETAIN_CHECKPOINTS: "true" } : {};
  // --go-profile PREFIX: the CLI's own Go CPU profile of the operation (PREFIX.PID.cpu; read it with `go tool pprof -top`).
  const goProfile = args["go-profile"] ? ["--profiling", path.resolve(args["go-profile"])] : [];
  total = pulumi([...commands[op], ...goProfile], { ...profiled, ...retain }, countExecs);
  if (countCheckpoints) {
    written = checkpoints();
    for (const f of written.files) fs.rmSync(f);
  }
} finally {
  if (op !== "destroy") pulumi(commands.destroy);
}
const procs = [...new Map(fs.readFileSync(cpuLog, "utf8").trim().split("\n").map((l) => JSON.parse(l)).map((p) => [p.pid, p])).values()];
if (process.env.DEBUG_PROFILE) console.log(procs);
let execSummary;
if (countExecs) {
  // Successful execve calls of the run, by program (basename of the executed file).
  const byName = new Map();
  // One file per process (-ff: EXECLOG.PID), so that no call is split across lines.
  const logs = fs.readdirSync(dir).filter((f) => f.startsWith(`${path.basename(execLog)}.`));
  for (const line of logs.flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n"))) {
    const m = /execve\("([^"]+)".* = 0$/.exec(line);
    if (m) byName.set(path.basename(m[1]), (byName.get(path.basename(m[1])) ?? 0) + 1);
  }
  const all = [...byName.values()].reduce((a, b) => a + b, 0);
  execSummary = `programs executed: ${all} (${(all / hosts).toFixed(2)} per host): ${[...byName].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ")}`;
}
fs.rmSync(dir, { recursive: true, force: true });

const sum = (role, key) => procs.filter((p) => p.role === role).reduce((s, p) => s + (p[key] ?? 0), 0);
const program = sum("program", "selfMs");
const provider = sum("provider", "selfMs");
// Children the provider waited for are in the measured total; ip sessions still
// running when it exited are not (nobody waits for them), so they are added.
const live = sum("provider", "liveChildrenMs");
const spawned = sum("provider", "childrenMs") + live;
const otherNode = sum("node", "selfMs");
total.cpuMs += live;
const engine = total.cpuMs - program - provider - spawned - otherNode;
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
console.log(`pulumi ${op}, ${hosts} hosts (${3 * hosts + 3} resources): wall ${s(total.wallMs)}, CPU ${s(total.cpuMs)} on ${require("node:os").cpus().length} cores`);
console.log(`  engine (pulumi CLI + language host, Go) ${s(engine)}`);
console.log(`  program (Node.js, registers resources)  ${s(program)}`);
console.log(`  provider (Node.js, dynamic provider)    ${s(provider)}`);
console.log(`  ip/nft processes of the provider        ${s(spawned)}`);
console.log(`  other Node.js processes                 ${s(otherNode)}`);
if (execSummary) console.log(execSummary);
if (written) console.log(`state files written: ${written.files.length}, ${(written.bytes / 1e6).toFixed(1)} MB in all, the largest ${(written.largest / 1e3).toFixed(0)} kB`);
// When each Node.js process ran, in seconds from the command's start, and what the
// provider did when.
const at = (ms) => `${((ms - total.t0) / 1000).toFixed(2)} s`;
console.log("timeline (from the command's start):");
for (const p of procs.sort((a, b) => a.startMs - b.startMs)) {
  console.log(`  ${p.role.padEnd(8)} pid ${String(p.pid).padEnd(7)} ${at(p.startMs)} .. ${at(p.endMs)}${p.firstRegisterMs ? `, first nslab resource registered at ${at(p.firstRegisterMs)}` : ""}${p.hostLoadedMs ? `, host loaded at ${at(p.hostLoadedMs)}` : ""}${p.firstProviderCallMs ? `, first call at ${at(p.firstProviderCallMs)}` : ""}`);
  for (const [key, o] of Object.entries(p.ops ?? {}).sort((a, b) => a[1].firstMs - b[1].firstMs)) {
    console.log(`    ${key.padEnd(20)} ${String(o.n).padStart(5)} calls, ${at(o.firstMs)} .. ${at(o.lastMs)}, ${(o.busyMs / o.n).toFixed(1)} ms each`);
  }
}
