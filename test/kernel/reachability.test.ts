import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as kernel from "../../provider/kernel";
import { processKind } from "../../provider/process";
import { reachabilityKind } from "../../provider/reachability";
import { ipByHand, must, OWNER, uniq } from "../helpers/kernel";

/** The network namespace of a named namespace, as /proc/PID/ns/net names it. */
const netOf = (ns: string) => `net:[${fs.statSync(`/run/netns/${ns}`).ino}]`;

/** Probe processes inside `ns` (other tests' probe processes run elsewhere). */
function probersIn(ns: string): number[] {
  const net = netOf(ns);
  return processesWith("provider/probe.js").filter((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/net`) === net;
    } catch {
      return false;
    }
  });
}

/** Live processes whose command line contains `text`. */
function processesWith(text: string): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/cmdline`, "utf8").includes(text) && !/ [ZX] /.test(fs.readFileSync(`/proc/${d}/stat`, "utf8").split(")")[1].slice(0, 3));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("Reachability and Process on the kernel", () => {
  const a = uniq("kra");
  const b = uniq("krb");
  const probe = (news: Record<string, unknown>) => reachabilityKind.check(undefined, { __owner: `${OWNER}/Reachability/p`, from: a, ...news }).inputs;
  let echo: Awaited<ReturnType<typeof processKind.create>>["outs"];

  beforeAll(async () => {
    for (const ns of [a, b]) await ipByHand("netns", "add", ns);
    await ipByHand("link", "add", "ka0", "netns", a, "type", "veth", "peer", "name", "kb0", "netns", b);
    await ipByHand("-n", a, "addr", "add", "10.7.0.1/24", "dev", "ka0");
    await ipByHand("-n", b, "addr", "add", "10.7.0.2/24", "dev", "kb0");
    for (const [ns, dev] of [[a, "ka0"], [b, "kb0"]]) await ipByHand("-n", ns, "link", "set", dev, "up");
    const UDP = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',7))\nprint('ready', flush=True)\nwhile True:\n  d,x=s.recvfrom(2048); s.sendto(d,x)";
    const { inputs } = processKind.check(undefined, { __owner: `${OWNER}/Process/echo`, namespace: b, command: ["python3", "-c", UDP], readyText: "ready" });
    echo = (await processKind.create(inputs)).outs;
  });

  afterAll(async () => {
    await processKind.delete("", echo);
    for (const ns of [a, b]) await kernel.netnsDelete(ns, ns).catch(() => undefined);
  });

  it("probes of one namespace share one probe process, which goes before its namespace is deleted", async () => {
    const many = await Promise.all(
      Array.from({ length: 50 }, (_, i) => reachabilityKind.read("", { ...probe({ to: "10.7.0.2", protocol: i % 2 ? "udp" : "tcp", port: i % 2 ? 7 : 9, expect: i % 2 ? "reachable" : "unreachable" }), reachable: false })),
    );
    // udp to the echo answers; tcp to port 9 is refused: each as expected, no drift.
    expect(many.map((r) => r.inputs!.expect)).toEqual(Array.from({ length: 50 }, (_, i) => (i % 2 ? "reachable" : "unreachable")));
    expect(probersIn(a)).toHaveLength(1);

    const spare = uniq("krc");
    await ipByHand("netns", "add", spare);
    await kernel.transportProbe({ protocol: "tcp", to: "127.0.0.1", port: 9, timeoutMs: 500 }, spare, "spare");
    const spareProber = probersIn(spare);
    expect(spareProber).toHaveLength(1);
    await kernel.netnsDelete(spare, "spare");
    expect(processesWith("provider/probe.js")).not.toContain(spareProber[0]);
    expect(probersIn(a)).toHaveLength(1);
  });

  it("a Process is stopped only while its start time matches: a reused pid is never signalled", async () => {
    const sleeper = spawn("sleep", ["60"], { stdio: "ignore" });
    await new Promise((r) => sleeper.once("spawn", r));
    const pid = sleeper.pid!;
    const stat = (await kernel.processStat(pid))!;
    // Recorded with another start time: not ours, left alone.
    await processKind.delete("", { ...echo, pid, startTime: String(Number(stat.startTime) - 1) });
    expect(await kernel.processAlive(pid, stat.startTime)).toBe(true);
    expect(await processKind.read("", { ...echo, pid, startTime: String(Number(stat.startTime) - 1) })).toEqual({});
    // With its own: stopped, and waited for.
    const exited = new Promise((r) => sleeper.once("exit", r));
    await processKind.delete("", { ...echo, pid, startTime: stat.startTime });
    await exited;
    expect(await kernel.processAlive(pid, stat.startTime)).toBe(false);
  });

  it("a Process's delete stops the programs it started too (its process group), also those left running after it ended itself", async () => {
    const run = async (name: string, script: string) => {
      const { inputs } = processKind.check(undefined, { __owner: `${OWNER}/Process/${name}`, namespace: b, command: ["bash", "-c", script], readyText: "ok" });
      const outs = (await processKind.create(inputs)).outs;
      // "ok" comes after the forks, perhaps before the children have become sleep.
      const sleeps = [...script.matchAll(/sleep (61\.\d+)/g)].map((m) => `sleep\u0000${m[1]}`);
      for (let i = 0; i < 100 && sleeps.some((s) => processesWith(s).length === 0); i++) await new Promise((r) => setTimeout(r, 20));
      return outs;
    };
    // A shell that starts two programs in the background and waits for them.
    const shell = await run("shell", "sleep 61.31 & sleep 61.32 & echo ok; wait");
    expect(processesWith("sleep\u000061.31")).toHaveLength(1);
    expect(processesWith("sleep\u000061.32")).toHaveLength(1);
    await processKind.delete("", shell);
    expect(processesWith("sleep\u000061.31")).toEqual([]);
    expect(processesWith("sleep\u000061.32")).toEqual([]);
    expect(await kernel.processAlive(shell.pid, shell.startTime)).toBe(false);

    // One that ends, leaving its program running: read says it is gone (drift); the
    // delete still stops what it left; a second delete finds nothing.
    const brief = await run("brief", "sleep 61.33 & echo ok; sleep 0.3");
    for (let i = 0; i < 50 && (await kernel.processAlive(brief.pid, brief.startTime)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await processKind.read("", brief)).toEqual({});
    expect(processesWith("sleep\u000061.33")).toHaveLength(1);
    await processKind.delete("", brief);
    expect(processesWith("sleep\u000061.33")).toEqual([]);
    await processKind.delete("", brief);

    // What it left is found by its mark (nslab-orphans; a create of the same resource
    // after a refresh dropped it stops it first, as it does an earlier program).
    const left = await run("left", "sleep 61.36 & echo ok; sleep 0.3");
    for (let i = 0; i < 50 && (await kernel.processAlive(left.pid, left.startTime)); i++) await new Promise((r) => setTimeout(r, 100));
    const [stray] = processesWith("sleep\u000061.36");
    expect((await kernel.markedProcesses()).filter((p) => p.owner === left.__owner).map((p) => p.pid)).toEqual([stray]);
    const again = await run("left", "sleep 61.37 & echo ok; wait");
    expect(processesWith("sleep\u000061.36")).toEqual([]);
    expect((await kernel.markedProcesses()).filter((p) => p.owner === left.__owner).map((p) => p.pid)).toEqual([again.pid]);
    await processKind.delete("", again);
    expect(processesWith("sleep\u000061.37")).toEqual([]);

    // One that says it is ready and ends at once (a shell that leaves its program in the
    // background): the create fails saying so, and stops what it left.
    const quick = processKind.check(undefined, { __owner: `${OWNER}/Process/quick`, namespace: b, command: ["bash", "-c", "sleep 61.39 & echo ok"], readyText: "ok" }).inputs;
    await expect(processKind.create(quick)).rejects.toThrow(/printed "ok" and then exited: a Process is a program that keeps running .*Run it in the foreground/);
    expect(processesWith("sleep\u000061.39")).toEqual([]);

    // A program in a process group of its own (a job-control shell's job, like timeout's
    // child), and one without the mark that ignores SIGTERM: its session, both stopped.
    const jobs = await run("jobs", "set -m; sleep 61.34 & env -i sh -c 'trap \"\" TERM; exec sleep 61.35' & echo ok; wait");
    expect(processesWith("sleep\u000061.34")).toHaveLength(1);
    expect(processesWith("sleep\u000061.35")).toHaveLength(1);
    await processKind.delete("", { ...jobs, stopTimeoutMs: 500 });
    expect(processesWith("sleep\u000061.34")).toEqual([]);
    expect(processesWith("sleep\u000061.35")).toEqual([]);
  });

  it("a Process's programs get SIGTERM once each (a second one cuts a graceful stop short)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-term-"));
    const counter = path.join(dir, "count.py");
    fs.writeFileSync(counter, "import signal, sys, time\nseen = open(sys.argv[1], 'a')\ndef term(*_):\n    seen.write('T'); seen.flush()\nsignal.signal(signal.SIGTERM, term)\nprint('ok', flush=True)\nwhile True:\n    time.sleep(0.05)\n    if seen.tell() and time.time() > 0: time.sleep(0.3); sys.exit(0)\n");
    const { inputs } = processKind.check(undefined, { __owner: `${OWNER}/Process/once`, namespace: b, command: ["bash", "-c", `python3 -u ${counter} ${dir}/leader & python3 -u ${counter} ${dir}/child > /dev/null & wait`], readyText: "ok" });
    const once = (await processKind.create(inputs)).outs;
    // The second python up too (python3 may be a slow-starting shim): each has opened its file.
    for (let i = 0; i < 100 && !["leader", "child"].every((f) => fs.existsSync(path.join(dir, f))); i++) await new Promise((r) => setTimeout(r, 50));
    await processKind.delete("", once);
    expect(fs.readFileSync(path.join(dir, "leader"), "utf8")).toBe("T");
    expect(fs.readFileSync(path.join(dir, "child"), "utf8")).toBe("T");

    // Left running by a program that ended, a job in a group of its own with two
    // programs: the create that starts the resource again stops each once (each is
    // listed; the first stop takes the whole session and waits for it).
    const script = `set -m; (python3 -u ${counter} ${dir}/left1 > /dev/null & python3 -u ${counter} ${dir}/left2 > /dev/null & wait) & sleep 0.5; echo ok; sleep 0.3`;
    const ended = (await processKind.create(processKind.check(undefined, { __owner: `${OWNER}/Process/ended`, namespace: b, command: ["bash", "-c", script], readyText: "ok" }).inputs)).outs;
    for (let i = 0; i < 50 && (await kernel.processAlive(ended.pid, ended.startTime)); i++) await new Promise((r) => setTimeout(r, 100));
    // Both counting (python3 may be a slow-starting shim): each has opened its file.
    for (let i = 0; i < 100 && !["left1", "left2"].every((f) => fs.existsSync(path.join(dir, f))); i++) await new Promise((r) => setTimeout(r, 50));
    const counters = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d) && (() => { try { const argv = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0"); return argv[0] !== "bash" && argv.some((a) => a.startsWith(`${dir}/left`)); } catch { return false; } })()).map(Number);
    expect(counters).toHaveLength(2);
    expect((await kernel.markedProcesses()).filter((p) => p.owner === ended.__owner).map((p) => p.pid)).toEqual(expect.arrayContaining(counters));
    const again = (await processKind.create(processKind.check(undefined, { __owner: `${OWNER}/Process/ended`, namespace: b, command: ["sleep", "61.38"] }).inputs)).outs;
    expect(fs.readFileSync(path.join(dir, "left1"), "utf8")).toBe("T");
    expect(fs.readFileSync(path.join(dir, "left2"), "utf8")).toBe("T");
    expect((await kernel.markedProcesses()).filter((p) => p.owner === ended.__owner).map((p) => p.pid)).toEqual([again.pid]);
    await processKind.delete("", again);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a Process that runs but prints nothing within startupMs is stopped, and told its output may be held back in a buffer", async () => {
    const { inputs } = processKind.check(undefined, { __owner: `${OWNER}/Process/quiet`, namespace: b, command: ["sleep", "61.41"], readyText: "ready", startupMs: 300 });
    const err = await processKind.create(inputs).catch((e: Error) => e);
    expect(String(err)).toMatch(
      /Process "quiet" \(sleep 61\.41\) in namespace "[^"]+": did not print "ready" within 300 ms \(stopped it\); its log \(.*\) ends: \(the log is empty\)\. A program may hold back its output when it goes to a file: make it write at once \(python3 -u, stdbuf -oL COMMAND\), or raise startupMs\.$/,
    );
    expect(processesWith("sleep\u000061.41")).toEqual([]);
  });

  it("a Process whose cwd or log folder is missing fails naming it, and starts nothing", async () => {
    const start = (over: Record<string, unknown>) =>
      processKind.create(processKind.check(undefined, { __owner: `${OWNER}/Process/nocwd`, namespace: b, command: ["sleep", "61.25"], ...over }).inputs).catch((e: Error) => e);
    const before = processesWith("61.25").length;
    expect(String(await start({ cwd: "/nonexistent-nslab-cwd" }))).toMatch(/Process "nocwd" \(sleep 61\.25\) in namespace "[^"]+": cwd "\/nonexistent-nslab-cwd" is not a folder it can enter\. Create it, or give another cwd\./);
    expect(String(await start({ logFile: "/nonexistent-nslab-dir/app.log" }))).toMatch(/cannot append to log file "\/nonexistent-nslab-dir\/app\.log" \(ENOENT[^)]*\)\. Give a logFile in a folder that exists\./);
    expect(processesWith("61.25").length).toBe(before);
  });

  it("the echo Process runs inside its namespace and answers a udp probe; icmp and tcp results name what came back", async () => {
    expect(fs.readlinkSync(`/proc/${echo.pid}/ns/net`)).toBe(netOf(b));
    expect(await must("ip", ["netns", "exec", a, "ping", "-c", "1", "-W", "2", "10.7.0.2"])).toContain("1 received");
    const ok = await reachabilityKind.create(probe({ to: "10.7.0.2", protocol: "udp", port: 7 }));
    expect(ok.outs.reachable).toBe(true);
    await expect(reachabilityKind.create(probe({ to: "10.7.0.2", protocol: "tcp", port: 9 }))).rejects.toThrow(/tcp port 9 on 10\.7\.0\.2: expected reachable, but it did not answer: connection refused/);
    await expect(reachabilityKind.create(probe({ to: "10.7.0.2", expect: "unreachable" }))).rejects.toThrow(/expected unreachable, but it answered: 64 bytes from 10\.7\.0\.2/);
    await expect(reachabilityKind.create(probe({ to: "10.7.9.9", protocol: "tcp", port: 80, timeoutMs: 300 }))).rejects.toThrow(/network is unreachable \(ENETUNREACH\)/);
    // ping's own error, named once: "ping: connect: Network is unreachable", not "ping: ping: ...".
    const icmp = reachabilityKind.create(probe({ to: "10.7.9.9", timeoutMs: 300 }));
    await expect(icmp).rejects.toThrow(/did not answer: ping: connect: Network is unreachable/);
    await expect(icmp).rejects.not.toThrow(/ping: ping:/);
  });
});
