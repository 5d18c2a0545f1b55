#!/usr/bin/env node
/**
 * Benchmark: a lab of N namespaces (default 50) brought up and destroyed on another
 * host over SSH, against the same lab on this machine, inside the sandbox. The other
 * host is a real sshd in a namespace of its own (test/helpers/sshd.ts), reached through
 * nslab's one ControlMaster connection. Prints the medians and the remote/local ratio
 * (issue 19's goal: up within 1.5x), and writes the raw figures as JSON.
 *
 *   bench/remote.js [--namespaces 50] [--runs 3] [--warmup 1] [--mode tuned|stock] [--out bench/results]
 */
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { root, parseArgs, enterSandbox, pulumiEnv, copyProgram } = require("./common");
const { median } = require("./report");

const args = parseArgs();
const n = Number(args.namespaces ?? 50);
const runs = Number(args.runs ?? 3);
/** tuned (scripts/pulumi, no checkpoints, transpile-only: the benchmark's default) or stock (plain pulumi). */
const mode = args.mode ?? "tuned";
/** Pairs of runs made first and not counted. */
const warmup = Number(args.warmup ?? 1);
const outDir = path.resolve(root, args.out ?? "bench/results");
enterSandbox(__filename);

// The test helper that makes sshd hosts is TypeScript: load it the way Pulumi loads programs.
require("ts-node").register({ transpileOnly: true, compilerOptions: { module: "commonjs", moduleResolution: "node" } });
const { startHosts, here } = require(path.join(root, "test/helpers/sshd.ts"));

const work = path.join(root, "bench/.work");
fs.mkdirSync(work, { recursive: true });
fs.mkdirSync(outDir, { recursive: true });

function timed(command, argv, env) {
  const start = process.hrtime.bigint();
  const r = spawnSync(command, argv, { encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`pulumi ${argv.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return ms;
}

/** One up, refresh and destroy of the lab, here (host undefined) or on `host`, run as --mode says (bench/common.js). */
function pulumiRun(host) {
  const dir = fs.mkdtempSync(path.join(work, `remote-${host ? "ssh" : "local"}-`));
  copyProgram("remote", dir);
  fs.mkdirSync(`${dir}/state`);
  const { command, env } = pulumiEnv(dir, mode);
  const cwd = ["--cwd", dir, "--stack", "bench"];
  spawnSync(command, ["stack", "init", "bench", "--cwd", dir], { env });
  timed(command, ["config", "set", "namespaces", String(n), ...cwd], env);
  if (host) timed(command, ["config", "set", "host", JSON.stringify(host), ...cwd], env);
  const up = timed(command, ["up", "--yes", "--skip-preview", "--non-interactive", ...cwd], env);
  const refresh = timed(command, ["preview", "--refresh", "--expect-no-changes", "--non-interactive", ...cwd], env);
  const destroy = timed(command, ["destroy", "--yes", "--skip-preview", "--non-interactive", ...cwd], env);
  fs.rmSync(dir, { recursive: true, force: true });
  return { up, refresh, destroy };
}

(async () => {
  const hosts = await startHosts(here, 1, "bh", "192.0.2");
  const remote = hosts.hosts[0];
  const results = { namespaces: n, runs, mode, local: [], remote: [] };
  try {
    // A first pair, not counted: the first run of a program pays for cold caches (its
    // TypeScript compiled, node's and the engine's files read from disk).
    for (let i = 0; i < warmup; i++) {
      pulumiRun(undefined);
      pulumiRun(remote.host);
    }
    for (let i = 0; i < runs; i++) {
      // Alternating, so that the machine's load drifts over both alike.
      results.local.push(pulumiRun(undefined));
      results.remote.push(pulumiRun(remote.host));
      const left = hosts.onHost(remote, "ip", ["netns", "list"]);
      if ((await left).trim()) throw new Error(`namespaces left on the remote host: ${await left}`);
    }
  } finally {
    await hosts.destroy();
  }
  const row = (what) => {
    const local = median(results.local.map((r) => r[what]));
    const ssh = median(results.remote.map((r) => r[what]));
    return `| ${what} | ${(local / 1000).toFixed(2)} s | ${(ssh / 1000).toFixed(2)} s | ${(ssh / local).toFixed(2)}x |`;
  };
  console.log(`\n${n} namespaces, ${mode}, median of ${runs} runs (load average ${require("node:os").loadavg()[0].toFixed(1)})\n`);
  console.log("| step | this machine | over SSH | ratio |\n| --- | --- | --- | --- |");
  for (const what of ["up", "refresh", "destroy"]) console.log(row(what));
  const file = path.join(outDir, `remote-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nraw figures: ${path.relative(root, file)}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
