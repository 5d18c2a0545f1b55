#!/usr/bin/env node
/**
 * Fault harness: kill -9 of the Pulumi CLI or of nslab's provider process at a random
 * moment of `up` or `destroy` of the benchmark lab (bench/lab: N hosts on a bridge,
 * forwarding, a masquerade rule), then the documented recovery and the checks of
 * issue 15. Runs in a fresh sandbox of its own (never on the host's network).
 *
 *   bench/faults.js [--trials 8] [--hosts 40] [--seed 1] [--checkpoints skip|write]
 *                   [--kinds cli-up,provider-up,cli-destroy,provider-destroy]
 *                   [--recovery up|destroy] [--impairments] [--processes] [--vxlan]
 *                   [--remote] [--json FILE]
 *
 * Each trial:
 *  1. (destroy trials) `up` the lab completely first;
 *  2. start `up` (or `destroy`), wait until a random fraction of the namespaces exists
 *     (or is gone), then SIGKILL the CLI or the provider process;
 *  3. 10 s after the kill, list the processes of the run still alive (every process
 *     whose working directory is the lab's folder; --remote: also the host's, see below)
 *     and end them;
 *  4. recovery, as README "Recovering from a crash" says: `pulumi cancel` when the stack
 *     is locked, `pulumi refresh --clear-pending-creates`, `pulumi up` (the program is
 *     never edited);
 *     With --recovery destroy the user gives up on the lab instead: cancel/refresh as
 *     above, `pulumi destroy`, then `nslab-orphans --delete` for what the state never
 *     recorded; only the residue check follows.
 *  5. checks: that `up` converged, `preview --refresh --expect-no-changes` exits 0,
 *     the lab passes traffic (ping host to host and host to the bridge), `destroy`
 *     exits 0 and leaves nothing (namespaces, links, nft tables, forwarding back to its
 *     value before the trial, no record under /run/nslab).
 * --impairments adds a LinkImpairment per host (rate both ways: a tbf, and an ifb of
 * nslab's for ingress), so kills also land in its create and delete; --processes a
 * Process per host (`sleep` in its namespace, with cwd "/": not a process of the run's
 * folder, which step 3 ends), an up's kill waits also for a first one to run, and the
 * residue check then also looks for the trial's programs still running (their
 * NSLAB_OWNER names the trial's stack). --vxlan adds a Vxlan per host (vx0 over eth0,
 * paired with the next host, an overlay address each), so kills also land between its
 * intent record and its alias, and the traffic check also pings host 0 -> host 1 across
 * the overlay.
 * --remote puts the whole lab on another host over SSH (every resource's `host`): a real
 * sshd in namespaces of its own in the sandbox (test/helpers/sshd.ts, as bench/remote.js),
 * so the kill also cuts the provider's SSH master connection and the channels it carries.
 * The kill point, traffic and residue checks then look at that host (its namespaces,
 * links, nft tables, forwarding, records), and at this machine's sandbox too (nothing may
 * be left here either). Step 3 then also lists the host's processes still serving the
 * run (see hostSessions), the SSH master connection's sshd included: a killed provider's
 * master ends at once (its watcher, provider/ssh.ts). The residue check then also wants
 * no process on the host serving any run, no file of an ended shell of nslab's in the
 * host's /tmp (nslab-sh.PID.*), and the killed provider's SSH control folder gone.
 * Prints one line per trial and the summary table (markdown), and exits 1 when any
 * trial failed a check.
 */
"use strict";
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { root, parseArgs, copyProgram } = require("./common");
// nslab's own: how it finds the programs a Process started, and names a stack.
const { markedProcesses, processAlive } = require(`${root}/dist/provider/kernel.js`);
const { stackIdentity } = require(`${root}/dist/sdk/identity.js`);
const { controlBase, pidExists } = require(`${root}/dist/provider/ssh.js`);

const args = parseArgs();
const trials = Number(args.trials ?? 8);
const hosts = Number(args.hosts ?? 40);
let seed = Number(args.seed ?? Date.now() % 100000);
const checkpoints = args.checkpoints ?? "skip";
const recovery = args.recovery ?? "up";
if (!["up", "destroy"].includes(recovery)) throw new Error(`--recovery must be up or destroy, got ${recovery}`);
const kinds = (args.kinds ?? "cli-up,provider-up,cli-destroy,provider-destroy").split(",");
const impairments = process.argv.includes("--impairments");
const processes = process.argv.includes("--processes");
const vxlan = process.argv.includes("--vxlan");
const remote = process.argv.includes("--remote");
const GRACE_MS = 10_000;

// A fresh sandbox of its own: residue checks must see only this run's objects.
if (process.env.NSLAB_FAULTS_SANDBOX !== "1") {
  const r = spawnSync(path.join(root, "scripts/sandbox"), [process.execPath, __filename, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, NSLAB_FAULTS_SANDBOX: "1", PATH: `${root}/.tools/bin:${process.env.PATH}` },
  });
  process.exit(r.status ?? 1);
}

/** A small deterministic generator, so that a failing trial can be replayed (--seed). */
function random() {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd, argv) => spawnSync(cmd, argv, { encoding: "utf8" });

/**
 * Where a lab lives: this sandbox (pid undefined), or the host whose sshd has `pid`
 * (its mount and network namespaces; its /run seen through /proc/PID/root, its links
 * through /proc/PID/net/dev, commands through nsenter). `baseline`: the namespaces and
 * links there before any trial (the SSH host's own, the underlay's), never the lab's.
 */
function place(pid, label) {
  const root = pid ? `/proc/${pid}/root` : "";
  const run = (cmd, argv) => (pid ? sh("nsenter", ["-t", String(pid), "-m", "-n", "--", cmd, ...argv]) : sh(cmd, argv));
  /** A read that must work: a host that is gone (or a failing command) is an error, never "nothing there". */
  const read = (cmd, argv) => {
    p.check();
    const r = run(cmd, argv);
    if (r.status !== 0) throw new Error(`${label}${cmd} ${argv.join(" ")} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  const p = {
    label,
    run,
    /** The SSH host's sshd is still its listener (not gone, its pid not reused). */
    check: () => {
      if (pid && (!fs.existsSync(`/proc/${pid}/comm`) || fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "sshd")) throw new Error(`${label}sshd (pid ${pid}) is gone: the host cannot be checked`);
    },
    netns: () => {
      p.check();
      return fs.existsSync(`${root}/run/netns`) ? fs.readdirSync(`${root}/run/netns`).filter((n) => !p.baseline.netns.has(n)) : [];
    },
    links: () => JSON.parse(read("ip", ["-j", "link", "show"])).map((l) => l.ifname).filter((n) => !p.baseline.links.has(n)),
    tables: () => read("nft", ["list", "tables"]).trim(),
    /** Interface names, without starting a process (for the kill point's tight loop). */
    devices: () => fs.readFileSync(`/proc/${pid ?? "self"}/net/dev`, "utf8").split("\n").slice(2).map((l) => l.split(":")[0].trim()).filter(Boolean),
    forwarding: () => read("sysctl", ["-n", "net.ipv4.ip_forward"]).trim(),
    recordsDir: `${root}/run/nslab`,
    baseline: { netns: new Set(), links: new Set(["lo"]) },
  };
  return p;
}
const local = place(undefined, "");
/** The lab's place: this sandbox, or (--remote) the SSH host, set at the start. */
let lab = local;
/** The SSH host (--remote): { hosts, host }. */
let ssh;
const namespaces = () => lab.netns().length;
/** The bench lab's bridge ports left in the bridge's namespace (one veth end per host). */
const ports = () => lab.devices().filter((n) => /^bp\d+$/.test(n)).length;
const address = (i) => `10.200.${(i + 2) >> 8}.${(i + 2) & 255}`;
const overlay = (i) => `10.201.${(i + 2) >> 8}.${(i + 2) & 255}`;

/** The machine's live processes (not zombies) but this one: pid, parent pid, command line; `only` filters by pid first. */
function liveProcesses(only = () => true) {
  const out = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid || !only(Number(d))) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      out.push({ pid: Number(d), ppid: Number(fields[1]), cmdline: fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").filter(Boolean) });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Processes whose working directory is `dir` (the CLI, language host, program, provider, ip sessions). */
function processesIn(dir) {
  return liveProcesses((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/cwd`) === dir;
    } catch {
      return false;
    }
  });
}
/** A short name for a process in the report. */
function role(p) {
  const line = p.cmdline.join(" ");
  if (line.includes("dynamic-provider")) return "provider";
  if (/pulumi-language-nodejs/.test(line)) return "language host";
  if (/\bip\b.*-batch/.test(line)) return "ip session";
  if (p.cmdline[0] === "sh" && line.includes("nslab-ip")) return "ip launcher";
  if (/(^|\/)pulumi$/.test(p.cmdline[0])) return "pulumi CLI";
  if (/(^|\/)ssh$/.test(p.cmdline[0]) && line.includes("ControlMaster=yes")) return "ssh master";
  if (/node/.test(p.cmdline[0])) return "program (node)";
  return path.basename(p.cmdline[0] ?? "?");
}

class Run {
  constructor(dir, env) {
    this.dir = dir;
    this.env = env;
  }
  /** Runs pulumi to the end; returns { code, out }. */
  run(...a) {
    const stack = a[0] === "stack" && a[1] === "init" ? [] : ["--stack", "faults"];
    const r = spawnSync(path.join(root, "scripts/pulumi"), [...a, "--cwd", this.dir, ...stack], {
      cwd: this.dir,
      encoding: "utf8",
      env: this.env,
      maxBuffer: 256 * 1024 * 1024,
    });
    return { code: r.status ?? 128, out: `${r.stdout}\n${r.stderr}` };
  }
  /** Starts pulumi in the background (scripts/pulumi execs the CLI: the pid is the CLI's). */
  start(...a) {
    const child = spawn(path.join(root, "scripts/pulumi"), [...a, "--cwd", this.dir, "--stack", "faults"], { cwd: this.dir, env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    child.output = "";
    child.stdout.on("data", (d) => (child.output += d));
    child.stderr.on("data", (d) => (child.output += d));
    child.done = new Promise((r) => child.on("close", (code, signal) => r(code ?? signal)));
    return child;
  }
}

const YES = ["--yes", "--skip-preview", "--non-interactive"];

/** Pings host 0 -> the last host and the last host -> the bridge; the failures. */
function traffic() {
  const failed = [];
  const pairs = [
    [`b0`, address(hosts - 1)],
    [`b${hosts - 1}`, "10.200.0.1"],
    [`b${Math.floor(hosts / 2)}`, address(0)],
    // Across the VXLAN overlay: host 0 and host 1 are a pair.
    ...(vxlan && hosts > 1 ? [[`b0`, overlay(1)]] : []),
  ];
  for (const [from, to] of pairs) {
    if (lab.run("ip", ["netns", "exec", from, "ping", "-c", "1", "-W", "2", to]).status !== 0) failed.push(`${from} -> ${to}`);
  }
  return failed;
}

/**
 * Programs the Processes of the trial whose state is in `dir` started, as "PID START OWNER"
 * (START: their start time, so a reused pid is not taken for them): the programs nslab
 * finds by their NSLAB_OWNER (kernel.markedProcesses, as nslab-orphans does) whose owner
 * names this trial's stack (its backend is the trial's own folder). The machine's /proc:
 * the sandbox has a network and a mount namespace of its own, not a pid namespace, so
 * other runs' programs are there too.
 */
async function labPrograms(dir) {
  const stack = stackIdentity("nslab-bench", "faults", "organization", `file://${dir}/state`);
  return (await markedProcesses()).filter((p) => p.owner.startsWith(`${stack}/`)).map((p) => `${p.pid} ${p.startTime} ${p.owner}`);
}

/** The places a trial may leave something: the lab's, and (--remote) this sandbox as well. */
const places = () => (lab === local ? [local] : [lab, local]);

/** The records under a place's /run/nslab: the lab's, and any of its namespaces' that outlived them. */
function records(p) {
  const d = p.recordsDir;
  return fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? fs.readdirSync(`${d}/${e.name}`).map((f) => `${e.name}/${f}`) : [e.name])) : [];
}

/**
 * What is left: in each place, namespaces and links besides its baseline, nft tables,
 * forwarding off its value before the trial (`forwardBefore`, one per place), records;
 * the trial's programs.
 */
async function residue(forwardBefore, dir, providerPid, since, killed = new Set()) {
  for (let i = 0; i < 50; i++) {
    const left = [];
    places().forEach((p, k) => {
      const ns = p.netns();
      if (ns.length) left.push(`${p.label}${ns.length} namespaces`);
      const links = p.links();
      if (links.length) left.push(`${p.label}links ${links.join(",")}`);
      const tables = p.tables();
      if (tables) left.push(`${p.label}nft ${tables.replace(/\n/g, ", ")}`);
      const forward = p.forwarding();
      if (forward !== forwardBefore[k]) left.push(`${p.label}ip_forward=${forward} (was ${forwardBefore[k]})`);
      const recs = records(p);
      if (recs.length) left.push(`${p.label}records under /run/nslab: ${recs.join(",")}`);
    });
    const programs = await labPrograms(dir);
    if (programs.length) left.push(`programs ${programs.join(", ")}`);
    // Every provider of the trial has ended: no connection or session is left on the host,
    // nor a file of its shells (nslab-sh.PID.*, provider/ssh.ts) in the host's /tmp.
    const sessions = await hostSessions();
    if (sessions.length) left.push(`host processes ${sessions.map((q) => `${q.pid} ${role(q)}`).join(", ")}`);
    const shellFiles = endedShellFiles(since, killed);
    if (shellFiles.length) left.push(`host: files of ended shells in /tmp ${shellFiles.join(", ")}`);
    // The SSH control folder of the provider that ran at the kill (provider/ssh.ts): its
    // exit handler removes it, or when it was killed outright its watcher (else the
    // recovery's providers' sweep).
    // (In the temp folder, or /tmp when the temp folder's path is too long: controlBase.)
    const tmp = controlBase();
    const control = providerPid ? fs.readdirSync(tmp).filter((n) => n.startsWith(`nslab-ssh-${providerPid}-`)) : [];
    if (control.length) left.push(`ssh control folders ${control.map((n) => path.join(tmp, n)).join(", ")}`);
    if (!left.length || i === 49) return left;
    spawnSync("sleep", ["0.1"]);
  }
}

/**
 * With --remote, the files of the host's shells of nslab's (nslab-sh.PID.*, provider/ssh.ts)
 * left in its /tmp by shells that ended, made since `since` (the host's /tmp is this
 * machine's: other runs' live shells have theirs there too), but those of shells in
 * `killed` (step 3's SIGKILL runs no trap; they are reported as alive already).
 */
function endedShellFiles(since, killed) {
  if (!ssh) return [];
  const tmp = `/proc/${ssh.host.pid}/root/tmp`;
  return fs.readdirSync(tmp).filter((n) => {
    const pid = Number(/^nslab-sh\.(\d+)\./.exec(n)?.[1]);
    try {
      return pid > 0 && !killed.has(pid) && !pidExists(pid) && fs.statSync(`${tmp}/${n}`).mtimeMs >= since;
    } catch {
      return false;
    }
  });
}

/** Removes whatever a failed trial left, so that the next one starts clean. */
async function scrub(forwardBefore, dir) {
  for (const p of await labPrograms(dir)) {
    const [pid, start] = p.split(" ");
    try {
      if (await processAlive(Number(pid), start)) process.kill(Number(pid), "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
  places().forEach((p, k) => {
    for (const ns of p.netns()) p.run("ip", ["netns", "delete", ns]);
    for (const l of p.links()) p.run("ip", ["link", "delete", l]);
    p.run("nft", ["flush", "ruleset"]);
    p.run("sysctl", ["-qw", `net.ipv4.ip_forward=${forwardBefore[k]}`]);
    for (const d of fs.existsSync(p.recordsDir) ? fs.readdirSync(p.recordsDir) : []) fs.rmSync(`${p.recordsDir}/${d}`, { recursive: true, force: true });
  });
}

/**
 * With --remote, the host's processes serving runs: every descendant of its sshd
 * listener (the sessions of the provider's master connections and what they run), and
 * any other process in the host's mount namespace (one whose session ended under it,
 * reparented), but the listener and the programs of the lab's Processes (their
 * NSLAB_OWNER; found as programs, by labPrograms). `channels`: those that are not sshd
 * itself (the shells and `ip` sessions a master carries; the master's own sshd
 * processes are there as long as the connection is).
 */
async function hostSessions() {
  if (!ssh) return [];
  lab.check();
  const programs = new Set((await markedProcesses()).map((q) => q.pid));
  const mnt = (pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
    } catch {
      return undefined;
    }
  };
  const hostMnt = mnt(ssh.host.pid);
  const all = liveProcesses();
  const parent = new Map(all.map((q) => [q.pid, q.ppid]));
  const listener = ssh.host.pid;
  const under = (pid) => {
    for (let p = parent.get(pid), hops = 0; p && hops < 64; p = parent.get(p), hops++) if (p === listener) return true;
    return false;
  };
  return all.filter((q) => q.pid !== listener && !programs.has(q.pid) && (under(q.pid) || mnt(q.pid) === hostMnt));
}
/** Whether a host process is sshd's own (the connection), not a channel's shell or command. */
const isSshd = (q) => /^sshd/.test(q.cmdline[0] ?? "");

async function trial(n, kind) {
  const [target, phase] = kind.split("-");
  const fraction = 0.15 + random() * 0.7;
  const result = { trial: n, recovery, killed: target === "cli" ? "pulumi CLI" : "provider process", during: phase, fraction: Number(fraction.toFixed(2)), checkpoints, failures: [], left: [], steps: [] };
  const forwardBefore = places().map((p) => p.forwarding());
  const started = Date.now();
  const work = path.join(root, "bench/.work");
  fs.mkdirSync(work, { recursive: true });
  const dir = fs.mkdtempSync(path.join(work, `faults-${n}-`));
  copyProgram("lab", dir);
  fs.mkdirSync(`${dir}/state`);
  const env = {
    ...process.env,
    PULUMI_BACKEND_URL: `file://${dir}/state`,
    PULUMI_CONFIG_PASSPHRASE: "",
    PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    ...(checkpoints === "skip" ? { PULUMI_SKIP_CHECKPOINTS: "true" } : {}),
  };
  const p = new Run(dir, env);
  // The provider process of the run the fault hit, when found (its SSH control folder is checked at the end).
  let providerPid;
  // Processes step 3 ended with SIGKILL.
  const killedPids = new Set();
  const must = (what, r) => {
    result.steps.push(`${what}: exit ${r.code}`);
    if (r.code !== 0) result.failures.push(`${what} exited ${r.code}: ${r.out.trim().split("\n").filter((l) => /error|failed|exists/i.test(l)).slice(0, 3).join(" | ")}`);
    return r.code === 0;
  };
  try {
    p.run("stack", "init", "faults");
    p.run("config", "set", "hosts", String(hosts));
    if (impairments) p.run("config", "set", "impairments", "true");
    if (processes) p.run("config", "set", "processes", "true");
    if (vxlan) p.run("config", "set", "vxlan", "true");
    if (ssh) {
      p.run("config", "set", "host", JSON.stringify(ssh.host.host));
      p.run("config", "set", "logDir", dir);
    }
    if (phase === "destroy" && !must("first up", p.run("up", ...YES))) return result;

    // 2. The fault.
    const cli = p.start(phase === "up" ? "up" : "destroy", ...YES);
    // A destroy deletes each host's route and veth before its namespace, and many side
    // by side: its kill point is a fraction of the veths gone (their bridge ports leave
    // this namespace) while namespaces are still left, so the destroy has work to lose.
    // (Counting namespaces alone, a short destroy could pass from several to none
    // between two looks.)
    const killPorts = hosts - Math.max(1, Math.round(fraction * hosts * 0.5));
    const reached = () => (phase === "up" ? namespaces() >= Math.max(1, Math.round(fraction * hosts)) : namespaces() > 0 && ports() <= killPorts);
    const deadline = Date.now() + 300_000;
    let victim;
    let provider;
    let ended = false;
    cli.done.then(() => (ended = true));
    while (Date.now() < deadline && !ended) {
      // The provider is looked for until found (a /proc scan), the kill point often (a readdir).
      provider ??= processesIn(dir).find((q) => role(q) === "provider");
      // With --processes, an up's kill also waits until a first program of the lab runs
      // (a kill before any would test none of them). Not a destroy's: it stops the
      // programs first (each depends on its host's veth), so the kill point may come after.
      if (reached() && (target === "cli" || provider) && (!processes || phase !== "up" || (await labPrograms(dir)).length > 0)) {
        victim = target === "cli" ? cli.pid : provider.pid;
        break;
      }
      await sleep(provider || target === "cli" ? 2 : 10);
    }
    if (!victim) {
      result.failures.push(`the ${phase} ended before the kill point (${namespaces()} namespaces): ${cli.output.trim().split("\n").slice(-5).join(" | ")}`);
      return result;
    }
    result.namespacesAtKill = namespaces();
    providerPid = provider?.pid;
    if (processes) result.programsAtKill = (await labPrograms(dir)).length;
    // With --remote: the host's processes serving the run at the kill, and the channels
    // among them (shells, ip sessions: what the kill cuts).
    if (ssh) {
      const sessions = await hostSessions();
      result.hostSessionsAtKill = sessions.length;
      result.hostChannelsAtKill = sessions.filter((q) => !isSshd(q)).length;
    }
    process.kill(victim, "SIGKILL");
    const killedAt = Date.now();
    const at = (ms) => sleep(Math.max(0, killedAt + ms - Date.now()));
    await Promise.race([cli.done, at(GRACE_MS)]);
    result.cliExit = String(await Promise.race([cli.done, Promise.resolve("still running")]));
    await at(GRACE_MS);

    // 3. Processes of the run 10 s after the kill, here and (--remote) on the host.
    const left = [...processesIn(dir), ...(await hostSessions()).map((q) => ({ ...q, host: true }))];
    result.left = left.map((q) => (q.host ? `host ${role(q)}` : role(q)));
    for (const q of left) killedPids.add(q.pid);
    for (const q of left) {
      try {
        process.kill(q.pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    await cli.done;

    // 4. Recovery, without editing the program.
    let refresh = p.run("refresh", ...YES, "--clear-pending-creates");
    if (refresh.code !== 0 && /locked/i.test(refresh.out)) {
      must("cancel", p.run("cancel", "--yes"));
      refresh = p.run("refresh", ...YES, "--clear-pending-creates");
    }
    must("refresh --clear-pending-creates", refresh);
    if (recovery === "destroy") {
      result.destroyed = must("destroy", p.run("destroy", ...YES));
      const orphans = spawnSync(process.execPath, [path.join(root, "dist/sdk/cli/orphans.js"), "--cwd", dir, "--stack", "faults", "--delete"], { encoding: "utf8", env, cwd: dir });
      result.orphans = orphans.stdout.trim();
      must("nslab-orphans --delete", { code: orphans.status ?? 1, out: `${orphans.stdout}\n${orphans.stderr}` });
      return result;
    }
    result.converged = must("up", p.run("up", ...YES));

    // 5. Checks.
    if (result.converged) {
      const drift = p.run("preview", "--refresh", "--expect-no-changes", "--non-interactive", "--diff");
      result.previewClean = must("preview --refresh --expect-no-changes", drift);
      const unreachable = traffic();
      result.traffic = unreachable.length === 0;
      if (unreachable.length) result.failures.push(`no traffic: ${unreachable.join(", ")}`);
    }
    result.destroyed = must("destroy", p.run("destroy", ...YES));
  } finally {
    const left = await residue(forwardBefore, dir, providerPid, started, killedPids);
    result.residue = left;
    if (left.length) {
      result.failures.push(`left after destroy: ${left.join("; ")}`);
      await scrub(forwardBefore, dir);
    }
    if (result.left.length) result.failures.push(`alive ${GRACE_MS / 1000} s after the kill: ${result.left.join(", ")}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

function summary(results) {
  const rows = new Map();
  for (const r of results) {
    const key = `${r.killed} | ${r.during}`;
    const row = rows.get(key) ?? { n: 0, ok: 0, left: new Set(), fail: [] };
    row.n++;
    if (!r.failures.filter((f) => !f.startsWith("alive")).length) row.ok++;
    if (r.orphans && !/no objects outside/.test(r.orphans)) row.orphans = (row.orphans ?? 0) + (Number(/(\d+) object/.exec(r.orphans)?.[1]) || 0);
    for (const l of r.left) row.left.add(l);
    for (const f of r.failures) row.fail.push(`#${r.trial}: ${f}`);
    rows.set(key, row);
  }
  const head =
    recovery === "up"
      ? "recovered without editing the program: up converged, preview clean, traffic, destroy left nothing"
      : "destroy, then nslab-orphans --delete, left nothing (objects the orphans command removed)";
  const lines = [`| killed | during | ${head} | processes of the run alive ${GRACE_MS / 1000} s after the kill |`, `| --- | --- | --- | --- |`];
  for (const [key, row] of rows) {
    const extra = recovery === "destroy" ? ` (${row.orphans ?? 0})` : "";
    lines.push(`| ${key} | ${row.ok} of ${row.n}${extra} | ${row.left.size ? [...row.left].join(", ") : "none"} |`);
  }
  return { table: lines.join("\n"), failures: [...rows.values()].flatMap((r) => r.fail) };
}

(async () => {
  console.log(`fault harness: ${trials} trials, ${hosts} hosts${impairments ? " (with a LinkImpairment each)" : ""}${processes ? " (with a Process each)" : ""}${vxlan ? " (with a Vxlan each)" : ""}${remote ? " on another host over SSH" : ""}, seed ${seed}, checkpoints ${checkpoints}, recovery ${recovery}, kinds ${kinds.join(",")}`);
  if (remote) {
    // The test helper that makes sshd hosts is TypeScript: load it the way Pulumi loads programs.
    require("ts-node").register({ transpileOnly: true, compilerOptions: { module: "commonjs", moduleResolution: "node" } });
    const { startHosts, here } = require(path.join(root, "test/helpers/sshd.ts"));
    const sshHosts = await startHosts(here, 1, "fh", "192.0.2");
    ssh = { hosts: sshHosts, host: sshHosts.hosts[0] };
    lab = place(ssh.host.pid, "host: ");
    lab.baseline.links.add("ul0");
    // This sandbox's own share of the host: its network namespace and the underlay's links.
    for (const n of local.netns()) local.baseline.netns.add(n);
    for (const l of local.links()) local.baseline.links.add(l);
  }
  const results = [];
  try {
    for (let n = 1; n <= trials; n++) await runTrial(n, results);
  } finally {
    if (ssh) await ssh.hosts.destroy();
  }
  const { table, failures } = summary(results);
  console.log(`\n${table}\n`);
  if (failures.length) console.log(`failures:\n${failures.join("\n")}`);
  if (args.json) fs.writeFileSync(path.resolve(args.json), JSON.stringify({ hosts, impairments, processes, vxlan, remote, checkpoints, recovery, results }, null, 2));
  process.exit(results.some((r) => r.failures.length) ? 1 : 0);
})();

async function runTrial(n, results) {
  const r = await trial(n, kinds[(n - 1) % kinds.length]);
  results.push(r);
  console.log(
    `#${n} kill ${r.killed} during ${r.during} at ${r.namespacesAtKill ?? "?"} namespaces${r.hostSessionsAtKill !== undefined ? ` (host: ${r.hostSessionsAtKill} processes, ${r.hostChannelsAtKill} of them channels)` : ""}: cli ${r.cliExit ?? "-"}, alive after ${GRACE_MS / 1000} s: ${r.left.join(", ") || "none"}; ` +
      (recovery === "up" ? `up ${r.converged ? "ok" : "FAILED"}, preview ${r.previewClean ? "clean" : "NOT clean"}, traffic ${r.traffic ? "ok" : "FAILED"}, ` : `orphans: ${(r.orphans ?? "-").split("\n")[0]}; `) +
      `destroy ${r.destroyed && !r.residue.length ? "clean" : "NOT clean"}` +
      (r.failures.length ? `\n   ${r.failures.join("\n   ")}` : ""),
  );
}
