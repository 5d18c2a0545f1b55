#!/usr/bin/env node
/**
 * Benchmark: nslab against shell scripts on the same lab (bench/lab and bench/lab.sh),
 * inside the sandbox. Prints a table of medians, ratios and the provider's peak memory,
 * and writes the raw figures as JSON. Speed is reported here, never asserted in tests.
 * Also measures Pulumi's floor (bench/floor): the same resources served by a provider
 * that does nothing, i.e. what the engine, the program and the provider process cost
 * before nslab does any work; and the "stock" path: the same lab through the plain
 * `pulumi` command in a default environment (checkpoints after every step, the CLI's logs,
 * the engine's default parallelism) with the project files the README recommends
 * (bench/lab's tsconfig.json and Pulumi.yaml: no type-checking, the preload in the program
 * and, through the `plugins` entry, in the provider process), beside the "tuned" one (nslab's figures) that
 * scripts/pulumi and the bench settings give; and the state's size per resource after up.
 *
 *   bench/run.js [--sizes 10,100,300] [--runs 3] [--out bench/results]
 */
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const { root, parseArgs, enterSandbox, pulumiEnv, copyProgram } = require("./common");
const { summarize, report } = require("./report");

const args = parseArgs();
const sizes = (args.sizes ?? "10,100,300").split(",").map(Number);
const runs = Number(args.runs ?? 3);
const outDir = path.resolve(root, args.out ?? "bench/results");
enterSandbox(__filename);

const work = path.join(root, "bench/.work");
fs.mkdirSync(work, { recursive: true });
fs.mkdirSync(outDir, { recursive: true });
const statsFile = path.join(work, "provider-stats.jsonl");

function timed(cmd, argv, env = {}) {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return ms;
}

/** Waits (bounded) for asynchronous namespace teardown, then lists what is left. */
function residue() {
  for (let i = 0; i < 50; i++) {
    const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout.trim().split("\n").length - 1;
    const ns = fs.readdirSync("/run/netns").length;
    const tables = spawnSync("nft", ["list", "tables"], { encoding: "utf8" }).stdout.trim();
    if (links === 0 && ns === 0 && !tables) return "";
    if (i === 49) return `links ${links}, namespaces ${ns}, tables ${tables}`;
    spawnSync("sleep", ["0.1"]);
  }
}

function peakProviderKiB() {
  if (!fs.existsSync(statsFile)) return undefined;
  const lines = fs.readFileSync(statsFile, "utf8").trim().split("\n").filter(Boolean);
  fs.rmSync(statsFile);
  return Math.max(...lines.map((l) => JSON.parse(l).maxRssKiB));
}

function runEnv(dir, mode) {
  return pulumiEnv(dir, mode, { NSLAB_PROVIDER_STATS: statsFile });
}

/** Bytes of the stack's state per resource, as `pulumi stack export` writes it. */
function statePerResource(run) {
  const r = spawnSync(run.command, ["stack", "export", ...run.args], { encoding: "utf8", env: run.env, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`stack export exited ${r.status}\n${r.stderr}`);
  const deployment = JSON.parse(r.stdout).deployment;
  return Math.round(JSON.stringify(deployment).length / deployment.resources.length);
}

/**
 * One up, refresh, refresh-only and destroy of a bench program (bench/lab or
 * bench/floor), in `mode` ("tuned" or "stock", see runEnv).
 */
function pulumiRun(n, program, mode = "tuned") {
  const dir = fs.mkdtempSync(path.join(work, `${program}-${n}-`));
  copyProgram(program, dir);
  fs.mkdirSync(`${dir}/state`);
  const { command, env } = runEnv(dir, mode);
  const run = { command, env, args: ["--cwd", dir, "--stack", "bench"] };
  const pulumi = (...a) => timed(command, [...a, ...run.args], env);
  spawnSync(command, ["stack", "init", "bench", "--cwd", dir], { env });
  pulumi("config", "set", "hosts", String(n));
  const result = {};
  result.up = pulumi("up", "--yes", "--skip-preview", "--non-interactive");
  result.upPeakKiB = peakProviderKiB();
  result.stateBytesPerResource = statePerResource(run);
  result.refresh = pulumi("preview", "--refresh", "--expect-no-changes", "--non-interactive");
  result.refreshPeakKiB = peakProviderKiB();
  // Reads only, without running the program: what drift detection needs.
  result.refreshOnly = pulumi("refresh", "--preview-only", "--expect-no-changes", "--non-interactive");
  result.refreshOnlyPeakKiB = peakProviderKiB();
  result.destroy = pulumi("destroy", "--yes", "--skip-preview", "--non-interactive");
  result.destroyPeakKiB = peakProviderKiB();
  result.residue = residue();
  fs.rmSync(dir, { recursive: true, force: true });
  return result;
}

function scriptRun(n, mode) {
  const lab = path.join(root, "bench/lab.sh");
  const result = { up: timed(lab, ["up", String(n), mode]) };
  // A "refresh" for a script: read the whole state back (one dump per namespace).
  result.refresh = timed("bash", ["-c", `for ns in $(ls /run/netns); do ip -n $ns -d -j addr show >/dev/null; ip -n $ns -j route show table all >/dev/null; done; ip -d -j addr show >/dev/null; nft -j list ruleset >/dev/null`]);
  result.destroy = timed(lab, ["down", String(n), mode]);
  result.residue = residue();
  return result;
}

const os = require("node:os");
// The machine's load (1-minute average) at the start and end: figures taken while other
// jobs ran are not comparable with a quiet machine's (docs/benchmark.md).
const raw = { date: new Date().toISOString(), runs, sizes, machine: { cpus: os.cpus().length, kernel: os.release() }, load: { start: os.loadavg()[0] }, results: [] };
for (const n of sizes) {
  for (let r = 0; r < runs; r++) {
    for (const [tool, fn] of [
      ["nslab", () => pulumiRun(n, "lab")],
      ["stock", () => pulumiRun(n, "lab", "stock")],
      ["floor", () => pulumiRun(n, "floor")],
      ["ip-single", () => scriptRun(n, "single")],
      ["ip-batch", () => scriptRun(n, "batch")],
    ]) {
      const res = fn();
      raw.results.push({ n, run: r, tool, ...res });
      process.stderr.write(`N=${n} run ${r + 1}/${runs} ${tool}: up ${res.up.toFixed(0)} ms, refresh ${res.refresh.toFixed(0)} ms${res.refreshOnly ? `, refresh-only ${res.refreshOnly.toFixed(0)} ms` : ""}, destroy ${res.destroy.toFixed(0)} ms${res.residue ? `, LEFT ${res.residue}` : ""}\n`);
    }
  }
}

raw.load.end = os.loadavg()[0];
const summary = summarize(raw.results, sizes);
raw.summary = summary;
const file = path.join(outDir, `bench-${raw.date.replace(/[:.]/g, "-")}.json`);
fs.writeFileSync(file, JSON.stringify(raw, null, 2));

for (const line of report(summary, runs)) console.log(line);
console.log(`\nload average (1 min) at the start ${raw.load.start.toFixed(1)}, at the end ${raw.load.end.toFixed(1)} on ${raw.machine.cpus} cores${raw.load.start > raw.machine.cpus / 2 || raw.load.end > raw.machine.cpus / 2 ? ": other jobs ran meanwhile, so these figures (and the goals' verdicts) are not comparable with a quiet machine's" : ""}`);
console.log(`\nraw figures: ${path.relative(root, file)}`);

// A PNG of up time against N (needs gnuplot; bench/plot.js says so when missing).
if (summary.length > 1) spawnSync(process.execPath, [path.join(__dirname, "plot.js"), "--out", file.replace(/\.json$/, ".png"), file], { stdio: "inherit" });
