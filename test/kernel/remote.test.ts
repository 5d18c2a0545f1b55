/**
 * Resources on other hosts over SSH (provider/ssh.ts), against two real sshds, each a
 * "machine" of its own in the suite's sandbox (test/helpers/sshd.ts): everything is
 * made on the right host (never here), through one SSH connection per host, two
 * bridges joined by VXLAN pass traffic, drift made by hand over there is seen, delete
 * leaves nothing, and a host that cannot be reached fails at once naming it. TapDevice,
 * LinkImpairment, Reachability (icmp, tcp, udp) and Process read, write, probe and
 * start programs only on their host.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dispatch, NslabError, removeUnmarked, unmarked } from "../../provider";
import { intend, ip, ipBatchRead, markedProcesses, readFileFrom, resetSnapshots, withHost } from "../../provider/kernel";
import type { HostArgs } from "../../provider/host";
import { probe } from "../../provider/reachability";
import { ownerTag } from "../../provider/resource";
import { closeMasters, controlState, ensureMaster, openMasters, remoteRequests, remoteRun, remoteSequence, sshError, sshFailed } from "../../provider/ssh";
import { must } from "../helpers/sandbox";
import { running as alive } from "../helpers/proc";
import { here, SshHosts, startHosts } from "../helpers/sshd";
import { tunUsable, uniq } from "../helpers/kernel";
import { REPO } from "../helpers/lab";

const tag = uniq("r");
let lab: SshHosts;

/** check then create through the dispatcher, as the engine does. */
async function make(kind: string, name: string, args: Record<string, unknown>): Promise<{ id: string; outs: Record<string, any> }> {
  const checked = (await dispatch(kind, "check", [undefined, { __owner: `test/remote/${kind}/${name}`, ...args }])) as { inputs: Record<string, unknown>; failures: unknown[] };
  expect(checked.failures).toEqual([]);
  return (await dispatch(kind, "create", [checked.inputs])) as { id: string; outs: Record<string, any> };
}


/** Whether `pid` has ended within 10 s. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 500 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

/** Established TCP connections from here to HOST:22 (each is a handshake). */
function connectionsTo(address: string): number {
  const hex = address.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).reverse().join("").toUpperCase();
  return fs.readFileSync("/proc/net/tcp", "utf8").split("\n").filter((l) => new RegExp(` [0-9A-F]{8}:[0-9A-F]{4} ${hex}:0016 01 `).test(l)).length;
}

describe("resources on other hosts, over SSH", () => {
  beforeAll(async () => {
    lab = await startHosts(here, 2, tag, "192.0.2");
  });
  afterAll(async () => {
    await lab?.destroy();
    for (const h of lab?.hosts ?? []) await must("ip", ["netns", "del", h.netns]).catch(() => undefined);
    await must("ip", ["link", "del", `${tag}ul`]).catch(() => undefined);
  });

  it("builds a namespace, a bridge, a veth and a Vxlan on each host, joined across; ping passes; one connection per host; delete leaves nothing", async () => {
    const [h1, h2] = lab.hosts;
    const made: { kind: string; id: string; outs: Record<string, any> }[] = [];
    const add = async (kind: string, name: string, args: Record<string, unknown>) => {
      const r = await make(kind, name, args);
      made.push({ kind, ...r });
      return r;
    };
    for (const [i, h] of [h1, h2].entries()) {
      const host = h.host;
      await add("Namespace", `n${i}`, { name: "site", host });
      await add("Bridge", `br${i}`, { name: "br0", host });
      await add("VethPair", `v${i}`, { host, a: { name: "eth0", namespace: "site", addresses: [`10.50.0.${11 + i}/24`] }, b: { name: "site-br", master: "br0" } });
      await add("Vxlan", `vx${i}`, { host, name: "vx42", vni: 42, local: h.address, remote: (i === 0 ? h2 : h1).address, dstPort: 4789, master: "br0" });
    }
    // Made over there, not here: this machine has no namespace "site", no br0.
    expect((await must("ip", ["netns", "list"])).split("\n").map((l) => l.split(" ")[0])).not.toContain("site");
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).toMatch(/^site/m);
    const vx = JSON.parse(await lab.onHost(h2, "ip", ["-j", "-d", "link", "show", "vx42"]))[0];
    expect(vx).toMatchObject({ master: "br0", linkinfo: { info_kind: "vxlan", info_data: { id: 42, local: h2.address, remote: h1.address, port: 4789 } } });
    expect(vx.ifalias).toMatch(/^nslab:[0-9a-f]{16}$/);
    // Across the VXLAN, at the first try.
    await lab.onHost(h1, "ip", ["netns", "exec", "site", "ping", "-c", "1", "-W", "2", "10.50.0.12"]);

    // Every command went over one connection per host (ControlMaster), not one each.
    expect(openMasters().sort()).toEqual([h1.host.ssh, h2.host.ssh].sort());
    expect(connectionsTo(h1.address)).toBe(1);
    expect(connectionsTo(h2.address)).toBe(1);

    // Read sees the live object over there; drift made by hand there is seen.
    const vxB = made.find((m) => m.kind === "Vxlan" && m.outs.host.ssh === h2.host.ssh)!;
    const before = (await dispatch("Vxlan", "read", [vxB.id, vxB.outs])) as { props?: Record<string, unknown> };
    expect(before.props).toMatchObject({ vni: 42, learning: true, host: h2.host });
    await lab.onHost(h2, "ip", ["link", "set", "vx42", "type", "vxlan", "nolearning"]);
    resetSnapshots();
    const after = (await dispatch("Vxlan", "read", [vxB.id, vxB.outs])) as { props?: Record<string, unknown> };
    expect(after.props).toMatchObject({ learning: false });
    const vethB = made.find((m) => m.kind === "VethPair" && m.outs.host.ssh === h2.host.ssh)!;
    await lab.onHost(h2, "ip", ["link", "del", "site-br"]);
    resetSnapshots();
    expect(((await dispatch("VethPair", "read", [vethB.id, vethB.outs])) as { id?: string }).id).toBeUndefined();

    // Delete, in reverse order, leaves nothing on either host; a second delete is a no-op.
    for (const m of [...made].reverse()) await dispatch(m.kind, "delete", [m.id, m.outs]);
    for (const m of [...made].reverse()) await dispatch(m.kind, "delete", [m.id, m.outs]);
    for (const h of [h1, h2]) {
      expect(await lab.onHost(h, "ip", ["netns", "list"])).toBe("");
      expect(await lab.onHost(h, "ip", ["-o", "link", "show"])).not.toMatch(/br0|vx42|site-br/);
      expect(await lab.onHost(h, "find", ["/run/nslab", "-type", "f"])).toBe("");
    }
  });

  it("keeps IpForwarding's record, NatRule and Route on the host they belong to", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const ns = await make("Namespace", "rt", { name: "rt", host });
    const link = await make("VethPair", "rt-link", { host, a: { name: "up0", namespace: "rt", addresses: ["10.60.0.1/24"] }, b: { name: "rt-peer", addresses: ["10.60.0.2/24"] } });
    const fwd = await make("IpForwarding", "rt-fwd", { host, namespace: "rt", ipv4: true });
    const nat = await make("NatRule", "rt-nat", { host, namespace: "rt", kind: "masquerade", source: "10.70.0.0/24", outInterface: "up0" });
    const route = await make("Route", "rt-route", { host, namespace: "rt", destination: "10.80.0.0/24", gateway: "10.60.0.2" });
    expect((await lab.onHost(h1, "ip", ["netns", "exec", "rt", "sysctl", "-n", "net.ipv4.ip_forward"])).trim()).toBe("1");
    expect(await lab.onHost(h1, "find", ["/run/nslab", "-name", "forwarding-ipv4.json"])).toMatch(/forwarding-ipv4\.json/);
    expect(await lab.onHost(h1, "ip", ["netns", "exec", "rt", "nft", "list", "table", "inet", "nslab"])).toMatch(/masquerade/);
    expect(await lab.onHost(h1, "ip", ["-n", "rt", "route", "show", "10.80.0.0/24"])).toMatch(/via 10\.60\.0\.2 .*proto 151/);
    // The identical route once more (a route has no per-owner mark): another resource's
    // create is refused naming the owner; this resource's own (a lost state) takes it over.
    const again = (owner: string) =>
      dispatch("Route", "check", [undefined, { __owner: owner, host, namespace: "rt", destination: "10.80.0.0/24", gateway: "10.60.0.2" }]).then((c) => dispatch("Route", "create", [(c as { inputs: unknown }).inputs]));
    await expect(again("test/other@0000abcd/Route/rt-route")).rejects.toThrow(/already exists \(made by nslab Route "rt-route" of stack test\/remote\)/);
    expect(((await again("test/remote/Route/rt-route")) as { id: string }).id).toBe(route.id);
    // Nothing of it here.
    expect((await must("sysctl", ["-n", "net.ipv4.ip_forward"])).trim()).toBe("0");
    for (const [kind, r] of [["Route", route], ["NatRule", nat], ["IpForwarding", fwd], ["VethPair", link], ["Namespace", ns]] as const) await dispatch(kind, "delete", [r.id, r.outs]);
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).toBe("");
    expect(await lab.onHost(h1, "find", ["/run/nslab", "-type", "f"])).toBe("");
  });

  it("a pair made anew on the host announces its end's addresses there (each `ip` its own process over SSH): a neighbour that knew them as a removed host's gets the new MAC, IPv4 and IPv6", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const made: { kind: string; id: string; outs: Record<string, any> }[] = [];
    const add = async (kind: string, name: string, args: Record<string, unknown>) => {
      const r = await make(kind, name, args);
      made.push({ kind, ...r });
      return r;
    };
    for (const n of ["an-sw", "an-h1", "an-old", "an-new"]) await add("Namespace", n, { name: n, host });
    await add("Bridge", "an-br", { host, name: "sw0", namespace: "an-sw" });
    const pair = (ns: string, addresses: string[], port: string) => ({ host, a: { name: "e0", namespace: ns, addresses }, b: { name: port, namespace: "an-sw", master: "sw0" } });
    await add("VethPair", "an-p1", pair("an-h1", ["10.64.0.2/24", "fd64::2/64"], "p1"));
    const old = await make("VethPair", "an-p2", pair("an-old", ["10.64.0.3/24", "fd64::3/64"], "p2"));
    const on = (...args: string[]) => lab.onHost(h1, "ip", args);
    const ping = (to: string) => on("netns", "exec", "an-h1", "ping", "-c", "1", "-W", "2", to).then(() => true, () => false);
    expect([await ping("10.64.0.3"), await ping("fd64::3")]).toEqual([true, true]);
    const macOf = async (ns: string) => JSON.parse(await on("-n", ns, "-j", "link", "show", "e0"))[0].address as string;
    const oldMac = await macOf("an-old");
    await dispatch("VethPair", "delete", [old.id, old.outs]);
    expect(await on("-n", "an-h1", "neigh", "show", "10.64.0.3", "dev", "e0")).toContain(`lladdr ${oldMac}`);
    expect(await on("-n", "an-h1", "-6", "neigh", "show", "fd64::3", "dev", "e0")).toContain(`lladdr ${oldMac}`);

    await add("VethPair", "an-p3", pair("an-new", ["10.64.0.3/24", "fd64::3/64"], "p3"));
    const mac = await macOf("an-new");
    expect(mac).not.toBe(oldMac);
    expect(await on("-n", "an-h1", "neigh", "show", "10.64.0.3", "dev", "e0")).toContain(`lladdr ${mac}`);
    expect(await on("-n", "an-h1", "-6", "neigh", "show", "fd64::3", "dev", "e0")).toContain(`lladdr ${mac}`);
    expect([await ping("10.64.0.3"), await ping("fd64::3")]).toEqual([true, true]);
    // The announcement leaves no entry for the host's own address behind.
    expect(await on("-n", "an-new", "neigh", "show", "10.64.0.3")).toBe("");
    for (const m of [...made].reverse()) await dispatch(m.kind, "delete", [m.id, m.outs]);
    expect(await on("netns", "list")).toBe("");
  });

  it("makes and deletes a namespace on a host in few round trips", async () => {
    const [h1] = lab.hosts;
    const before = remoteRequests();
    const made = await make("Namespace", "trips", { name: "trips", host: h1.host });
    const create = remoteRequests() - before;
    const read = (await dispatch("Namespace", "read", [made.id, made.outs])) as { props?: unknown };
    expect(read.props).toBeDefined();
    const reads = remoteRequests() - before - create;
    // A bridge in it: its intent record and ip link add go together.
    const bridgeAt = remoteRequests();
    const br = await make("Bridge", "trips-br", { name: "tbr0", namespace: "trips", host: h1.host });
    const bridge = remoteRequests() - bridgeAt;
    expect(await lab.onHost(h1, "ip", ["-n", "trips", "-o", "link", "show", "tbr0"])).toMatch(/alias nslab:/);
    await dispatch("Bridge", "delete", [br.id, br.outs]);
    const deleteAt = remoteRequests();
    await dispatch("Namespace", "delete", [made.id, made.outs]);
    const del = remoteRequests() - deleteAt;
    console.log(`remote Namespace: create ${create} requests, read ${reads}, delete ${del}; Bridge create ${bridge}`);
    // create: /run/netns/NAME and its intent record looked at; the intent written and
    // ip netns add; lo marked and read back and the intent removed: 3 requests, each one
    // round trip (it was 8). read and delete: /run/netns/NAME and lo's mark in one look;
    // delete then removes its records and runs ip netns delete in one more (it was 5,
    // then 4).
    expect(create).toBe(3);
    expect(reads).toBe(1);
    expect(del).toBe(2);
    // Bridge: the namespace looked at; the intent record looked at; the intent written
    // and ip link add (they were two requests); the alias set and the bridge read back;
    // the intent removed.
    expect(bridge).toBe(5);
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).not.toMatch(/trips/);
  });

  it("keeps the object when the program spells its host another way (root@H to H): the engine's replacement creates first, and the old resource's delete leaves what the new one took over; moved to another machine, it goes from the first", async () => {
    const [h1, h2] = lab.hosts;
    const owner = "test/remote/Namespace/spelled";
    const old = await make("Namespace", "spelled", { name: "spelled", host: h1.host });
    try {
      const respelled = { ...h1.host, ssh: h1.address };
      const diff = (await dispatch("Namespace", "diff", [old.id, old.outs, { ...old.outs, host: respelled }])) as { replaces: string[] };
      expect(diff.replaces).toEqual(["host"]);
      const checked = (await dispatch("Namespace", "check", [old.outs, { __owner: owner, name: "spelled", host: respelled }])) as { inputs: Record<string, unknown>; failures: unknown[] };
      expect(checked.failures).toEqual([]);
      const made = (await dispatch("Namespace", "create", [checked.inputs])) as { id: string; outs: Record<string, unknown> };
      await dispatch("Namespace", "delete", [old.id, old.outs]);
      expect((await lab.onHost(h1, "ip", ["netns", "list"])).split("\n").map((l) => l.split(" ")[0])).toContain("spelled");
      // Moved to another machine (another sshd, in a namespace of its own on this kernel):
      // made there, and the old resource's delete removes it from the first.
      const moved = (await dispatch("Namespace", "create", [{ ...checked.inputs, host: h2.host }])) as { id: string; outs: Record<string, unknown> };
      await dispatch("Namespace", "delete", [made.id, made.outs]);
      expect(await lab.onHost(h1, "ip", ["netns", "list"])).not.toMatch(/spelled/);
      expect(await lab.onHost(h2, "ip", ["netns", "list"])).toMatch(/spelled/);
      await dispatch("Namespace", "delete", [moved.id, moved.outs]);
      expect(await lab.onHost(h2, "ip", ["netns", "list"])).not.toMatch(/spelled/);
    } finally {
      for (const h of [h1, h2]) await lab.onHost(h, "ip", ["netns", "del", "spelled"]).catch(() => undefined);
    }
  });

  it("refuses a namespace made by hand on the host, naming the host; adopt takes it over, and delete leaves it to nobody else", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    await lab.onHost(h1, "ip", ["netns", "add", "byhand"]);
    try {
      const refused = (await dispatch("Namespace", "create", [{ name: "byhand", adopt: false, __owner: "test/remote/Namespace/byhand", host }]).catch((e: Error) => e)) as NslabError;
      expect(refused).toBeInstanceOf(NslabError);
      expect(refused.message).toMatch(/^namespace "byhand" on root@192\.0\.2\.1 already exists\. .*set adopt: true/);
      const adopted = await make("Namespace", "byhand", { name: "byhand", adopt: true, host });
      expect(JSON.parse(await lab.onHost(h1, "ip", ["-n", "byhand", "-j", "link", "show", "lo"]))[0].ifalias).toBe(ownerTag("test/remote/Namespace/byhand"));
      const read = (await dispatch("Namespace", "read", [adopted.id, adopted.outs])) as { props?: Record<string, unknown> };
      expect(read.props).toMatchObject({ name: "byhand", adopt: true, host });
      await dispatch("Namespace", "delete", [adopted.id, adopted.outs]);
      expect(await lab.onHost(h1, "ip", ["netns", "list"])).not.toMatch(/byhand/);
      // Idempotent: deleting again is nothing to do.
      await dispatch("Namespace", "delete", [adopted.id, adopted.outs]);
    } finally {
      await lab.onHost(h1, "ip", ["netns", "del", "byhand"]).catch(() => undefined);
    }
  });

  it("sends an exchange's commands as one request: outputs apart, stops at the first failure, which is named", async () => {
    const [h1] = lab.hosts;
    const never = `/tmp/${tag}-never-${process.pid}`;
    const r = await remoteSequence(h1.host, [["echo", "one"], ["printf", "two\nlines"], ["sh", "-c", "echo partial; echo why >&2; exit 3"], ["touch", never]], { timeoutMs: 10_000, subject: "test" });
    expect(r.outputs).toEqual(["one\n", "two\nlines"]);
    expect(r.failure).toMatchObject({ index: 2, exitCode: 3, timedOut: false });
    expect(r.failure!.stderr).toBe("why\n");
    expect(fs.existsSync(never)).toBe(false);
    expect(await remoteSequence(h1.host, [["true"], ["echo", "x"]], { timeoutMs: 10_000, subject: "test" })).toEqual({ outputs: ["", "x\n"] });
    // Through the kernel door: the failed ip command is the one the error names.
    await withHost(h1.host, () => ip(["netns", "add", "seq"], undefined, "test"));
    try {
      const failed = (await withHost(h1.host, () => ipBatchRead([["link", "set", "dev", "lo", "up"], ["link", "set", "dev", "nosuch0", "up"], ["link", "show", "dev", "lo"]], "seq", 'namespace "seq"')).catch((e: Error) => e)) as NslabError;
      expect(failed).toBeInstanceOf(NslabError);
      expect(failed.message).toMatch(/^namespace "seq": .*Cannot find device "nosuch0"/);
      expect(failed.details).toMatchObject({ command: "ip -n seq link set dev nosuch0 up", exitCode: 1 });
      // The first command ran, the one after the failure did not matter: lo is up.
      expect(await lab.onHost(h1, "ip", ["-n", "seq", "-o", "link", "show", "lo"])).toMatch(/<LOOPBACK,UP/);
    } finally {
      await lab.onHost(h1, "ip", ["netns", "del", "seq"]);
    }
  });

  it("times a request from when its shell starts it; a request behind one that hangs moves to another shell", async () => {
    const [h1] = lab.hosts;
    const run = (argv: string[], timeoutMs: number) => remoteRun(h1.host, argv, { timeoutMs, subject: "test" });
    // The first request opens the first shell and hangs there past its own timeout; the
    // next seven fill the other shells for 2 s; the ninth waits in a shell's queue
    // longer than its own 1.5 s timeout, which counts only once it runs.
    const hung = run(["sleep", "4"], 1_000);
    const busy = Array.from({ length: 7 }, () => run(["sh", "-c", "sleep 2; echo slow"], 10_000));
    await new Promise((r) => setTimeout(r, 200));
    const queued = run(["echo", "queued"], 1_500);
    expect(await hung).toMatchObject({ timedOut: true });
    expect(await queued).toMatchObject({ exitCode: 0, stdout: "queued\n", timedOut: false });
    for (const r of await Promise.all(busy)) expect(r).toMatchObject({ exitCode: 0, stdout: "slow\n", timedOut: false });
  });

  it("finds a killed create's unmarked namespace by its intent record on the host, and removes only that", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const owner = "test/remote@0000abcd/Namespace/half";
    // A create killed between `ip netns add` and the mark: the intent record (kept on
    // the host, next to the namespace) and an unmarked namespace. Beside it, a
    // namespace made by hand with no record: not nslab's, never touched.
    await withHost(host, () => intend(undefined, "netns-half", ownerTag(owner), "test", owner));
    await lab.onHost(h1, "ip", ["netns", "add", "half"]);
    await lab.onHost(h1, "ip", ["netns", "add", "theirs"]);
    // Looked at from here, nothing: the record and the namespace are over there.
    expect((await unmarked()).filter((o) => o.owner === owner)).toEqual([]);
    const found = (await withHost(host, () => unmarked())).filter((o) => o.owner === owner);
    expect(found).toEqual([{ stack: "test/remote@0000abcd", owner, type: "netns", name: "half", namespace: undefined, host }]);
    await removeUnmarked(found[0]);
    expect((await lab.onHost(h1, "ip", ["netns", "list"])).split("\n").map((l) => l.split(" ")[0]).filter(Boolean)).toEqual(["theirs"]);
    expect(await lab.onHost(h1, "find", ["/run/nslab", "-name", "intent-*"])).toBe("");
    expect((await withHost(host, () => unmarked())).filter((o) => o.owner === owner)).toEqual([]);
    await lab.onHost(h1, "ip", ["netns", "del", "theirs"]);
  });

  it.skipIf(!tunUsable)("makes a TapDevice on the host, reading owner and group names with the host's own name service; drift, a foreign device and adopt work there; delete leaves nothing", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    // The host knows a user and a group this machine does not: ip prints their names
    // there, and only the host's getent maps them back to the ids.
    const passwd = path.join(lab.dir, "passwd");
    const group = path.join(lab.dir, "group");
    fs.writeFileSync(passwd, `${fs.readFileSync("/etc/passwd", "utf8")}labuser:x:4242:4242::/nonexistent:/usr/sbin/nologin\n`);
    fs.writeFileSync(group, `${fs.readFileSync("/etc/group", "utf8")}labgrp:x:4343:\n`);
    await lab.onHost(h1, "mount", ["--bind", passwd, "/etc/passwd"]);
    await lab.onHost(h1, "mount", ["--bind", group, "/etc/group"]);
    try {
      expect(fs.readFileSync("/etc/passwd", "utf8")).not.toMatch(/^labuser:/m);
      const ns = await make("Namespace", "tp", { name: "tp", host });
      const tap = await make("TapDevice", "tp0", { host, name: "tp0", namespace: "tp", owner: 4242, group: 4343, addresses: ["10.90.0.1/24"] });
      expect(tap.outs).toMatchObject({ name: "tp0", namespace: "tp", mode: "tap", owner: 4242, group: 4343, host });
      const live = JSON.parse(await lab.onHost(h1, "ip", ["-n", "tp", "-j", "-d", "link", "show", "tp0"]))[0];
      expect(live).toMatchObject({ linkinfo: { info_kind: "tun", info_data: { type: "tap", user: "labuser", group: "labgrp" } } });
      expect(live.ifalias).toMatch(/^nslab:[0-9a-f]{16}$/);
      expect((await must("ip", ["netns", "list"])).split("\n").map((l) => l.split(" ")[0])).not.toContain("tp");

      // A refresh reads it there: the ids, not this machine's idea of the names.
      resetSnapshots();
      const read = (await dispatch("TapDevice", "read", [tap.id, tap.outs])) as { props?: Record<string, unknown>; inputs?: Record<string, unknown> };
      expect(read.inputs).toMatchObject({ owner: 4242, group: 4343, addresses: ["10.90.0.1/24"], host });
      // Drift by hand over there is seen.
      await lab.onHost(h1, "ip", ["-n", "tp", "addr", "del", "10.90.0.1/24", "dev", "tp0"]);
      resetSnapshots();
      expect(((await dispatch("TapDevice", "read", [tap.id, tap.outs])) as { props?: Record<string, unknown> }).props).toMatchObject({ addresses: [] });

      // Someone's own tap on the host: refused (naming the host), untouched; adopt takes a matching one.
      await lab.onHost(h1, "ip", ["-n", "tp", "tuntap", "add", "dev", "theirs", "mode", "tap"]);
      const refused = await make("TapDevice", "theirs", { host, name: "theirs", namespace: "tp" }).catch((e: NslabError) => e);
      expect(String(refused)).toMatch(/tap "theirs" in namespace "tp" on root@192\.0\.2\.1 already exists.*adopt: true/);
      expect(JSON.parse(await lab.onHost(h1, "ip", ["-n", "tp", "-j", "-d", "link", "show", "theirs"]))[0].ifalias).toBeUndefined();
      const adopted = await make("TapDevice", "theirs", { host, name: "theirs", namespace: "tp", adopt: true });
      expect(JSON.parse(await lab.onHost(h1, "ip", ["-n", "tp", "-j", "-d", "link", "show", "theirs"]))[0].ifalias).toMatch(/^nslab:/);

      for (const [kind, r] of [["TapDevice", adopted], ["TapDevice", tap], ["TapDevice", tap], ["Namespace", ns]] as const) await dispatch(kind, "delete", [r.id, r.outs]);
      expect(await lab.onHost(h1, "ip", ["netns", "list"])).toBe("");
      expect(await lab.onHost(h1, "find", ["/run/nslab", "-type", "f"])).toBe("");
    } finally {
      await lab.onHost(h1, "umount", ["/etc/group"]);
      await lab.onHost(h1, "umount", ["/etc/passwd"]);
    }
  });

  it("makes a LinkImpairment on the host (tbf, ifb, nft loss table there, nothing here); drift is seen; a foreign qdisc is refused and kept; delete leaves nothing", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const ns = await make("Namespace", "im", { name: "im", host });
    const link = await make("VethPair", "im-link", { host, a: { name: "im0", namespace: "im", addresses: ["10.91.0.1/24"] }, b: { name: "im-peer", addresses: ["10.91.0.2/24"] } });
    const imp = await make("LinkImpairment", "im0", { host, device: "im0", namespace: "im", egress: { rate: "10mbit", loss: 0.01 }, ingress: { rate: "2mbit" } });
    expect(imp.outs).toMatchObject({ host, ifb: expect.stringMatching(/^ifb[0-9a-f]{12}$/), lossTable: expect.stringMatching(/^nslab_imp_/) });
    const onH1 = (...args: string[]) => lab.onHost(h1, "ip", ["netns", "exec", "im", ...args]);
    expect(JSON.parse(await onH1("tc", "-j", "qdisc", "show", "dev", "im0"))).toContainEqual(expect.objectContaining({ kind: "tbf", root: true }));
    expect(JSON.parse(await onH1("tc", "-j", "qdisc", "show", "dev", imp.outs.ifb))).toContainEqual(expect.objectContaining({ kind: "tbf", root: true }));
    expect(await onH1("nft", "list", "tables")).toContain(`table netdev ${imp.outs.lossTable}`);
    // Nothing of it on this machine.
    expect(await must("nft", ["list", "tables"])).not.toContain(imp.outs.lossTable);
    expect(await must("ip", ["-o", "link", "show"])).not.toContain(imp.outs.ifb);

    resetSnapshots();
    const read = (await dispatch("LinkImpairment", "read", [imp.id, imp.outs])) as { inputs?: Record<string, any> };
    expect(read.inputs).toMatchObject({ egress: { rate: "10mbit", burst: "32kb", loss: 0.01 }, ingress: { rate: "2mbit", burst: "32kb" }, host });
    // Drift by hand over there: the egress qdisc is gone.
    await onH1("tc", "qdisc", "del", "dev", "im0", "root");
    resetSnapshots();
    const drifted = (await dispatch("LinkImpairment", "read", [imp.id, imp.outs])) as { inputs?: Record<string, any> };
    expect(drifted.inputs?.egress).toEqual({ loss: 0.01 });

    // Someone's root qdisc on the peer (the host's own namespace): another resource's create is refused there and it stays.
    await lab.onHost(h1, "tc", ["qdisc", "add", "dev", "im-peer", "root", "handle", "1:", "tbf", "rate", "1mbit", "burst", "32kb", "latency", "100ms"]);
    const refused = await make("LinkImpairment", "peer", { host, device: "im-peer", egress: { rate: "5mbit" } }).catch((e: NslabError) => e);
    expect(String(refused)).toMatch(/impairment of interface "im-peer" in the program's namespace on root@192\.0\.2\.1: the interface already has a root qdisc this resource did not make \(tbf 1:/);
    expect(JSON.parse(await lab.onHost(h1, "tc", ["-j", "qdisc", "show", "dev", "im-peer"]))).toContainEqual(expect.objectContaining({ kind: "tbf", handle: "1:", root: true }));

    for (const [kind, r] of [["LinkImpairment", imp], ["LinkImpairment", imp], ["VethPair", link], ["Namespace", ns]] as const) await dispatch(kind, "delete", [r.id, r.outs]);
    expect(await lab.onHost(h1, "nft", ["list", "tables"])).toBe("");
    expect(await lab.onHost(h1, "ip", ["-o", "link", "show"])).not.toMatch(/ifb[0-9a-f]{12}|im-peer/);
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).toBe("");
    expect(await lab.onHost(h1, "find", ["/run/nslab", "-type", "f"])).toBe("");
  });

  it("probes Reachability (icmp, tcp) on the host: pings and connects from there, a broken path is reported as drift, an unmet expectation names the host", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const ns = await make("Namespace", "rp", { name: "rp", host });
    const link = await make("VethPair", "rp-link", { host, a: { name: "rp0", namespace: "rp", addresses: ["10.92.0.1/24"] }, b: { name: "rp-peer", addresses: ["10.92.0.2/24"] } });
    // 10.92.0.2 exists only on the host, and "rp" only there: the probe ran there.
    const probe = await make("Reachability", "rp-peer", { host, from: "rp", to: "10.92.0.2" });
    expect(probe.outs).toMatchObject({ reachable: true, expect: "reachable", protocol: "icmp", host });
    const fromHost = await make("Reachability", "host-rp", { host, to: "10.92.0.1" });
    expect(fromHost.outs).toMatchObject({ reachable: true });

    // tcp there, without node: the host's sshd (192.0.2.1:22, reached from "rp" through the
    // host's own namespace), a closed port, and a silent address.
    await lab.onHost(h1, "ip", ["-n", "rp", "route", "add", "default", "via", "10.92.0.2"]);
    const ssh = await make("Reachability", "rp-ssh", { host, from: "rp", to: h1.address, protocol: "tcp", port: 22 });
    expect(ssh.outs).toMatchObject({ reachable: true, protocol: "tcp", port: 22, host });
    const closed = await make("Reachability", "rp-closed", { host, from: "rp", to: "10.92.0.2", protocol: "tcp", port: 23, expect: "unreachable" });
    expect(closed.outs).toMatchObject({ reachable: false });
    const tcpUnmet = await make("Reachability", "rp-closed-2", { host, from: "rp", to: "10.92.0.2", protocol: "tcp", port: 23 }).catch((e: NslabError) => e);
    expect(String(tcpUnmet)).toMatch(/from namespace "rp" on root@192\.0\.2\.1, tcp port 23 on 10\.92\.0\.2: expected reachable, but it did not answer: connection refused/);
    // A slow ~/.bashrc there (a pyenv init): bash run under sshd reads it even for -c,
    // unless --norc; a 2 s probe then timed out. A home folder of its own for root on the
    // host (a tmpfs in the host's private mount namespace; its authorized keys are in the
    // test folder) holds one for this probe alone. A new SSH master reads it: the probe's
    // own bash is what is timed.
    await lab.onHost(h1, "sh", ["-c", 'mount -t tmpfs nslab-test-home /root && echo "sleep 3" > /root/.bashrc']);
    try {
      const quick = await make("Reachability", "rp-ssh-rc", { host, from: "rp", to: h1.address, protocol: "tcp", port: 22, timeoutMs: 2000 });
      expect(quick.outs).toMatchObject({ reachable: true });
      await dispatch("Reachability", "delete", [quick.id, quick.outs]);
    } finally {
      await lab.onHost(h1, "umount", ["/root"]);
    }
    const silent = await make("Reachability", "rp-silent", { host, from: "rp", to: "10.92.0.9", protocol: "tcp", port: 22, timeoutMs: 300 }).catch((e: NslabError) => e);
    expect(String(silent)).toMatch(/tcp port 22 on 10\.92\.0\.9: expected reachable, but it did not answer: timed out after 300 ms/);
    // "rp" is only on the host: the probes ran there.
    expect(await must("ip", ["netns", "list"])).not.toMatch(/^rp\b/m);

    const unmet = await make("Reachability", "rp-nowhere", { host, from: "rp", to: "10.92.0.9", timeoutMs: 300 }).catch((e: NslabError) => e);
    expect(String(unmet)).toMatch(/Reachability "rp-nowhere": from namespace "rp" on root@192\.0\.2\.1, icmp \(ping\) to 10\.92\.0\.9: expected reachable, but it did not answer/);

    // Drift: the path breaks by hand over there; a refresh reports what it saw.
    await lab.onHost(h1, "ip", ["link", "set", "rp-peer", "down"]);
    const read = (await dispatch("Reachability", "read", [probe.id, probe.outs])) as { inputs?: Record<string, unknown> };
    expect(read.inputs).toMatchObject({ expect: "unreachable", host });
    // The namespace gone on the host: so is the proof.
    const sshRead = (await dispatch("Reachability", "read", [ssh.id, ssh.outs])) as { inputs?: Record<string, unknown> };
    expect(sshRead.inputs).toMatchObject({ expect: "unreachable", protocol: "tcp" });
    for (const [kind, r] of [["Reachability", probe], ["Reachability", fromHost], ["Reachability", ssh], ["Reachability", closed], ["VethPair", link], ["Namespace", ns]] as const) await dispatch(kind, "delete", [r.id, r.outs]);
    expect(((await dispatch("Reachability", "read", [probe.id, probe.outs])) as { id?: string }).id).toBeUndefined();
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).toBe("");
  });

  it("an identityFile that does not exist, or a key the host does not know, fails naming the file and the fix", async () => {
    const [h1] = lab.hosts;
    const attempt = async (identityFile: string) =>
      String(await dispatch("Namespace", "create", [{ __owner: `test/remote/Namespace/key-${tag}`, name: "keyless", host: { ...h1.host, identityFile } }]).catch((e: Error) => e));
    const missing = `/nonexistent-${tag}/id`;
    const said = await attempt(missing);
    expect(said).toContain(`cannot reach root@${h1.address} over SSH: `);
    expect(said).toContain(`identityFile ${missing} cannot be read on this machine (the one that runs the engine: no such file): give the path of the private key there.`);
    const stranger = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "nslab-key-")), "id");
    await must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
    // A Process's log read on a host that cannot be reached names the Process, not the file.
    const nowhere: HostArgs = { ...h1.host, ssh: "root@127.0.0.1", port: 1 };
    await expect(withHost(nowhere, () => readFileFrom("/tmp/nslab-process-x.log", 0, 'Process "p" on root@127.0.0.1:1'))).rejects.toThrow(/^Process "p" on root@127\.0\.0\.1:1: cannot reach root@127\.0\.0\.1:1 over SSH/);
    const refused = await attempt(stranger);
    expect(refused).toContain(`The key ${stranger} was refused: add its public half to the user's authorized_keys on root@${h1.address}.`);
    expect(refused).toContain("uses the key the stack's state recorded: if the program now names another one, authorise this one again until a plain pulumi up has recorded the new one");
    // The host's own key, readable by others: ssh will not use it.
    const open = path.join(path.dirname(stranger), "open");
    fs.copyFileSync(h1.host.identityFile!, open);
    fs.chmodSync(open, 0o644);
    expect(await attempt(open)).toContain(`identityFile ${open} is open to group or others (mode 0644), and ssh will not use its own private key like that: chmod 600 it.`);
    fs.rmSync(path.dirname(stranger), { recursive: true, force: true });
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).not.toContain("keyless");
  });

  it("runs a Process on the host, in a namespace only the host has: read sees it, a kill by hand is drift, delete is idempotent and never signals another start time", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const ns = await make("Namespace", "pr", { name: "pr", host });
    const proc = await make("Process", "sleeper", { host, namespace: "pr", command: ["sleep", "300"] });
    const { pid, startTime, log } = proc.outs;
    expect(proc.outs).toMatchObject({ command: ["sleep", "300"], namespace: "pr", host });
    // The default log is in the host's /tmp, and the default cwd there is "/".
    expect(log).toMatch(/^\/tmp\/nslab-process-[0-9a-f]{16}\.log$/);
    expect(proc.id).toBe(`pr/${pid}`);
    try {
      // The host shares this machine's pids (test/helpers/sshd.ts): the sleep runs in the
      // host's "pr" (which this machine has not), in "/", in a session of its own.
      const prInode = (await lab.onHost(h1, "stat", ["-L", "-c", "%i", "/run/netns/pr"])).trim();
      expect(fs.statSync(`/proc/${pid}/ns/net`).ino).toBe(Number(prInode));
      expect(fs.readlinkSync(`/proc/${pid}/cwd`)).toBe("/");
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toEqual(["sleep", "300", ""]);
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      expect(fields[19]).toBe(startTime);
      expect(Number(fields[3])).toBe(pid); // its own session (setsid)
      expect((await must("ip", ["netns", "list"])).split("\n").map((l) => l.split(" ")[0])).not.toContain("pr");

      // It outlives the provider's connection to the host; read looks there.
      closeMasters();
      const read = (await dispatch("Process", "read", [proc.id, proc.outs])) as { id?: string; props?: Record<string, unknown>; inputs?: Record<string, unknown> };
      expect(read.props).toMatchObject({ pid, startTime, log, host });
      expect(read.inputs).toMatchObject({ command: ["sleep", "300"], namespace: "pr", host });

      // The same host reached with another known-hosts file (a copy): diff says update,
      // not replace, and the update leaves the running program as it is.
      const copy = path.join(lab.dir, `known-${tag}`);
      fs.copyFileSync(host.knownHostsFile!, copy);
      const moved = (await dispatch("Process", "check", [proc.outs, { __owner: "test/remote/Process/sleeper", host: { ...host, knownHostsFile: copy }, namespace: "pr", command: ["sleep", "300"] }])) as { inputs: Record<string, unknown> };
      expect(await dispatch("Process", "diff", [proc.id, proc.outs, moved.inputs])).toMatchObject({ changes: true, replaces: [] });
      const updated = (await dispatch("Process", "update", [proc.id, proc.outs, moved.inputs])) as { outs: Record<string, any> };
      expect(updated.outs).toMatchObject({ pid, startTime, log, host: { ...host, knownHostsFile: copy } });
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toEqual(["sleep", "300", ""]);

      // Recorded with another start time (a reused pid): read says gone, delete leaves it alone.
      const other = { ...proc.outs, startTime: String(Number(startTime) - 1) };
      expect(await dispatch("Process", "read", [proc.id, other])).toEqual({});
      await dispatch("Process", "delete", [proc.id, other]);
      expect(fs.existsSync(`/proc/${pid}`)).toBe(true);

      // Killed by hand: read says gone (drift), delete is a no-op, twice.
      process.kill(pid, "SIGKILL");
      await gone(pid);
      expect(await dispatch("Process", "read", [proc.id, proc.outs])).toEqual({});
      await dispatch("Process", "delete", [proc.id, proc.outs]);
      await dispatch("Process", "delete", [proc.id, proc.outs]);

      // A shell's background program goes with it: its process group, found on the host.
      const shell = await make("Process", "shell", { host, namespace: "pr", command: ["bash", "-c", "sleep 300.5 & echo ok; wait"], readyText: "ok" });
      // Forked before the echo, the sleep may not have exec'd yet when "ok" is seen (its
      // cmdline is still bash's): looked for until it has, up to 2 s.
      const findChild = () =>
        fs
          .readdirSync("/proc")
          .filter((d) => /^\d+$/.test(d))
          .find((d) => {
            try {
              return fs.readFileSync(`/proc/${d}/cmdline`, "utf8") === "sleep\u0000300.5\u0000";
            } catch {
              return false;
            }
          });
      let child = findChild();
      for (let waited = 0; child === undefined && waited < 2000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        child = findChild();
      }
      expect(child).toBeDefined();
      await dispatch("Process", "delete", [shell.id, shell.outs]);
      expect(await gone(Number(child))).toBe(true);
      expect(await gone(shell.outs.pid)).toBe(true);
      fs.rmSync(shell.outs.log, { force: true });
    } finally {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone, as it should be
      }
      await dispatch("Namespace", "delete", [ns.id, ns.outs]);
      fs.rmSync(log, { force: true });
    }
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).toBe("");
  });

  it("marks a remote Process with its owner: found by that mark on the host, and a second create of the same resource (a recovery after a killed run) stops the first", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const ns = await make("Namespace", "pm", { name: "pm", host });
    const name = `marked-${tag}`; // this run's own owner: a create stops every program of its owner on the host
    const owner = `test/remote/Process/${name}`;
    const first = await make("Process", name, { host, namespace: "pm", command: ["sleep", "300"] });
    const other = await make("Process", `other-${tag}`, { host, namespace: "pm", command: ["sleep", "300"] });
    let again: { id: string; outs: Record<string, any> } | undefined;
    try {
      expect(fs.readFileSync(`/proc/${first.outs.pid}/environ`, "utf8").split("\0")).toContain(`NSLAB_OWNER=${owner}`);
      expect((await withHost(host, () => markedProcesses())).filter((p) => p.owner === owner)).toEqual([{ pid: first.outs.pid, startTime: first.outs.startTime, owner, stopTimeoutMs: 5000 }]);
      again = await make("Process", name, { host, namespace: "pm", command: ["sleep", "300"] });
      expect(await gone(first.outs.pid)).toBe(true);
      expect(alive(other.outs.pid)).toBe(true);
      expect((await withHost(host, () => markedProcesses())).filter((p) => p.owner === owner).map((p) => p.pid)).toEqual([again.outs.pid]);
      await dispatch("Process", "delete", [again.id, again.outs]);
      expect((await withHost(host, () => markedProcesses())).filter((p) => p.owner === owner)).toEqual([]);

      // A value that holds a newline names no other process: the pid comes from the file.
      const forged = `x\n/proc/1/environ:NSLAB_OWNER=${owner}`;
      const liar = Number((await lab.onHost(h1, "sh", ["-c", 'NSLAB_OWNER="$1" setsid sleep 60 >/dev/null 2>&1 & echo $!', "sh", forged])).trim());
      try {
        const seen = await withHost(host, () => markedProcesses());
        expect(seen.filter((p) => p.owner === owner)).toEqual([]);
        expect(seen.find((p) => p.pid === liar)?.owner).toBe(forged);
        expect(seen.some((p) => p.pid === 1)).toBe(false);
      } finally {
        process.kill(liar, "SIGKILL");
      }
    } finally {
      if (again) await dispatch("Process", "delete", [again.id, again.outs]);
      await dispatch("Process", "delete", [first.id, first.outs]);
      await dispatch("Process", "delete", [other.id, other.outs]);
      await dispatch("Namespace", "delete", [ns.id, ns.outs]);
      // Their default logs, in the host's /tmp (which is this machine's).
      for (const log of [first.outs.log, other.outs.log]) fs.rmSync(log, { force: true });
    }
  });

  it("waits for a remote Process's readyText in its log on the host, stops it with delete, and fails a program that exits at once with its remote log's tail; a relative cwd with host is refused at check", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const ns = await make("Namespace", "pw", { name: "pw", host });
    const logFile = `/tmp/${tag}-ready.log`;
    // Prints its readiness late, after some noise: create must wait for it.
    const script = "echo starting; sleep 0.3; echo \"ready on $(readlink /proc/self/ns/net)\"; exec sleep 300";
    try {
      const started = Date.now();
      const proc = await make("Process", "ready", { host, namespace: "pw", command: ["sh", "-c", script], readyText: "ready on", logFile, cwd: "/tmp" });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      const pwInode = (await lab.onHost(h1, "stat", ["-L", "-c", "%i", "/run/netns/pw"])).trim();
      expect(fs.readFileSync(logFile, "utf8")).toContain(`ready on net:[${pwInode}]`);
      expect(fs.readlinkSync(`/proc/${proc.outs.pid}/cwd`)).toBe("/tmp");
      // delete: SIGTERM to that process, waited for.
      await dispatch("Process", "delete", [proc.id, proc.outs]);
      expect(alive(proc.outs.pid)).toBe(false);

      // A program that exits at once: create fails with the tail of its log there (this run's lines only).
      const failed = (await make("Process", "boom", { host, namespace: "pw", command: ["sh", "-c", "echo boom-$$ >&2; exit 3"], logFile }).catch((e: Error) => e)) as NslabError;
      expect(failed).toBeInstanceOf(NslabError);
      expect(failed.message).toMatch(new RegExp(`^Process "boom" \\(sh -c .*\\) in namespace "pw" on root@192\\.0\\.2\\.1: exited within 300 ms of starting; its log \\(${logFile} on root@192\\.0\\.2\\.1\\) ends: boom-\\d+$`));
      // A program that is not there: nsenter's own words, from the log there.
      const missing = (await make("Process", "missing", { host, namespace: "pw", command: ["no-such-program-nslab"], logFile }).catch((e: Error) => e)) as NslabError;
      expect(missing.message).toMatch(/exited within 300 ms of starting; its log .* ends: .*no-such-program-nslab.*No such file/);
      // A cwd the host has not.
      const noCwd = (await make("Process", "nocwd", { host, namespace: "pw", command: ["sleep", "300"], cwd: `/nonexistent-${tag}` }).catch((e: Error) => e)) as NslabError;
      expect(noCwd.message).toMatch(new RegExp(`cwd "/nonexistent-${tag}" is not a folder it can enter on root@192\\.0\\.2\\.1 .*Create it there, or give another cwd`));
      // A relative cwd: refused at check, naming the property and the fix.
      const checked = (await dispatch("Process", "check", [undefined, { __owner: "test/remote/Process/rel", host, command: ["sleep", "1"], cwd: "lab" }])) as { failures: unknown[] };
      expect(checked.failures).toEqual([{ property: "cwd", reason: expect.stringMatching(/^cwd "lab" is relative, but host is set: .*absolute path on that host/) }]);
    } finally {
      await dispatch("Namespace", "delete", [ns.id, ns.outs]);
      fs.rmSync(logFile, { force: true });
    }
  });

  it("probes Reachability udp on the host without node there: a reply, a refused port, and a drop by an nft rule there", async () => {
    const [h1] = lab.hosts;
    const host = h1.host;
    const ns = await make("Namespace", "ur", { name: "ur", host });
    const link = await make("VethPair", "ur-link", { host, a: { name: "ur0", namespace: "ur", addresses: ["10.93.0.1/24"] }, b: { name: "ur-peer", addresses: ["10.93.0.2/24"] } });
    // A udp echo on the host, in its own namespace (a Process there too).
    const ECHO = `const s = require("dgram").createSocket("udp4"); s.on("message", (m, r) => s.send(m, r.port, r.address)); s.bind(7, "10.93.0.2", () => console.log("echo ready"));`;
    const logFile = `/tmp/${tag}-echo.log`;
    const echo = await make("Process", "echo", { host, command: [process.execPath, "-e", ECHO], readyText: "echo ready", logFile });
    try {
      const reply = await make("Reachability", "ur-echo", { host, from: "ur", to: "10.93.0.2", protocol: "udp", port: 7 });
      expect(reply.outs).toMatchObject({ reachable: true, protocol: "udp", port: 7, host });
      // No listener: the host's ICMP port unreachable, in the local probe's words.
      const closed = await make("Reachability", "ur-closed", { host, from: "ur", to: "10.93.0.2", protocol: "udp", port: 8, expect: "unreachable" });
      expect(closed.outs).toMatchObject({ reachable: false });
      const refused = (await make("Reachability", "ur-closed-2", { host, from: "ur", to: "10.93.0.2", protocol: "udp", port: 8 }).catch((e: Error) => e)) as NslabError;
      expect(refused.message).toMatch(/from namespace "ur" on root@192\.0\.2\.1, udp port 8 on 10\.93\.0\.2: expected reachable, but it did not answer: connection refused\./);
      // A reply's size is reported, as locally: the echo sends "nslab probe\n" back.
      expect(await withHost(host, () => probe(reply.outs as never))).toEqual({ reachable: true, detail: "a reply of 12 bytes" });

      // Dropped by a rule on the host: silence, then drift on refresh.
      await lab.onHost(h1, "nft", ["add", "table", "inet", `${tag}drop`]);
      await lab.onHost(h1, "nft", ["add", "chain", "inet", `${tag}drop`, "in", "{ type filter hook input priority 0; }"]);
      await lab.onHost(h1, "nft", ["add", "rule", "inet", `${tag}drop`, "in", "udp", "dport", "7", "drop"]);
      const dropped = (await make("Reachability", "ur-drop", { host, from: "ur", to: "10.93.0.2", protocol: "udp", port: 7, timeoutMs: 300 }).catch((e: Error) => e)) as NslabError;
      expect(dropped.message).toMatch(/udp port 7 on 10\.93\.0\.2: expected reachable, but it did not answer: no reply within 300 ms\./);
      const read = (await dispatch("Reachability", "read", [reply.id, reply.outs])) as { inputs?: Record<string, unknown>; props?: Record<string, unknown> };
      expect(read.inputs).toMatchObject({ expect: "unreachable", protocol: "udp", host });
      expect(read.props).toMatchObject({ reachable: false });
      await lab.onHost(h1, "nft", ["delete", "table", "inet", `${tag}drop`]);
      // Nothing of it here: "ur" and the echo's address are the host's.
      expect(await must("ip", ["netns", "list"])).not.toMatch(/^ur\b/m);
      for (const r of [reply, closed]) await dispatch("Reachability", "delete", [r.id, r.outs]);
    } finally {
      await dispatch("Process", "delete", [echo.id, echo.outs]);
      fs.rmSync(logFile, { force: true });
      await dispatch("VethPair", "delete", [link.id, link.outs]);
      await dispatch("Namespace", "delete", [ns.id, ns.outs]);
    }
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).toBe("");
  });

  /** The master's pid, as it says itself (ssh -O check). */
  const masterOf = (socket: string) => {
    const r = spawnSync("ssh", ["-F", "/dev/null", "-o", `ControlPath=${socket}`, "-O", "check", "x"], { encoding: "utf8", timeout: 5_000 });
    return Number(/pid=(\d+)/.exec(r.stderr)?.[1]);
  };

  /**
   * A provider process of its own (the provider's ssh.ts, as Pulumi would load it) with
   * a master to `host`, then killed with SIGKILL after `beforeKill`: its control folder,
   * watcher and master.
   */
  async function killedWithMaster(host: HostArgs, beforeKill: (master: number) => void = () => undefined) {
    const script = [
      `require(${JSON.stringify(require.resolve("ts-node"))}).register({ transpileOnly: true, compilerOptions: { module: "commonjs", moduleResolution: "node" } });`,
      `const ssh = require(${JSON.stringify(path.join(REPO, "provider/ssh.ts"))});`,
      `ssh.ensureMaster(${JSON.stringify(host)}, "test").then(() => { console.log(JSON.stringify(ssh.controlState())); setInterval(() => {}, 1000); }, (e) => { console.error(e); process.exit(1); });`,
    ].join("\n");
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const state = await new Promise<{ dir: string; watcher: number }>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d) => {
          out += d;
          const line = out.split("\n").find((l) => l.startsWith("{"));
          if (line) resolve(JSON.parse(line));
        });
        child.once("exit", (code) => reject(new Error(`the provider process exited ${code} before its master was up: ${out}`)));
      });
      const sockets = fs.readdirSync(state.dir).filter((f) => /^\d+$/.test(f));
      expect(sockets).toHaveLength(1);
      const master = masterOf(path.join(state.dir, sockets[0]));
      expect(master).toBeGreaterThan(0);
      expect(alive(master)).toBe(true);
      expect(alive(state.watcher)).toBe(true);
      beforeKill(master);
      return { ...state, master };
    } finally {
      child.kill("SIGKILL");
    }
  }

  it("ends a process's SSH master connections with it: at exit (closeMasters) and, when it is killed outright, at once through its watcher, which also removes the control folder", async () => {
    const [h1] = lab.hosts;
    // gone() waits 10 s at most (a loaded machine), which is not ControlPersist's 30 s.
    const state = await killedWithMaster(h1.host);
    // At once, not after ControlPersist's 30 s: the master, the watcher and the folder are gone.
    expect(await gone(state.master)).toBe(true);
    expect(await gone(state.watcher)).toBe(true);
    expect(fs.existsSync(state.dir)).toBe(false);
    expect(fs.existsSync(`${state.dir}.closing`)).toBe(false);

    // In this process: closeMasters (the exit handler) ends the watcher as well.
    closeMasters();
    await withHost(h1.host, () => ip(["link", "show", "lo"], undefined, "test"));
    const own = controlState()!;
    expect(alive(own.watcher!)).toBe(true);
    const ownMaster = masterOf(path.join(own.dir, fs.readdirSync(own.dir).filter((f) => /^\d+$/.test(f))[0]));
    expect(ownMaster).toBeGreaterThan(0);
    closeMasters();
    expect(await gone(ownMaster)).toBe(true);
    expect(await gone(own.watcher!)).toBe(true);
    expect(fs.existsSync(own.dir)).toBe(false);
  });

  it("a killed process's watcher removes its control folder at once even when a master does not answer: its exit request waits 2 s at most", async () => {
    const [h1] = lab.hosts;
    // The master stopped (SIGSTOP) before its provider process is killed: it cannot answer.
    let stopped: number | undefined;
    try {
      const state = await killedWithMaster(h1.host, (master) => {
        process.kill(master, "SIGSTOP");
        stopped = master;
      });
      // Within 10 s, not when (if ever) the master answers: the watcher gave up its request.
      expect(await gone(state.watcher)).toBe(true);
      expect(fs.existsSync(state.dir)).toBe(false);
      expect(fs.existsSync(`${state.dir}.closing`)).toBe(false);
      expect(alive(state.master)).toBe(true);
    } finally {
      // That master is this test's doing: end it (by its pid).
      if (stopped !== undefined) {
        process.kill(stopped, "SIGCONT");
        process.kill(stopped, "SIGTERM");
        expect(await gone(stopped)).toBe(true);
      }
    }
  });

  it("a host's shells remove their stderr file however they end: a signal (their channel gone while they write), or the end of their input", async () => {
    const [h1] = lab.hosts;
    // The host's /tmp is this machine's (test/helpers/sshd.ts): a shell's file is nslab-sh.PID.*.
    const fileOf = (pid: number) => fs.readdirSync("/tmp").filter((n) => n.startsWith(`nslab-sh.${pid}.`));
    closeMasters();
    // The master first (a request waiting for it would share a shell with the next one).
    await ensureMaster(h1.host, "test");
    // Four requests side by side, each sent while the others run: four shells on the host.
    const running: Promise<{ exitCode: number }>[] = [];
    for (let i = 0; i < 4; i++) {
      running.push(remoteRun(h1.host, ["sleep", "1"], { timeoutMs: 10_000, subject: "test" }));
      await new Promise((r) => setTimeout(r, 250));
    }
    const ran = await Promise.all(running);
    expect(ran.map((r) => r.exitCode)).toEqual([0, 0, 0, 0]);
    const net = fs.readlinkSync(`/proc/${h1.pid}/ns/net`);
    const shells = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        return argv[0] === "sh" && argv[1] === "-c" && argv[2]?.startsWith("e=$(mktemp") && argv[2].includes("nslab-sh.") && fs.readlinkSync(`/proc/${pid}/ns/net`) === net && alive(pid);
      } catch {
        return false;
      }
    });
    expect(shells.length).toBeGreaterThanOrEqual(4);
    for (const pid of shells) expect(fileOf(pid)).toHaveLength(1);
    try {
      // Each signal that ends a shell whose channel went away (or a stopped sshd's session).
      const signals: NodeJS.Signals[] = ["SIGPIPE", "SIGHUP", "SIGTERM"];
      shells.slice(0, 3).forEach((pid, i) => process.kill(pid, signals[i]));
      for (const pid of shells.slice(0, 3)) {
        expect(await gone(pid)).toBe(true);
        expect(fileOf(pid)).toEqual([]);
      }
      // The others end with their input (the master told to exit): their files go too.
      closeMasters();
      for (const pid of shells.slice(3)) {
        expect(await gone(pid)).toBe(true);
        expect(fileOf(pid)).toEqual([]);
      }
    } finally {
      closeMasters();
      // Whatever failed, no file of these shells is left in the machine's /tmp.
      for (const pid of shells) if (await gone(pid)) for (const f of fileOf(pid)) fs.rmSync(`/tmp/${f}`, { force: true });
    }
  });

  it("a command whose connection ends under it (the host's sshd session killed) fails as ssh's own failure, with the fix the next command gets", async () => {
    const [h1] = lab.hosts;
    closeMasters();
    await ensureMaster(h1.host, "test");
    const net = fs.readlinkSync(`/proc/${h1.pid}/ns/net`);
    // The host's sshd processes that serve connections (not the listener, which stays).
    const sessions = () =>
      fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
        try {
          return /^sshd: root/.test(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")) && fs.readlinkSync(`/proc/${pid}/ns/net`) === net && alive(pid);
        } catch {
          return false;
        }
      });
    try {
      const sleeping = remoteRun(h1.host, ["sleep", "5"], { timeoutMs: 20_000, subject: "test" });
      for (let i = 0; i < 100 && sessions().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      expect(sessions()).not.toEqual([]);
      for (const pid of sessions()) process.kill(pid, "SIGKILL");
      const r = await sleeping;
      expect(r.exitCode).toBe(255);
      expect(sshFailed(r.exitCode, r.stderr)).toBe(true);
      expect(sshError(h1.host, 'namespace "x"', r.stderr).message).toMatch(/^namespace "x" on root@192\.0\.2\.1: cannot reach root@192\.0\.2\.1 over SSH: .*\. Check that sshd runs on root@192\.0\.2\.1/);
    } finally {
      closeMasters();
    }
  });

  it("fails at once, naming the host and the fix, when the host key is unknown or sshd is not there; nothing is made", async () => {
    const [h1, h2] = lab.hosts;
    const empty = `${lab.dir}/empty`;
    const unknownKey = await dispatch("Namespace", "create", [{ name: "x", __owner: "test/remote/Namespace/x", host: { ...h1.host, knownHostsFile: empty } }]).catch((e: NslabError) => e) as NslabError;
    expect(unknownKey).toBeInstanceOf(NslabError);
    expect(unknownKey.kind).toBe("Permission");
    expect(unknownKey.message).toMatch(new RegExp(`Namespace "x" on root@192\\.0\\.2\\.1: cannot reach root@192\\.0\\.2\\.1 over SSH: .*Host key verification failed.*${empty}.*never accepts an unknown key`));
    expect(await lab.onHost(h1, "ip", ["netns", "list"])).toBe("");

    // As in a new run (a new provider process): no master connection yet.
    closeMasters();
    await lab.stop(h2);
    const started = Date.now();
    const refused = await dispatch("Namespace", "create", [{ name: "y", __owner: "test/remote/Namespace/y", host: h2.host }]).catch((e: NslabError) => e) as NslabError;
    console.log(`unreachable host reported after ${Date.now() - started} ms`);
    expect(refused).toBeInstanceOf(NslabError);
    expect(refused.message).toMatch(/Namespace "y" on root@192\.0\.2\.2: cannot reach root@192\.0\.2\.2 over SSH: .*Connection refused.*Check that sshd runs on root@192\.0\.2\.2/);
  });

  it("refuses a bad host, or what a host cannot take (a relative cwd), at check", async () => {
    const check = async (kind: string, args: Record<string, unknown>) =>
      ((await dispatch(kind, "check", [undefined, { __owner: "test/remote/c", ...args }])) as { failures: { property: string; reason: string }[] }).failures;
    expect(await check("Namespace", { name: "a", host: { ssh: "-oProxyCommand=x" } })).toEqual([{ property: "host.ssh", reason: expect.stringMatching(/host\.ssh must be "user@address"/) }]);
    expect(await check("Namespace", { name: "a", host: { ssh: "root@192.0.2.1", port: 0 } })).toEqual([{ property: "host.port", reason: expect.stringMatching(/1 to 65535/) }]);
    expect(await check("Namespace", { name: "a", host: { ssh: "root@192.0.2.1", identity: "/k" } })).toEqual([{ property: "host", reason: expect.stringMatching(/unknown field\(s\) identity/) }]);
    expect(await check("Process", { command: ["sleep", "1"], cwd: "lab", host: { ssh: "root@192.0.2.1" } })).toEqual([{ property: "cwd", reason: expect.stringMatching(/^cwd "lab" is relative, but host is set/) }]);
    expect(await check("Reachability", { to: "10.0.0.1", protocol: "udp", port: 53, host: { ssh: "root@192.0.2.1" } })).toEqual([]);
  });
});
