/**
 * The long-lived `ip -batch` sessions (provider/ipsession.ts) on the real kernel: output
 * and failures attributed to the right command, ip's name cache never acting on a
 * stale interface, namespaces never kept alive by nslab, and recovery when ip exits.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ip, ipBatchRead, ipJson, netnsDelete } from "../../provider/kernel";
import { closeSessions, inspectSessions, openSessions, runIp } from "../../provider/ipsession";
import { ipByHand, linkByHand, uniq } from "../helpers/kernel";

const ns = uniq("kis");

describe("ip sessions on the kernel", () => {
  beforeAll(async () => {
    await ip(["netns", "add", ns], undefined, "test namespace");
  });
  afterAll(async () => {
    await netnsDelete(ns, "test namespace").catch(() => undefined);
  });

  it("returns each command's output and stops at the first failure, naming it", async () => {
    const shown = await ipBatchRead<{ ifname: string }[]>([["link", "set", "dev", "lo", "up"], ["link", "show", "dev", "lo"]], ns, "lo");
    expect(shown).toEqual([[expect.objectContaining({ ifname: "lo" })]]);

    const name = uniq("d");
    const err = await ipBatchRead(
      [
        ["link", "add", "name", name, "type", "veth", "peer", "name", `${name}p`],
        ["link", "set", "dev", "no-such-dev", "up"],
        ["link", "set", "dev", name, "up"],
      ],
      ns,
      "the test's links",
    ).catch((e) => e);
    expect(err).toMatchObject({ kind: "NotFound", details: { command: `ip -n ${ns} link set dev no-such-dev up` } });
    expect(err.message).toMatch(/^the test's links: not found/);
    // The command after the failed one never ran.
    expect((await linkByHand(name, ns))?.flags).not.toContain("UP");
    await ip(["link", "del", "dev", name], ns, "cleanup");
  });

  it("acts on the interface that has the name now, after someone else re-created it", async () => {
    const name = uniq("r");
    await ipByHand("-n", ns, "link", "add", "name", name, "type", "veth", "peer", "name", `${name}p`);
    // The session looks the name up (and ip caches name -> index).
    const [before] = await ipJson<{ ifindex: number }[]>(["link", "show", "dev", name], ns, name);
    // Someone else deletes and re-creates it: same name, new index.
    await ipByHand("-n", ns, "link", "del", "dev", name);
    await ipByHand("-n", ns, "link", "add", "name", name, "type", "veth", "peer", "name", `${name}p`);
    const fresh = await linkByHand(name, ns);
    expect(fresh!.ifindex).not.toBe(before.ifindex);

    // Reads and writes by name reach the new interface, not the cached index.
    const [after] = await ipJson<{ ifindex: number }[]>(["link", "show", "dev", name], ns, name);
    expect(after.ifindex).toBe(fresh!.ifindex);
    await ip(["address", "add", "10.77.0.1/24", "dev", name], ns, name);
    expect((await linkByHand(name, ns))!.addr_info.map((a: { local: string }) => a.local)).toContain("10.77.0.1");
    await ip(["link", "del", "dev", name], ns, name);
  });

  it("says not found for an interface that is gone, instead of an empty answer", async () => {
    const name = uniq("g");
    await ipByHand("-n", ns, "link", "add", "name", name, "type", "veth", "peer", "name", `${name}p`);
    await ipJson(["link", "show", "dev", name], ns, name);
    await ipByHand("-n", ns, "link", "del", "dev", name);
    await expect(ipJson(["link", "show", "dev", name], ns, name)).rejects.toMatchObject({ kind: "NotFound" });
  });

  it("survives ip exiting on a bad argument: that command fails, the next works", async () => {
    const err = await ip(["link", "set", "dev", "lo", "mtu", "not-a-number"], ns, "lo").catch((e) => e);
    expect(err).toMatchObject({ kind: "CommandFailed", details: { command: `ip -n ${ns} link set dev lo mtu not-a-number` } });
    expect(err.message).toMatch(/Invalid "mtu" value/);
    const [lo] = await ipJson<{ ifname: string }[]>(["link", "show", "dev", "lo"], ns, "lo");
    expect(lo.ifname).toBe("lo");
  });

  it("runs commands queued behind one that makes ip exit in a fresh session, instead of failing them", async () => {
    // Both are asked for at once, so the second waits in the same session as the first.
    const [bad, good] = await Promise.allSettled([
      ip(["link", "set", "dev", "lo", "mtu", "not-a-number"], ns, "lo"),
      ipJson<{ ifname: string }[]>(["link", "show", "dev", "lo"], ns, "lo"),
    ]);
    expect(bad).toMatchObject({ status: "rejected", reason: { kind: "CommandFailed" } });
    expect(good).toMatchObject({ status: "fulfilled", value: [{ ifname: "lo" }] });
  });

  it("refuses a namespace name the launcher could not pass as one word", async () => {
    for (const name of ["a b", "a/b", ""]) {
      const result = await runIp([["link", "show", "dev", "lo"]], name);
      expect(result.failure?.text).toMatch(/refusing namespace name/);
    }
    await expect(ipJson(["link", "show", "dev", "lo"], "a b", "namespace a b")).rejects.toMatchObject({ kind: "CommandFailed", message: expect.stringMatching(/^namespace a b: /) });
  });

  it("refuses text that ip -batch would read as a comment or a continuation", async () => {
    const result = await runIp([["link", "set", "dev", "lo", "alias", "a#b"]], ns);
    expect(result.failure?.text).toMatch(/refusing to pass/);
    expect((await linkByHand("lo", ns))?.ifalias).not.toBe("a");
  });

  it("never keeps a deleted namespace alive", async () => {
    const other = uniq("kisd");
    await ip(["netns", "add", other], undefined, "other");
    // A veth with one end in the namespace and one in the program's: the host end
    // disappears only when the namespace is really gone.
    const host = uniq("h");
    await ip(["link", "add", "name", host, "type", "veth", "peer", "name", "inner", "netns", other], undefined, "veth");
    await ipJson(["link", "show", "dev", "inner"], other, "inner"); // opens a session inside
    await netnsDelete(other, "other");
    expect(fs.existsSync(`/run/netns/${other}`)).toBe(false);
    for (let i = 0; i < 50 && (await linkByHand(host)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await linkByHand(host)).toBeUndefined();
  });

  it("does not use a session whose namespace was replaced by someone else", async () => {
    const other = uniq("kisr");
    await ip(["netns", "add", other], undefined, "other");
    await ip(["link", "set", "dev", "lo", "alias", "first"], other, "lo");
    await ipByHand("netns", "delete", other);
    await ipByHand("netns", "add", other);
    const [lo] = await ipJson<{ ifalias?: string }[]>(["link", "show", "dev", "lo"], other, "lo");
    expect(lo.ifalias).toBeUndefined(); // the new namespace's lo, not the old one's
    await netnsDelete(other, "other");
  });

  it("runs link deletes in one namespace side by side, in at most 16 sessions that go with the namespace", async () => {
    const crowded = uniq("kdl");
    await ip(["netns", "add", crowded], undefined, "crowded");
    const names = Array.from({ length: 20 }, (_, i) => `${uniq("v")}${i}`);
    await ipBatchRead(names.map((n) => ["link", "add", "name", n, "type", "veth", "peer", "name", `${n}p`]), crowded, "the test's veths");
    const mine = () => inspectSessions().sessions.filter((s) => s.netns === crowded);
    expect(mine().map((s) => s.lane)).toEqual([0]);
    const main = mine()[0].pid;

    // Each delete waits for the kernel's grace period: those asked for together each get
    // a session of their own (lane 0, idle, first), up to 16; the rest queue behind them.
    const deletes = names.map((n) => ip(["link", "del", "dev", n], crowded, n));
    expect(mine().map((s) => s.lane).sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    await Promise.all(deletes);
    for (const n of names) expect(await linkByHand(n, crowded)).toBeUndefined();

    // Anything else keeps to the namespace's own session.
    const [lo] = await ipJson<{ ifname: string }[]>(["link", "show", "dev", "lo"], crowded, "lo");
    expect(lo.ifname).toBe("lo");
    expect(mine().find((s) => s.lane === 0)?.pid).toBe(main);

    // Deleting the namespace closes every one of its sessions, so none keeps it alive.
    const pids = mine().map((s) => s.pid!);
    await netnsDelete(crowded, "crowded");
    expect(mine()).toEqual([]);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(fs.existsSync(`/run/netns/${crowded}`)).toBe(false);
  });

  it("closes sessions on request and opens them again when needed", async () => {
    await ipJson(["link", "show", "dev", "lo"], ns, "lo");
    const open = openSessions();
    expect(open).toBeGreaterThan(0);
    await closeSessions(ns);
    expect(openSessions()).toBeLessThan(open);
    const [lo] = await ipJson<{ ifname: string }[]>(["link", "show", "dev", "lo"], ns, "lo");
    expect(lo.ifname).toBe("lo");
  });

  const until = async (what: () => boolean) => {
    for (let i = 0; i < 100 && !what(); i++) await new Promise((r) => setTimeout(r, 20));
    return what();
  };
  const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, "utf8"));

  it("starts sessions through the launcher and leaves no FIFO of a started session behind", async () => {
    await ipJson(["link", "show", "dev", "lo"], ns, "lo");
    const { launcher, sessions } = inspectSessions();
    expect(launcher?.dir).toMatch(/nslab-ip\./);
    const mine = sessions.find((s) => s.netns === ns)!;
    // A started session's FIFOs are unlinked; what is left are spares made ahead (at
    // most one batch of 16 pairs), all of them FIFOs.
    expect(fs.existsSync(`${mine.fifo}.i`) || fs.existsSync(`${mine.fifo}.o`)).toBe(false);
    const spares = fs.readdirSync(launcher!.dir!);
    expect(spares.length).toBeLessThanOrEqual(32);
    for (const f of spares) expect(fs.statSync(`${launcher!.dir}/${f}`).isFIFO()).toBe(true);
    for (const s of sessions) expect(spares).not.toContain(`${path.basename(s.fifo!)}.i`);
    // The session's process is ip itself, in the namespace it was asked for.
    expect(fs.readFileSync(`/proc/${mine.pid}/cmdline`, "utf8").split("\0")[0]).toBe("ip");
    expect(fs.readlinkSync(`/proc/${mine.pid}/ns/net`)).toBe(`net:[${fs.statSync(`/run/netns/${ns}`).ino}]`);
  });

  it("notices a session's ip killed from outside: that command fails, the next gets a fresh session", async () => {
    await ipJson(["link", "show", "dev", "lo"], ns, "lo");
    const { pid } = inspectSessions().sessions.find((s) => s.netns === ns)!;
    process.kill(pid!, "SIGKILL");
    expect(await until(() => !inspectSessions().sessions.some((s) => s.pid === pid))).toBe(true);
    const [lo] = await ipJson<{ ifname: string }[]>(["link", "show", "dev", "lo"], ns, "lo");
    expect(lo.ifname).toBe("lo");
    expect(inspectSessions().sessions.find((s) => s.netns === ns)?.pid).not.toBe(pid);
  });

  it("starts a new launcher when the old one is gone, and removes what a killed one left", async () => {
    await ipJson(["link", "show", "dev", "lo"], ns, "lo");
    const { pid: old, dir: oldDir } = inspectSessions().launcher!;
    expect(path.basename(oldDir!)).toMatch(new RegExp(`^nslab-ip\\.${old}\\.`));
    await closeSessions(ns);
    process.kill(old!, "SIGKILL"); // no trap runs: its directory stays (until a launcher starts, here or in another process)
    expect(fs.existsSync(oldDir!)).toBe(true);
    expect(await until(() => inspectSessions().launcher?.pid !== old)).toBe(true);
    const [lo] = await ipJson<{ ifname: string }[]>(["link", "show", "dev", "lo"], ns, "lo");
    expect(lo.ifname).toBe("lo");
    expect(inspectSessions().launcher?.pid).not.toBe(old);
    // The new launcher removed the directory its killed predecessor left.
    expect(fs.existsSync(oldDir!)).toBe(false);
  });

  it("starts a session through a new launcher when the old one was killed just before it was asked", async () => {
    await ipJson(["link", "show", "dev", "lo"], ns, "lo");
    const { pid: old } = inspectSessions().launcher!;
    await closeSessions(ns);
    process.kill(old!, "SIGKILL"); // and ask at once: its exit has not been seen yet
    const [lo] = await ipJson<{ ifname: string }[]>(["link", "show", "dev", "lo"], ns, "lo");
    expect(lo.ifname).toBe("lo");
    expect(inspectSessions().launcher?.pid).not.toBe(old);
  });

  it("ends the launcher, its sessions and its directory with the process that started them", async () => {
    const script = `
      const s = require(${JSON.stringify(path.resolve(__dirname, "../../dist/provider/ipsession.js"))});
      s.runIp([["link", "show", "dev", "lo"]], ${JSON.stringify(ns)}).then((r) => {
        const i = s.inspectSessions();
        console.log(JSON.stringify({ ok: !r.failure, dir: i.launcher.dir, launcher: i.launcher.pid, ip: i.sessions[0].pid }));
      });`;
    const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 20_000 });
    expect(child.status, child.stderr).toBe(0); // exits by itself: idle sessions do not hold it
    const seen = JSON.parse(child.stdout) as { ok: boolean; dir: string; launcher: number; ip: number };
    expect(seen.ok).toBe(true);
    expect(await until(() => !alive(seen.ip) && !alive(seen.launcher) && !fs.existsSync(seen.dir))).toBe(true);
  });

  it("leaves no ip behind when the process that started it is killed, not even one stuck in a command", async () => {
    const script = `
      const s = require(${JSON.stringify(path.resolve(__dirname, "../../dist/provider/ipsession.js"))});
      s.runIp([["link", "show", "dev", "lo"]], ${JSON.stringify(ns)}).then(() => {
        const i = s.inspectSessions();
        console.log(JSON.stringify({ launcher: i.launcher.pid, dir: i.launcher.dir, ip: i.sessions[0].pid }));
        s.runIp([["monitor", "link"]], ${JSON.stringify(ns)}); // never ends, and ip stops reading its stdin
        setInterval(() => undefined, 1000);
      });`;
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const line = await new Promise<string>((resolve) => child.stdout.once("data", (d) => resolve(String(d))));
    const seen = JSON.parse(line) as { launcher: number; dir: string; ip: number };
    await new Promise((r) => setTimeout(r, 200)); // the monitor is running
    expect(alive(seen.ip)).toBe(true);
    child.kill("SIGKILL"); // no exit handler runs: only its pipes close
    try {
      expect(await until(() => !alive(seen.ip) && !alive(seen.launcher) && !fs.existsSync(seen.dir))).toBe(true);
    } finally {
      if (alive(seen.ip)) process.kill(seen.ip, "SIGKILL"); // leave nothing behind either way
    }
  });

  it("says why when the launcher cannot make its FIFO directory", () => {
    const script = `
      require(${JSON.stringify(path.resolve(__dirname, "../../dist/provider/ipsession.js"))})
        .runIp([["link", "show", "dev", "lo"]], ${JSON.stringify(ns)})
        .then((r) => console.log(JSON.stringify(r.failure)));`;
    const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 20_000, env: { ...process.env, TMPDIR: "/nonexistent-nslab" } });
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout)).toMatchObject({ index: 0, text: expect.stringMatching(/could not make a directory for its FIFOs in \/nonexistent-nslab/) });
  });

  it("gives up a session whose FIFOs it cannot open (too many open files): no subshell left waiting, no FIFO left", () => {
    // In a child process: one session, then file descriptors used up but one, so that
    // the next session's first FIFO opens and its second fails with EMFILE.
    const script = `
      const fs = require("node:fs");
      const { spawnSync } = require("node:child_process");
      const s = require(${JSON.stringify(path.resolve(__dirname, "../../dist/provider/ipsession.js"))});
      const children = (pid) => fs.readdirSync("/proc/" + pid + "/task").flatMap((t) => fs.readFileSync("/proc/" + pid + "/task/" + t + "/children", "utf8").trim().split(" ").filter(Boolean));
      (async () => {
        const first = await s.runIp([["link", "show", "dev", "lo"]], ${JSON.stringify(ns)});
        const fds = fs.readdirSync("/proc/self/fd").map(Number);
        const limit = Math.max(...fds) + 64;
        const lowered = spawnSync("prlimit", ["--pid", String(process.pid), "--nofile=" + limit + ":"]);
        if (lowered.status !== 0) throw new Error("prlimit: " + lowered.stderr);
        const filler = [];
        for (;;) { try { filler.push(fs.openSync("/dev/null", "r")); } catch { break; } }
        fs.closeSync(filler.pop()); // exactly one descriptor free
        const failed = await s.runIp([["link", "show", "dev", "lo"]], ${JSON.stringify(ns)}, "-6");
        for (const fd of filler) fs.closeSync(fd);
        const { launcher } = s.inspectSessions();
        // Each live child of the launcher is a subshell waiting for its ip: none without
        // one (a stopped subshell is a zombie until the launcher reaps it).
        const live = (pid) => { try { return !/^State:\\s+Z/m.test(fs.readFileSync("/proc/" + pid + "/status", "utf8")); } catch { return false; } };
        let waiting;
        for (let i = 0; i < 50; i++) {
          waiting = children(launcher.pid).filter((sub) => live(sub) && children(sub).length === 0);
          if (waiting.length === 0) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        const left = fs.readdirSync(launcher.dir);
        const again = await s.runIp([["link", "show", "dev", "lo"]], ${JSON.stringify(ns)}, "-6");
        console.log(JSON.stringify({ first: !first.failure, failed: failed.failure, waiting, left, again: !again.failure }));
      })();`;
    const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 20_000 });
    expect(child.status, child.stderr).toBe(0);
    const seen = JSON.parse(child.stdout) as { first: boolean; failed: { text: string }; waiting: string[]; left: string[]; again: boolean };
    expect(seen.first).toBe(true);
    expect(seen.failed.text).toMatch(/could not open the FIFOs of an ip session: EMFILE/);
    expect(seen.waiting).toEqual([]);
    // The first session used pair 1 (unlinked once open), the failed one pair 2.
    expect(seen.left).not.toContain("2.i");
    expect(seen.left).not.toContain("2.o");
    expect(seen.again).toBe(true);
  });

  /** Runs `body` (JavaScript, with `s` the session module and `ns` the namespace) in a child process with `env`; returns what it printed as JSON. */
  const inChild = (body: string, env: Record<string, string>) => {
    const script = `
      const fs = require("node:fs");
      const s = require(${JSON.stringify(path.resolve(__dirname, "../../dist/provider/ipsession.js"))});
      const ns = ${JSON.stringify(ns)};
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const alive = (pid) => { try { return !/^State:\\s+Z/m.test(fs.readFileSync("/proc/" + pid + "/status", "utf8")); } catch { return false; } };
      const pidOf = (netns, family) => s.inspectSessions().sessions.find((x) => x.netns === netns && x.family === family)?.pid;
      (async () => { ${body} })().then((r) => console.log(JSON.stringify(r)));`;
    const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 20_000, env: { ...process.env, ...env } });
    expect(child.status, child.stderr).toBe(0);
    return JSON.parse(child.stdout);
  };

  it("closes a session left idle for NSLAB_IP_IDLE_MS", () => {
    const seen = inChild(
      `await s.runIp([["link", "show", "dev", "lo"]], ns);
       const pid = pidOf(ns, undefined);
       await sleep(100);
       const early = { open: s.openSessions(), alive: alive(pid) };
       for (let i = 0; i < 200 && alive(pid); i++) await sleep(20);
       return { early, open: s.openSessions(), alive: alive(pid) };`,
      { NSLAB_IP_IDLE_MS: "1000" },
    );
    expect(seen.early).toEqual({ open: 1, alive: true });
    expect(seen).toMatchObject({ open: 0, alive: false });
  });

  it("replaces a session older than NSLAB_IP_MAX_AGE_MS at its next use", () => {
    const seen = inChild(
      `await s.runIp([["link", "show", "dev", "lo"]], ns);
       const first = pidOf(ns, undefined);
       await s.runIp([["link", "show", "dev", "lo"]], ns);
       const same = pidOf(ns, undefined) === first;
       await sleep(1700);
       const r = await s.runIp([["link", "show", "dev", "lo"]], ns);
       const second = pidOf(ns, undefined);
       for (let i = 0; i < 100 && alive(first); i++) await sleep(20);
       return { same, replaced: second !== first, ok: !r.failure, firstAlive: alive(first), open: s.openSessions() };`,
      { NSLAB_IP_MAX_AGE_MS: "1500" },
    );
    expect(seen).toEqual({ same: true, replaced: true, ok: true, firstAlive: false, open: 1 });
  });

  it("keeps at most NSLAB_IP_MAX_SESSIONS open, closing the least recently used", () => {
    const seen = inChild(
      `const run = (netns, family) => s.runIp([["link", "show", "dev", "lo"]], netns, family);
       await run(ns, undefined);
       const oldest = pidOf(ns, undefined);
       await run(ns, "-6");
       await run(undefined, undefined);
       for (let i = 0; i < 100 && alive(oldest); i++) await sleep(20);
       const r = await run(ns, "-6"); // still open, so no other session is closed
       return { open: s.openSessions(), oldestAlive: alive(oldest), ok: !r.failure, kept: s.inspectSessions().sessions.map((x) => (x.netns ?? "-") + " " + (x.family ?? "-")).sort() };`,
      { NSLAB_IP_MAX_SESSIONS: "2" },
    );
    expect(seen).toEqual({ open: 2, oldestAlive: false, ok: true, kept: ["- -", `${ns} -6`].sort() });
  });

  it("fails a command that takes longer than NSLAB_IP_TIMEOUT_MS, kills its ip, and the next command gets a fresh session", () => {
    const seen = inChild(
      `await s.runIp([["link", "show", "dev", "lo"]], ns);
       const first = pidOf(ns, undefined);
       const hung = await s.runIp([["monitor", "link"]], ns); // never ends by itself
       // At once, before the killed ip's exit is reported: not written to that ip.
       const r = await s.runIp([["link", "show", "dev", "lo"]], ns);
       const fresh = pidOf(ns, undefined) !== first;
       for (let i = 0; i < 100 && alive(first); i++) await sleep(20);
       return { failure: hung.failure, firstAlive: alive(first), next: r.failure ?? "ok", fresh };`,
      // Long enough for any ordinary command (a session start included) on a busy machine.
      { NSLAB_IP_TIMEOUT_MS: "2000" },
    );
    expect(seen.failure).toMatchObject({ index: 0, timedOut: true, text: "timed out after 2000 ms" });
    expect(seen).toMatchObject({ firstAlive: false, next: "ok", fresh: true });
  });

  it("runs commands queued behind one that timed out in a fresh session, not in the ip being killed", () => {
    const seen = inChild(
      `await s.runIp([["link", "show", "dev", "lo"]], ns);
       const first = pidOf(ns, undefined);
       const [hung, queued] = await Promise.all([s.runIp([["monitor", "link"]], ns), s.runIp([["link", "show", "dev", "lo"]], ns)]);
       return { hung: hung.failure, queued: queued.failure ?? "ok", fresh: pidOf(ns, undefined) !== first };`,
      { NSLAB_IP_TIMEOUT_MS: "2000" },
    );
    expect(seen.hung).toMatchObject({ index: 0, timedOut: true });
    expect(seen).toMatchObject({ queued: "ok", fresh: true });
  });

  it("refuses a limit that is not a positive whole number, naming the variable", () => {
    const child = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(path.resolve(__dirname, "../../dist/provider/ipsession.js"))})`], {
      encoding: "utf8",
      env: { ...process.env, NSLAB_IP_TIMEOUT_MS: "30s" },
    });
    expect(child.status).not.toBe(0);
    expect(child.stderr).toContain('NSLAB_IP_TIMEOUT_MS must be a positive whole number (it is "30s"); unset it for the default, 30000');
  });

  it("a launcher stopped by a signal it can trap removes its directory itself", async () => {
    await ipJson(["link", "show", "dev", "lo"], ns, "lo");
    const { pid, dir } = inspectSessions().launcher!;
    await closeSessions(ns);
    process.kill(pid!, "SIGTERM");
    expect(await until(() => !fs.existsSync(dir!))).toBe(true);
    const [lo] = await ipJson<{ ifname: string }[]>(["link", "show", "dev", "lo"], ns, "lo");
    expect(lo.ifname).toBe("lo");
  });
});
