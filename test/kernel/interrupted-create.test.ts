/**
 * Interrupted creates are idempotent (as CNI's ADD): a create that finds an object
 * carrying *this* resource's own mark (what a killed run made before Pulumi recorded
 * it) takes it over and converges it; an object without the mark, or with another
 * resource's mark, is refused with the "already exists ... adopt" message.
 * A kill between making an object and marking it leaves an unmarked object and the
 * provider's intent record (/run/nslab/...): that object is taken over too.
 * IpForwarding: the value to restore survives a lost state.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bridgeKind as bridge } from "../../provider/bridge";
import { forwardingKind as fwd } from "../../provider/forwarding";
import * as kernel from "../../provider/kernel";
import { removeUnmarked, unmarked } from "../../provider/owned";
import { namespaceKind as namespace } from "../../provider/namespace";
import { ownerTag } from "../../provider/resource";
import { routeKind as route } from "../../provider/route";
import { tapKind as tap } from "../../provider/tap";
import { processKind } from "../../provider/process";
import { vethKind as veth } from "../../provider/veth";
import { vxlanKind as vxlan } from "../../provider/vxlan";
import { ipByHand, linkByHand, must, OWNER, tunUsable, uniq } from "../helpers/kernel";

const ns = uniq("kic");
const me = `${OWNER}/interrupted/me`;
const other = `${OWNER}/interrupted/other`;
const check = <T>(kind: { check: (o: undefined, n: Record<string, unknown>) => { inputs: T; failures: unknown[] } }, news: Record<string, unknown>) => {
  const r = kind.check(undefined, news);
  expect(r.failures).toEqual([]);
  return r.inputs;
};
const REFUSED = /already exists[\s\S]*adopt: true/;
const sysctl = async (key: string) => (await must("ip", ["netns", "exec", ns, "sysctl", "-n", key])).trim();

describe("create takes over its own interrupted work and refuses anyone else's", () => {
  beforeAll(async () => {
    await namespace.create(check(namespace, { name: ns, __owner: `${OWNER}/interrupted/ns` }));
  });
  afterAll(async () => {
    await ipByHand("netns", "delete", ns).catch(() => undefined);
  });

  it("a record's temporary file left by a writer killed before its rename goes with the record, and the folder with them", async () => {
    kernel.writeRecord(ns, "kic-record", { a: 1 }, "test");
    const inode = fs.statSync(`/run/netns/${ns}`).ino;
    const dir = `${kernel.RECORD_DIR}/netns-${inode}`;
    // A pid no process has (the kernel's largest is 4194304); and a live one's is left.
    fs.writeFileSync(`${dir}/kic-record.json.4194303`, "{");
    fs.writeFileSync(`${dir}/kic-record.json.${process.pid}`, "{");
    kernel.removeRecord(ns, "kic-record");
    expect(fs.readdirSync(dir)).toEqual([`kic-record.json.${process.pid}`]);
    fs.rmSync(`${dir}/kic-record.json.${process.pid}`);
    kernel.removeRecord(ns, "kic-record");
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("Namespace: own mark or own intent taken over; unmarked or foreign mark refused", async () => {
    const name = uniq("kicn");
    const mine = check(namespace, { name, __owner: me });
    await namespace.create(mine);
    const { outs } = await namespace.create(mine); // the recovery's create
    expect((await linkByHand("lo", name))!.ifalias).toBe(ownerTag(me));
    await expect(namespace.create(check(namespace, { name, __owner: other }))).rejects.toThrow(REFUSED);
    await namespace.delete(name, outs);
    expect(kernel.netnsExists(name)).toBe(false);

    // Killed between `ip netns add` and the mark: an unmarked namespace + the intent.
    await kernel.intend(undefined, `netns-${name}`, ownerTag(me), "test");
    await ipByHand("netns", "add", name);
    await expect(namespace.create(check(namespace, { name, __owner: other }))).rejects.toThrow(REFUSED);
    // The refusal above dropped the stale intent; a kill leaves it: put it back.
    await kernel.intend(undefined, `netns-${name}`, ownerTag(me), "test");
    await namespace.create(mine);
    expect((await linkByHand("lo", name))!.ifalias).toBe(ownerTag(me));
    expect(await kernel.intended(undefined, `netns-${name}`)).toBeUndefined();
    await namespace.delete(name, outs);

    // Killed inside `ip netns add` (file made, namespace not mounted on it yet): a plain
    // file under /run/netns. Without the intent it is refused; with it, made properly.
    await must("touch", [`${kernel.NETNS_DIR}/${name}`]);
    expect(kernel.netnsHalfMade(name)).toBe(true);
    await expect(namespace.create(mine)).rejects.toThrow(/is not a namespace/);
    await kernel.intend(undefined, `netns-${name}`, ownerTag(me), "test");
    await namespace.create(mine);
    expect(kernel.netnsHalfMade(name)).toBe(false);
    expect((await linkByHand("lo", name))!.ifalias).toBe(ownerTag(me));
    // Killed inside `ip netns delete` (unmounted, not yet unlinked): delete finishes it.
    await ipByHand("netns", "delete", name);
    await must("touch", [`${kernel.NETNS_DIR}/${name}`]);
    await namespace.delete(name, outs);
    expect(kernel.netnsExists(name)).toBe(false);

    // Made by hand, no intent: refused.
    await ipByHand("netns", "add", name);
    await expect(namespace.create(mine)).rejects.toThrow(REFUSED);
    await ipByHand("netns", "delete", name);
  });

  it("VethPair: own pair converged to the inputs; foreign mark refused; unmarked pair with own intent taken over", async () => {
    const [a, b] = [uniq("kva"), uniq("kvb")];
    const pair = (owner: string, address: string) =>
      check(veth, { a: { name: a, namespace: ns, addresses: [address] }, b: { name: b, namespace: ns }, __owner: owner });
    await veth.create(pair(me, "10.10.0.1/24")); // the killed run, older inputs
    const { id, outs } = await veth.create(pair(me, "10.10.0.2/24"));
    const live = await linkByHand(a, ns);
    expect(live!.addr_info.filter((x: { family: string }) => x.family === "inet").map((x: { local: string }) => x.local)).toEqual(["10.10.0.2"]);
    expect(veth.diff(id, (await veth.read(id, outs)).props!, pair(me, "10.10.0.2/24")).changes).toBe(false);
    await expect(veth.create(pair(other, "10.10.0.2/24"))).rejects.toThrow(REFUSED);
    await veth.delete(id, outs);

    await ipByHand("-n", ns, "link", "add", a, "type", "veth", "peer", "name", b);
    await expect(veth.create(pair(me, "10.10.0.2/24"))).rejects.toThrow(REFUSED);
    await kernel.intend(ns, `link-${a}`, ownerTag(me), "test");
    const taken = await veth.create(pair(me, "10.10.0.2/24"));
    expect((await linkByHand(b, ns))!.ifalias).toBe(ownerTag(me));
    await veth.delete(taken.id, taken.outs);
    expect(await linkByHand(a, ns)).toBeUndefined();

    // Another resource's intent for the same pair survives this one's refused create.
    await ipByHand("-n", ns, "link", "add", a, "type", "veth", "peer", "name", b);
    await kernel.intend(ns, `link-${a}`, ownerTag(other), "test", other);
    await expect(veth.create(pair(me, "10.10.0.2/24"))).rejects.toThrow(REFUSED);
    expect(await kernel.intended(ns, `link-${a}`)).toBe(ownerTag(other));
    const theirs = await veth.create(pair(other, "10.10.0.2/24"));
    expect((await linkByHand(a, ns))!.ifalias).toBe(ownerTag(other));
    await veth.delete(theirs.id, theirs.outs);
    expect(await linkByHand(a, ns)).toBeUndefined();
  });

  it("Bridge: own bridge taken over; foreign mark and unmarked refused", async () => {
    const name = uniq("kbr");
    const want = check(bridge, { name, namespace: ns, addresses: ["10.11.0.1/24"], __owner: me });
    await bridge.create({ ...want, addresses: [] });
    const { id, outs } = await bridge.create(want);
    expect((await linkByHand(name, ns))!.addr_info.some((x: { local: string }) => x.local === "10.11.0.1")).toBe(true);
    await expect(bridge.create(check(bridge, { name, namespace: ns, __owner: other }))).rejects.toThrow(REFUSED);
    await bridge.delete(id, outs);
    await ipByHand("-n", ns, "link", "add", name, "type", "bridge");
    await expect(bridge.create(want)).rejects.toThrow(REFUSED);
    await kernel.intend(ns, `link-${name}`, ownerTag(me), "test");
    const taken = await bridge.create(want);
    expect((await linkByHand(name, ns))!.ifalias).toBe(ownerTag(me));
    await bridge.delete(taken.id, taken.outs);

    // The recovery's create fails (the kernel refuses an IPv6 address at MTU 1000; check
    // would have said so, bypassed here): the bridge keeps its mark and its intent
    // record, so nslab-orphans lists it, and the next create takes it over.
    await bridge.create({ ...want, addresses: [] });
    await expect(bridge.create({ ...want, mtu: 1000, addresses: ["fd00:9::1/64"] })).rejects.toThrow();
    expect((await linkByHand(name, ns))!.ifalias).toBe(ownerTag(me));
    expect((await unmarked()).filter((o) => o.owner === me).map((o) => [o.name, o.marked])).toEqual([[name, true]]);
    const recovered = await bridge.create(want);
    expect(await kernel.intended(ns, `link-${name}`)).toBeUndefined();
    await bridge.delete(recovered.id, recovered.outs);

    // Another resource's create was killed after making its bridge: its intent record
    // survives this resource's refused create, and its own recovery takes the bridge over.
    await ipByHand("-n", ns, "link", "add", name, "type", "bridge");
    await kernel.intend(ns, `link-${name}`, ownerTag(other), "test", other);
    await expect(bridge.create(want)).rejects.toThrow(REFUSED);
    expect(await kernel.intentRecord(ns, `link-${name}`)).toEqual({ owner: ownerTag(other), by: other });
    const theirs = await bridge.create(check(bridge, { name, namespace: ns, __owner: other }));
    expect((await linkByHand(name, ns))!.ifalias).toBe(ownerTag(other));
    expect(await kernel.intended(ns, `link-${name}`)).toBeUndefined();
    await bridge.delete(theirs.id, theirs.outs);
  });

  it("Vxlan: own device converged to the inputs; foreign mark and unmarked refused; unmarked device with own intent taken over", async () => {
    const name = uniq("kvx");
    const vni = 1 + Math.floor(Math.random() * 16_000_000);
    const want = check(vxlan, { name, namespace: ns, vni, remote: "10.12.0.2", __owner: me });
    await vxlan.create({ ...want, learning: !want.learning }); // the killed run, older inputs
    const { id, outs } = await vxlan.create(want); // the recovery's create
    expect(await linkByHand(name, ns)).toMatchObject({ ifalias: ownerTag(me), linkinfo: { info_data: { id: vni, learning: want.learning } } });
    expect(vxlan.diff(id, (await vxlan.read(id, outs)).props!, want).changes).toBe(false);
    await expect(vxlan.create(check(vxlan, { name, namespace: ns, vni, remote: "10.12.0.2", __owner: other }))).rejects.toThrow(REFUSED);
    await vxlan.delete(id, outs);
    expect(await linkByHand(name, ns)).toBeUndefined();

    // Killed between `ip link add` and the alias: an unmarked device + the intent.
    await ipByHand("-n", ns, "link", "add", name, "type", "vxlan", "id", String(vni), "remote", "10.12.0.2", "dstport", "4789");
    await expect(vxlan.create(want)).rejects.toThrow(REFUSED);
    expect(await linkByHand(name, ns)).toBeDefined(); // refused: left as it was
    await kernel.intend(ns, `link-${name}`, ownerTag(me), "test");
    const taken = await vxlan.create(want);
    expect((await linkByHand(name, ns))!.ifalias).toBe(ownerTag(me));
    expect(await kernel.intended(ns, `link-${name}`)).toBeUndefined();
    await vxlan.delete(taken.id, taken.outs);
    expect(await linkByHand(name, ns)).toBeUndefined();
  });

  it("Process: the program a killed create left running is stopped by the next create of the same resource; another resource's is left alone", async () => {
    // Owners of this run's own (a create stops every program of its owner on the machine).
    const [mineP, otherP] = [`${me}/${uniq("p")}`, `${other}/${uniq("p")}`];
    const sleeper = (owner: string) => check(processKind, { command: ["sleep", "300"], namespace: ns, cwd: "/", startupMs: 50, __owner: owner });
    const first = await processKind.create(sleeper(mineP)); // the killed run's: Pulumi never recorded it
    const theirs = await processKind.create(sleeper(otherP));
    let second: Awaited<ReturnType<typeof processKind.create>> | undefined;
    try {
      expect((await kernel.markedProcesses()).filter((p) => p.owner === mineP)).toEqual([{ pid: first.outs.pid, startTime: first.outs.startTime, owner: mineP, stopTimeoutMs: 5000 }]);
      second = await processKind.create(sleeper(mineP)); // the recovery's create
      expect(await kernel.processAlive(first.outs.pid, first.outs.startTime)).toBe(false);
      expect(await kernel.processAlive(second.outs.pid, second.outs.startTime)).toBe(true);
      expect(await kernel.processAlive(theirs.outs.pid, theirs.outs.startTime)).toBe(true);
      expect((await kernel.markedProcesses()).filter((p) => p.owner === mineP).map((p) => p.pid)).toEqual([second.outs.pid]);
      await processKind.delete(second.id, second.outs);
      expect((await kernel.markedProcesses()).filter((p) => p.owner === mineP)).toEqual([]);
    } finally {
      if (second) await processKind.delete(second.id, second.outs);
      await processKind.delete(first.id, first.outs);
      await processKind.delete(theirs.id, theirs.outs);
    }
    expect(await kernel.processAlive(theirs.outs.pid, theirs.outs.startTime)).toBe(false);
  });

  it("Process: a program found by its mark alone (nslab-orphans --delete) is given its resource's stopTimeoutMs to stop, not the default 5 s", async () => {
    const owner = `${me}/${uniq("slow")}`;
    const log = path.join(os.tmpdir(), `${uniq("slow")}.log`);
    // A program whose clean stop takes 6 s: SIGKILLed after the default 5 s, it never says so.
    const slow = await processKind.create(
      check(processKind, { command: ["sh", "-c", 'trap "sleep 6; echo stopped cleanly; exit 0" TERM; echo up; while :; do sleep 1; done'], namespace: ns, cwd: "/", readyText: "up", stopTimeoutMs: 10_000, logFile: log, __owner: owner }),
    );
    try {
      expect((await kernel.markedProcesses()).filter((p) => p.owner === owner)).toEqual([{ pid: slow.outs.pid, startTime: slow.outs.startTime, owner, stopTimeoutMs: 10_000 }]);
      // As nslab-orphans --delete finds and stops it: no record, only its mark.
      const found = (await unmarked()).filter((o) => o.owner === owner);
      expect(found).toMatchObject([{ type: "process", name: String(slow.outs.pid), startTime: slow.outs.startTime, stopTimeoutMs: 10_000 }]);
      await removeUnmarked(found[0]);
      expect(await kernel.processAlive(slow.outs.pid, slow.outs.startTime)).toBe(false);
      // Its `sleep 1` gets SIGTERM with it (the program's session is stopped), which sh reports.
      expect(fs.readFileSync(log, "utf8")).toMatch(/^up\n(?:Terminated\n)?stopped cleanly\n$/);
    } finally {
      await processKind.delete(slow.id, slow.outs);
      fs.rmSync(log, { force: true });
    }
  });

  it.skipIf(!tunUsable)("Tap: own device taken over; foreign mark refused", async () => {
    const name = uniq("ktp");
    const want = check(tap, { name, namespace: ns, mode: "tap", __owner: me });
    await tap.create(want);
    const { id, outs } = await tap.create(want);
    await expect(tap.create(check(tap, { name, namespace: ns, mode: "tap", __owner: other }))).rejects.toThrow(REFUSED);
    await tap.delete(id, outs);
    expect(await linkByHand(name, ns)).toBeUndefined();
  });

  it("Route: nslab's identical route taken over; a different nslab route or a foreign one refused", async () => {
    const [a, b] = [uniq("kra"), uniq("krb")];
    const link = await veth.create(check(veth, { a: { name: a, namespace: ns, addresses: ["10.12.0.1/24"] }, b: { name: b, namespace: ns }, __owner: `${me}/rl` }));
    const want = check(route, { namespace: ns, destination: "10.99.0.0/16", gateway: "10.12.0.2", __owner: me });
    await route.create(want);
    const { id, outs } = await route.create(want);
    expect(await must("ip", ["-n", ns, "route", "show", "10.99.0.0/16"])).toMatch(/via 10\.12\.0\.2 dev \S+ proto 151/);
    await expect(route.create({ ...want, gateway: "10.12.0.3" })).rejects.toThrow(REFUSED);
    await route.delete(id, outs);
    await ipByHand("-n", ns, "route", "add", "10.99.0.0/16", "via", "10.12.0.2");
    await expect(route.create(want)).rejects.toThrow(REFUSED);
    await ipByHand("-n", ns, "route", "del", "10.99.0.0/16");
    await veth.delete(link.id, link.outs);
  });

  it("IpForwarding: after a lost state the re-create restores the machine's value, not nslab's '1'; another resource's switch is refused unless adopt", async () => {
    expect(await sysctl("net.ipv4.ip_forward")).toBe("0");
    const want = check(fwd, { namespace: ns, ipv4: true, __owner: me });
    const first = await fwd.create(want);
    expect(first.outs.previousIpv4).toBe("0");
    // State lost (killed run, PULUMI_SKIP_CHECKPOINTS): the recovery creates again.
    const again = await fwd.create(want);
    expect(again.outs.previousIpv4).toBe("0");
    expect(await sysctl("net.ipv4.ip_forward")).toBe("1");
    await expect(fwd.create(check(fwd, { namespace: ns, ipv4: true, __owner: other }))).rejects.toThrow(REFUSED);
    const adopted = await fwd.create(check(fwd, { namespace: ns, ipv4: true, adopt: true, __owner: other }));
    expect(adopted.outs.previousIpv4).toBe("0");
    await fwd.delete(adopted.id, adopted.outs);
    expect(await sysctl("net.ipv4.ip_forward")).toBe("0");
    expect(kernel.readRecord(ns, "forwarding-ipv4")).toBeUndefined();

    // A record whose switch no longer holds what nslab set is stale: the current value counts.
    await fwd.create(want);
    await must("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    const fresh = await fwd.create(want);
    expect(fresh.outs.previousIpv4).toBe("0");
    await fwd.delete(fresh.id, fresh.outs);

    // Deleting a namespace with nslab takes its records with it.
    const gone = uniq("kicf");
    const made = await namespace.create(check(namespace, { name: gone, __owner: me }));
    await fwd.create(check(fwd, { namespace: gone, ipv4: true, __owner: me }));
    expect(kernel.readRecord(gone, "forwarding-ipv4")).toMatchObject({ previous: "0", set: "1" });
    const inode = (await must("stat", ["-c", "%i", `${kernel.NETNS_DIR}/${gone}`])).trim();
    await namespace.delete(gone, made.outs);
    expect(await must("ls", [kernel.RECORD_DIR])).not.toContain(`netns-${inode}\n`);
  });
});
