import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dispatch } from "../../provider";
import { forwardingKind as fwd } from "../../provider/forwarding";
import { nftJson, resetSnapshots, withNetnsLock } from "../../provider/kernel";
import { natKind as nat, parseRule, ruleExpression } from "../../provider/nat";
import { namespaceKind } from "../../provider/namespace";
import { ownerTag } from "../../provider/resource";
import { routeKind as route } from "../../provider/route";
import { vethKind } from "../../provider/veth";
import { ipByHand, must, OWNER, uniq } from "../helpers/kernel";
import { sh } from "../helpers/sandbox";

const ns = uniq("kl3");
const owner = (n: string) => `${OWNER}/l3/${n}`;
function checked<T>(kind: { check: (o: undefined, n: Record<string, unknown>) => { inputs: T; failures: unknown[] } }, news: Record<string, unknown>): T {
  const r = kind.check(undefined, { namespace: ns, __owner: owner(JSON.stringify(news)), ...news });
  expect(r.failures).toEqual([]);
  return r.inputs;
}
/** A command in the test namespace, by hand; nslab's snapshots are dropped after it. */
const nsRun = async (cmd: string, ...args: string[]) => {
  const out = await must("ip", ["netns", "exec", ns, cmd, ...args]);
  resetSnapshots();
  return out;
};

describe("Route, IpForwarding and NatRule on the kernel", () => {
  beforeAll(async () => {
    await namespaceKind.create(namespaceKind.check(undefined, { name: ns, __owner: owner("ns") }).inputs);
    await vethKind.create(
      vethKind.check(undefined, {
        a: { name: "r0", namespace: ns, addresses: ["192.168.1.2/24", "fd00:1::2/64"] },
        b: { name: "r1", namespace: ns, addresses: ["192.168.2.1/24"] },
        __owner: owner("veth"),
      }).inputs,
    );
  });
  afterAll(async () => {
    await ipByHand("netns", "delete", ns).catch(() => undefined);
  });

  it("Route: create, read, replace gateway in place, identity changes replace, delete twice", async () => {
    const want = checked(route, { destination: "10.0.0.0/8", gateway: "192.168.1.1", metric: 100 });
    const { id, outs } = await route.create(want);
    expect(await nsRun("ip", "route", "show", "10.0.0.0/8")).toMatch(/10\.0\.0\.0\/8 via 192\.168\.1\.1 dev r0 proto 151 metric 100/);
    const read = await route.read(id, outs);
    expect(read.inputs).toEqual(want);
    expect(route.diff(id, read.props!, want).changes).toBe(false);

    const moved = checked(route, { destination: "10.0.0.0/8", device: "r1", metric: 100, source: "192.168.2.1" });
    expect(route.diff(id, outs, moved)).toMatchObject({ changes: true, replaces: [] });
    const { outs: o2 } = await route.update(id, outs, moved);
    expect(await nsRun("ip", "route", "show", "10.0.0.0/8")).toMatch(/dev r1 proto 151 scope link src 192\.168\.2\.1 metric 100/);
    expect(route.diff(id, (await route.read(id, o2)).props!, moved).changes).toBe(false);
    for (const change of [{ destination: "10.0.0.0/16" }, { metric: 5 }, { table: 100 }]) {
      expect(route.diff(id, o2, { ...moved, ...change }).replaces.length).toBe(1);
    }
    await route.delete(id, o2);
    expect(await nsRun("ip", "route", "show", "10.0.0.0/8")).toBe("");
    expect(await route.read(id, o2)).toEqual({});
    await route.delete(id, o2);
  });

  it("Route: deleting a route without a metric never removes another resource's route to the same destination at another metric", async () => {
    // IPv6: both there. The kernel takes a delete without a metric as "any metric".
    const a6 = checked(route, { destination: "fd00:78::/64", gateway: "fd00:1::1" });
    const b6 = checked(route, { destination: "fd00:78::/64", gateway: "fd00:1::3", metric: 100, __owner: "proj/dev@0123abcd/Route/b6" });
    const madeB6 = await route.create(b6);
    const madeA6 = await route.create(a6);
    const both = await nsRun("ip", "-6", "route", "show", "fd00:78::/64");
    expect(both).toMatch(/via fd00:1::1 dev r0 proto 151 metric 1024 /);
    expect(both).toMatch(/via fd00:1::3 dev r0 proto 151 metric 100 /);
    await route.delete(madeA6.id, madeA6.outs);
    await route.delete(madeA6.id, madeA6.outs);
    expect(await nsRun("ip", "-6", "route", "show", "fd00:78::/64")).toMatch(/^fd00:78::\/64 via fd00:1::3 dev r0 proto 151 metric 100 /);
    // IPv4: this resource's route gone by hand first; the other's (metric 100) stays.
    const a4 = checked(route, { destination: "10.78.0.0/16", gateway: "192.168.1.1" });
    const b4 = checked(route, { destination: "10.78.0.0/16", gateway: "192.168.1.3", metric: 100, __owner: "proj/dev@0123abcd/Route/b4" });
    const madeB4 = await route.create(b4);
    const madeA4 = await route.create(a4);
    await nsRun("ip", "route", "del", "10.78.0.0/16", "via", "192.168.1.1");
    await route.delete(madeA4.id, madeA4.outs);
    expect(await nsRun("ip", "route", "show", "10.78.0.0/16")).toMatch(/^10\.78\.0\.0\/16 via 192\.168\.1\.3 dev r0 proto 151 metric 100/);
    // With both there, the delete takes its own (metric 0) and leaves the other.
    const again = await route.create(a4);
    await route.delete(again.id, again.outs);
    expect(await nsRun("ip", "route", "show", "10.78.0.0/16")).toMatch(/^10\.78\.0\.0\/16 via 192\.168\.1\.3 dev r0 proto 151 metric 100\s*$/);
    // The same with metric 0 given: IPv4 takes "metric 0" in a delete as any metric too.
    const zero = await route.create(checked(route, { destination: "10.78.0.0/16", gateway: "192.168.1.1", metric: 0 }));
    await nsRun("ip", "route", "del", "10.78.0.0/16", "via", "192.168.1.1");
    await route.delete(zero.id, zero.outs);
    expect(await nsRun("ip", "route", "show", "10.78.0.0/16")).toMatch(/^10\.78\.0\.0\/16 via 192\.168\.1\.3 dev r0 proto 151 metric 100/);
    // IPv6 has no metric 0 (the kernel stores 1024): refused at check.
    expect(route.check(undefined, { namespace: ns, destination: "fd00:79::/64", gateway: "fd00:1::1", metric: 0, __owner: owner("v6zero") }).failures).toEqual([
      expect.objectContaining({ property: "metric", reason: expect.stringMatching(/metric 0 is not an IPv6 metric: the kernel gives such a route 1024/) }),
    ]);
    // A route in table 253, which ip prints by its name ("default"): read finds it, delete removes it.
    const named = await route.create(checked(route, { destination: "10.79.0.0/16", gateway: "192.168.1.1", table: 253 }));
    expect((await route.read(named.id, named.outs)).id).toBe(named.id);
    await route.delete(named.id, named.outs);
    expect(await nsRun("ip", "route", "show", "table", "253")).toBe("");
    await route.delete(madeB4.id, madeB4.outs);
    await route.delete(madeB6.id, madeB6.outs);
    expect(await nsRun("ip", "route", "show", "10.78.0.0/16")).toBe("");
    expect(await nsRun("ip", "-6", "route", "show", "fd00:78::/64")).toBe("");
  });

  it("Route: IPv6 default in another table; a foreign route is refused, left alone, or adopted", async () => {
    const v6 = checked(route, { destination: "default", gateway: "fd00:1::1", table: 100 });
    expect(v6.family).toBe("ipv6");
    const r6 = await route.create(v6);
    expect(await nsRun("ip", "-6", "route", "show", "table", "100")).toMatch(/default via fd00:1::1 dev r0 proto 151/);
    expect((await route.read(r6.id, r6.outs)).inputs).toEqual(v6);
    await route.delete(r6.id, r6.outs);

    await nsRun("ip", "route", "add", "172.16.0.0/12", "via", "192.168.1.1");
    const foreign = checked(route, { destination: "172.16.0.0/12", gateway: "192.168.1.1" });
    await expect(route.create(foreign)).rejects.toMatchObject({ kind: "AlreadyExists" });
    await route.delete("x", foreign); // proto selector: not ours, not deleted
    expect(await nsRun("ip", "route", "show", "172.16.0.0/12")).toMatch(/172\.16\.0\.0\/12 via 192\.168\.1\.1/);
    expect(await route.read("x", foreign)).toEqual({});
    // The kernel's own route for an address's subnet: refused, saying what it is and the
    // two-run way when its interface goes in the same change, and left alone.
    const connected = checked(route, { destination: "192.168.1.0/24", gateway: "192.168.2.2" });
    await expect(route.create(connected)).rejects.toThrow(/already exists: it is the route the kernel keeps for an address of "r0" in that subnet \(proto kernel\)\. If "r0" goes away in this same change.*two runs of pulumi up/);
    expect(await nsRun("ip", "route", "show", "192.168.1.0/24")).toMatch(/dev r0 proto kernel/);
    const adopted = await route.create({ ...foreign, adopt: true });
    expect(await nsRun("ip", "route", "show", "172.16.0.0/12")).toMatch(/proto 151/);
    await route.delete(adopted.id, adopted.outs);
    expect(await nsRun("ip", "route", "show", "172.16.0.0/12")).toBe("");
  });

  it("a route and a veth pair another stack took over (adopt) are neither changed nor deleted by the stack that made them; adopt takes them back", async () => {
    type Made = { id: string; outs: Record<string, unknown> };
    const owned = async (kind: string, owner: string, news: Record<string, unknown>) => ((await dispatch(kind, "check", [undefined, { __owner: owner, ...news }])) as { inputs: Record<string, unknown> }).inputs;
    const create = async (kind: string, inputs: Record<string, unknown>) => (await dispatch(kind, "create", [inputs])) as Made;
    const route = { namespace: ns, destination: "10.123.0.0/16", gateway: "192.168.1.1" };
    const pair = { a: { name: "tk0", namespace: ns, addresses: ["10.124.0.1/24"] }, b: { name: "tk1", namespace: ns, addresses: ["10.124.0.2/24"] } };
    const a = { route: await owned("Route", "kt/a@t/Route/r", route), pair: await owned("VethPair", "kt/a@t/VethPair/v", pair) };
    const madeA = { route: await create("Route", a.route), pair: await create("VethPair", a.pair) };
    const b = { route: await owned("Route", "kt/b@t/Route/r", { ...route, adopt: true }), pair: await owned("VethPair", "kt/b@t/VethPair/v", { ...pair, adopt: true }) };
    const madeB = { route: await create("Route", b.route), pair: await create("VethPair", b.pair) };

    // A's update (another gateway, another address) is refused, and changes nothing.
    const otherGateway = await owned("Route", "kt/a@t/Route/r", { ...route, gateway: "192.168.1.3" });
    await expect(dispatch("Route", "update", [madeA.route.id, madeA.route.outs, otherGateway])).rejects.toThrow(/was taken over by nslab Route "r" of stack kt\/b@t \(adopt\).*set adopt: true to take it back/);
    const otherAddress = await owned("VethPair", "kt/a@t/VethPair/v", { ...pair, a: { ...pair.a, addresses: ["10.124.0.9/24"] } });
    await expect(dispatch("VethPair", "update", [madeA.pair.id, madeA.pair.outs, otherAddress])).rejects.toThrow(/veth "tk0" in namespace "[^"]+" was taken over by another resource \(adopt\).*It belongs to nslab VethPair "v" of stack kt\/b@t/);
    expect(await nsRun("ip", "route", "show", "10.123.0.0/16")).toMatch(/via 192\.168\.1\.1 dev r0 proto 151/);
    expect(await nsRun("ip", "-br", "addr", "show", "dev", "tk0")).toMatch(/10\.124\.0\.1\/24/);
    // A's delete (a destroy, nslab-orphans) leaves both.
    await dispatch("Route", "delete", [madeA.route.id, madeA.route.outs]);
    await dispatch("VethPair", "delete", [madeA.pair.id, madeA.pair.outs]);
    expect(await nsRun("ip", "route", "show", "10.123.0.0/16")).toMatch(/proto 151/);
    expect(await nsRun("ip", "-br", "link", "show", "dev", "tk0")).toMatch(/tk0/);
    // B's own update goes through; B's delete removes them.
    const bMoved = await owned("Route", "kt/b@t/Route/r", { ...route, gateway: "192.168.1.3", adopt: true });
    const { outs: bRoute } = (await dispatch("Route", "update", [madeB.route.id, madeB.route.outs, bMoved])) as Made;
    expect(await nsRun("ip", "route", "show", "10.123.0.0/16")).toMatch(/via 192\.168\.1\.3/);
    // And adopt: true takes them back: A (made again) adopts B's, then B's delete leaves them.
    const again = { route: await create("Route", await owned("Route", "kt/a@t/Route/r", { ...route, adopt: true })), pair: await create("VethPair", await owned("VethPair", "kt/a@t/VethPair/v", { ...pair, adopt: true })) };
    await dispatch("Route", "delete", [madeB.route.id, bRoute]);
    await dispatch("VethPair", "delete", [madeB.pair.id, madeB.pair.outs]);
    expect(await nsRun("ip", "route", "show", "10.123.0.0/16")).toMatch(/proto 151/);
    await dispatch("Route", "delete", [again.route.id, again.route.outs]);
    await dispatch("VethPair", "delete", [again.pair.id, again.pair.outs]);
    expect(await nsRun("ip", "route", "show", "10.123.0.0/16")).toBe("");
    expect((await sh("ip", ["-n", ns, "link", "show", "dev", "tk0"])).exitCode).not.toBe(0);
  });

  it("Route: a route through lo (an interface that is there, which a route may name)", async () => {
    const want = checked(route, { destination: "10.77.0.0/24", device: "lo" });
    const { id, outs } = await route.create(want);
    expect(await nsRun("ip", "route", "show", "10.77.0.0/24")).toMatch(/10\.77\.0\.0\/24 dev lo proto 151/);
    expect(route.diff(id, (await route.read(id, outs)).props!, want).changes).toBe(false);
    await route.delete(id, outs);
    expect(await nsRun("ip", "route", "show", "10.77.0.0/24")).toBe("");
  });

  it("Route: a gateway off every subnet fails naming the namespace's addresses, one on a down interface names it, and nothing is left", async () => {
    const bad = checked(route, { destination: "10.1.0.0/16", gateway: "10.99.0.1" });
    const message = await route.create(bad).then(
      () => "",
      (e: Error) => e.message,
    );
    expect(message).toMatch(/No interface in namespace "kl3[^"]*" has a subnet that holds 10\.99\.0\.1 \(its addresses now: [^)]*\): give a gateway on one of them, or, if the interface that will hold it is made by this program, make the route depend on it/);
    expect(message).toContain("192.168.1.2/24 on r0");
    expect(message).toContain("192.168.2.1/24 on r1");
    expect(await nsRun("ip", "route", "show", "10.1.0.0/16")).toBe("");
    // IPv6 says it otherwise ("No route to host"); the hint is the same, with IPv6 subnets.
    const bad6 = checked(route, { destination: "fd00:77::/64", gateway: "fd00:99::1" });
    await expect(route.create(bad6)).rejects.toThrow(/No route to host.* No interface in namespace "kl3[^"]*" has a subnet that holds fd00:99::1 \(its addresses now: fd00:1::2\/64 on r0\)/);
    expect(await nsRun("ip", "-6", "route", "show", "fd00:77::/64")).toBe("");
    // The gateway's subnet on an interface that is down: named, with the fix.
    await nsRun("ip", "link", "add", "rdown", "type", "veth", "peer", "rdown1");
    await nsRun("ip", "address", "add", "10.98.0.2/24", "dev", "rdown");
    try {
      await expect(route.create(checked(route, { destination: "10.1.0.0/16", gateway: "10.98.0.1" }))).rejects.toThrow(/Its subnet is on "rdown", which is down: set it up/);
      expect(await nsRun("ip", "route", "show", "10.1.0.0/16")).toBe("");
    } finally {
      await nsRun("ip", "link", "del", "rdown");
    }
  });

  it("IpForwarding: records, sets, sees drift, restores on delete", async () => {
    const before = (await nsRun("sysctl", "-n", "net.ipv4.ip_forward")).trim();
    const want = checked(fwd, { ipv4: true, ipv6: true });
    const { id, outs } = await fwd.create(want);
    expect(outs.previousIpv4).toBe(before);
    expect((await nsRun("sysctl", "-n", "net.ipv4.ip_forward")).trim()).toBe("1");
    expect((await nsRun("sysctl", "-n", "net.ipv6.conf.all.forwarding")).trim()).toBe("1");
    expect(fwd.diff(id, (await fwd.read(id, outs)).props!, want).changes).toBe(false);

    await nsRun("sysctl", "-w", "net.ipv4.ip_forward=0");
    const drifted = await fwd.read(id, outs);
    expect(drifted.inputs!.ipv4).toBe(false);
    expect(fwd.diff(id, drifted.props!, want)).toMatchObject({ changes: true, replaces: [] });
    const { outs: repaired } = await fwd.update(id, drifted.props!, want);
    expect(repaired.previousIpv4).toBe(before);
    expect((await nsRun("sysctl", "-n", "net.ipv4.ip_forward")).trim()).toBe("1");

    // Another resource's switch: refused, naming that resource and its stack.
    // (This test's owners are test/kernel/l3/<inputs>: stack test/kernel, kind "l3".)
    const other = checked(fwd, { ipv4: true, __owner: "proj/dev@0123abcd/IpForwarding/one" });
    await expect(fwd.create(other)).rejects.toThrow(/ipv4 forwarding already exists: nslab l3 "\{"ipv4":true,"ipv6":true\}" of stack test\/kernel set it to '1' and will restore '0'/);
    await expect(fwd.create(other)).rejects.toThrow(/take the switch over\.$/);
    // A NatGateway's own (NAME-forwarding) takes no adopt: the message says what it takes.
    const gateways = checked(fwd, { ipv4: true, __owner: "proj/dev@0123abcd/IpForwarding/nat-forwarding" });
    await expect(fwd.create(gateways)).rejects.toThrow(/set adopt: true to take the switch over\. If this is the IpForwarding of NatGateway "nat" \(which takes no adopt\), give that component forwarding: false instead: the switch then stays the other resource's/);
    expect((await nsRun("sysctl", "-n", "net.ipv4.ip_forward")).trim()).toBe("1");

    await fwd.delete(id, repaired);
    expect((await nsRun("sysctl", "-n", "net.ipv4.ip_forward")).trim()).toBe(before);
    expect((await nsRun("sysctl", "-n", "net.ipv6.conf.all.forwarding")).trim()).toBe("0");
    await fwd.delete(id, repaired);
  });

  it("IpForwarding: a switch another resource took over is neither restored nor written by the first (adopt, or a create after its value was changed by hand)", async () => {
    const sw = async () => (await nsRun("sysctl", "-n", "net.ipv4.ip_forward")).trim();
    await nsRun("sysctl", "-w", "net.ipv4.ip_forward=0");
    const first = checked(fwd, { ipv4: true, __owner: "proj/one@0123abcd/IpForwarding/fwd" });
    const second = checked(fwd, { ipv4: true, adopt: true, __owner: "proj/two@0123abcd/IpForwarding/fwd" });
    const s1 = await fwd.create(first);
    const s2 = await fwd.create(second);
    expect(s2.outs.previousIpv4).toBe("0");
    // The first's delete leaves the switch to the second; its update is refused.
    await fwd.delete(s1.id, s1.outs);
    expect(await sw()).toBe("1");
    await expect(fwd.update(s1.id, s1.outs, first)).rejects.toThrow(/ipv4 forwarding was taken over by nslab IpForwarding "fwd" of stack proj\/two@0123abcd since this resource set it.*set adopt: true to take it back/);
    // adopt takes it back: then the second's delete leaves it, and the first's restores.
    const { outs: back } = await fwd.update(s1.id, s1.outs, { ...first, adopt: true });
    await fwd.delete(s2.id, s2.outs);
    expect(await sw()).toBe("1");
    await fwd.delete(s1.id, back);
    expect(await sw()).toBe("0");

    // Switched off by hand (the first's record is stale), then made by another resource:
    // that one's now. The first's delete leaves it on; the second's restores the "0".
    const t1 = await fwd.create(first);
    await nsRun("sysctl", "-w", "net.ipv4.ip_forward=0");
    const plain = checked(fwd, { ipv4: true, __owner: "proj/two@0123abcd/IpForwarding/fwd" });
    const t2 = await fwd.create(plain);
    await fwd.delete(t1.id, t1.outs);
    expect(await sw()).toBe("1");
    await fwd.delete(t2.id, t2.outs);
    expect(await sw()).toBe("0");
    // Concurrent creates of two stacks: one gets the switch, the other is refused.
    const results = await Promise.allSettled([fwd.create(first), fwd.create(plain)]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const winner = results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<Awaited<ReturnType<typeof fwd.create>>>;
    expect(winner.value.outs.previousIpv4).toBe("0");
    await fwd.delete(winner.value.id, winner.value.outs);
    expect(await sw()).toBe("0");
  });

  it("IpForwarding: IPv6 forwarding is refused where it would delete a default route learnt from router advertisements (accept_ra not 2); with accept_ra 2 it is switched on", async () => {
    const sw = async () => (await nsRun("sysctl", "-n", "net.ipv6.conf.all.forwarding")).trim();
    await nsRun("sysctl", "-w", "net.ipv6.conf.all.forwarding=0");
    await nsRun("ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "r0", "proto", "ra");
    try {
      await nsRun("sysctl", "-w", "net.ipv6.conf.r0.accept_ra=1");
      const want = checked(fwd, { ipv6: true, __owner: "proj/ra@0123abcd/IpForwarding/ra" });
      await expect(fwd.create(want)).rejects.toThrow(/ipv6: switching IPv6 forwarding on would make the kernel delete the default route on "r0" learnt from a router advertisement \(accept_ra is 1; with forwarding on, only 2 keeps it\).*Set net\.ipv6\.conf\.r0\.accept_ra=2 first/);
      expect(await sw()).toBe("0");
      expect(await nsRun("ip", "-6", "route", "show", "default")).toMatch(/proto ra/);
      await nsRun("sysctl", "-w", "net.ipv6.conf.r0.accept_ra=2");
      const made = await fwd.create(want);
      expect(await sw()).toBe("1");
      await fwd.delete(made.id, made.outs);
      expect(await sw()).toBe("0");
    } finally {
      await nsRun("ip", "-6", "route", "del", "default", "via", "fe80::1", "dev", "r0").catch(() => undefined);
      await nsRun("sysctl", "-w", "net.ipv6.conf.r0.accept_ra=1");
    }
  });

  it("NatRule: masquerade, snat, dnat: create, read, update atomically, table gone with last rule", async () => {
    const masq = checked(nat, { kind: "masquerade", source: "192.168.1.0/24", outInterface: "r1" });
    const snat = checked(nat, { kind: "snat", source: "192.168.2.0/24", outInterface: "r1", toAddress: "10.0.2.15" });
    const dnat = checked(nat, { kind: "dnat", protocol: "tcp", inInterface: "r1", port: 8080, toAddress: "192.168.1.3", toPort: 80 });
    const made = [];
    for (const rule of [masq, snat, dnat]) {
      const r = await nat.create(rule);
      made.push(r);
      const read = await nat.read(r.id, r.outs);
      expect(read.inputs).toEqual(rule);
      expect(nat.diff(r.id, read.props!, rule).changes).toBe(false);
    }
    const listing = await nsRun("nft", "list", "table", "inet", "nslab");
    expect(listing).toContain('oifname "r1" ip saddr 192.168.1.0/24 masquerade comment');
    expect(listing).toContain("snat ip to 10.0.2.15");
    expect(listing).toContain('iifname "r1" tcp dport 8080 dnat ip to 192.168.1.3:80');

    // In place: the dnat target moves; the rule's comment (identity) stays.
    const moved = { ...dnat, toAddress: "192.168.1.4", toPort: 8000 };
    expect(nat.diff(made[2].id, made[2].outs, moved)).toMatchObject({ changes: true, replaces: [] });
    await nat.update(made[2].id, made[2].outs, moved);
    expect(await nsRun("nft", "list", "table", "inet", "nslab")).toContain("dnat ip to 192.168.1.4:8000");
    made[2] = { ...made[2], outs: moved };

    // Drift: altered by hand (recognisably, then with an expression nslab never writes), deleted by hand.
    const masqRule = async () => (await nftJson<any>(["list", "chain", "inet", "nslab", "postrouting"], ns, "t")).nftables.find((x: any) => x.rule?.comment?.startsWith("nslab:") && x.rule.expr.some((e: any) => "masquerade" in e))?.rule;
    let handle = (await masqRule()).handle;
    await nsRun("nft", "replace", "rule", "inet", "nslab", "postrouting", "handle", String(handle), "oifname", "r1", "ip", "saddr", "192.168.9.0/24", "masquerade", "comment", `"${(await masqRule()).comment}"`);
    let read = await nat.read(made[0].id, made[0].outs);
    expect(read.inputs!.source).toBe("192.168.9.0/24");
    expect(nat.diff(made[0].id, read.props!, masq).changes).toBe(true);
    handle = (await masqRule()).handle;
    await nsRun("nft", "replace", "rule", "inet", "nslab", "postrouting", "handle", String(handle), "ip", "saddr", "192.168.1.0/24", "ip", "ttl", "64", "oifname", "r1", "masquerade", "comment", `"${(await masqRule()).comment}"`);
    read = await nat.read(made[0].id, made[0].outs);
    expect(read.inputs!.unmanagedExpression).toContain("ttl");
    expect(nat.diff(made[0].id, read.props!, masq).changes).toBe(true);
    await nat.update(made[0].id, read.props!, masq);
    expect(nat.diff(made[0].id, (await nat.read(made[0].id, masq)).props!, masq).changes).toBe(false);

    for (const r of made) await nat.delete(r.id, r.outs);
    const tables = await nsRun("nft", "list", "tables");
    expect(tables).not.toContain("nslab");
    for (const r of made) await nat.delete(r.id, r.outs);
    expect(await nat.read(made[0].id, made[0].outs)).toEqual({});
  });

  it("NatRule: adopt takes over a rule in inet nslab that matches exactly (another stack's, or one without a comment); without it, or with no match, a rule of its own is added", async () => {
    const rules = async () => (await nftJson<any>(["list", "table", "inet", "nslab"], ns, "t")).nftables.filter((x: any) => x.rule).map((x: any) => x.rule);
    // Through dispatch, as the engine calls it: the records on this machine say who adopted what.
    type Made = { id: string; outs: Record<string, unknown> };
    const create = async (inputs: Record<string, unknown>) => (await dispatch("NatRule", "create", [inputs])) as Made;
    const theirs = checked(nat, { kind: "masquerade", source: "192.168.5.0/24", outInterface: "r1", __owner: "proj/two@0123abcd/NatRule/out" });
    const other = await create(theirs as never);
    const mine = { kind: "masquerade", source: "192.168.5.0/24", outInterface: "r1", __owner: "proj/one@0123abcd/NatRule/out" };
    const taken = await create(checked(nat, { ...mine, adopt: true }) as never);
    expect((await rules()).map((r: any) => r.comment)).toEqual([ownerTag(mine.__owner)]);
    // The other's: gone from its refresh, and its delete leaves the rule.
    expect(await nat.read(other.id, other.outs as never)).toEqual({});
    // Its update is refused (writing it again would make two rules), and changes nothing.
    await expect(dispatch("NatRule", "update", [other.id, other.outs, other.outs])).rejects.toThrow(/was taken over by nslab NatRule "out" of stack proj\/one@0123abcd \(adopt\) since this resource last wrote it.*set adopt: true to take it back/);
    expect((await rules()).map((r: any) => r.comment)).toEqual([ownerTag(mine.__owner)]);
    // An identical rule of another stack made without adopt coexists: an update of the
    // first, whose own rule went (flushed by hand), writes it again beside it.
    const third = await create(checked(nat, { kind: "masquerade", source: "192.168.5.0/24", outInterface: "r1", __owner: "proj/three@0123abcd/NatRule/out" }) as never);
    const fourth = await create(checked(nat, { kind: "masquerade", source: "192.168.5.0/24", outInterface: "r1", __owner: "proj/four@0123abcd/NatRule/out" }) as never);
    const handle = (await rules()).find((r: any) => r.comment === ownerTag("proj/three@0123abcd/NatRule/out")).handle;
    await nsRun("nft", "delete", "rule", "inet", "nslab", "postrouting", "handle", String(handle));
    await dispatch("NatRule", "update", [third.id, third.outs, third.outs]);
    expect((await rules()).map((r: any) => r.comment).sort()).toEqual([ownerTag(mine.__owner), ownerTag("proj/three@0123abcd/NatRule/out"), ownerTag("proj/four@0123abcd/NatRule/out")].sort());
    await dispatch("NatRule", "delete", [third.id, third.outs]);
    await dispatch("NatRule", "delete", [fourth.id, fourth.outs]);
    await dispatch("NatRule", "delete", [other.id, other.outs]);
    expect((await rules()).map((r: any) => r.comment)).toEqual([ownerTag(mine.__owner)]);
    await dispatch("NatRule", "delete", [taken.id, taken.outs]);
    expect(await nsRun("nft", "list", "tables")).not.toContain("nslab");

    // One added by hand, without a comment (and only an outInterface: family from none).
    await nsRun("nft", "add", "table", "inet", "nslab");
    await nsRun("nft", "add", "chain", "inet", "nslab", "postrouting", "{ type nat hook postrouting priority srcnat; policy accept; }");
    await nsRun("nft", "add", "rule", "inet", "nslab", "postrouting", "oifname", "r1", "masquerade");
    const byHand = { kind: "masquerade", outInterface: "r1", __owner: "proj/one@0123abcd/NatRule/hand" };
    const plain = await nat.create(checked(nat, byHand));
    expect((await rules()).map((r: any) => r.comment ?? null)).toEqual([null, ownerTag(byHand.__owner)]);
    await nat.delete(plain.id, plain.outs);
    const adopted = await nat.create(checked(nat, { ...byHand, adopt: true }));
    expect((await rules()).map((r: any) => r.comment ?? null)).toEqual([ownerTag(byHand.__owner)]);
    // A rule that differs (another interface) is not taken: one of its own is added.
    const differs = { kind: "masquerade", outInterface: "r0", adopt: true, __owner: "proj/one@0123abcd/NatRule/differs" };
    const fresh = await nat.create(checked(nat, differs));
    expect((await rules()).map((r: any) => r.comment)).toEqual([ownerTag(byHand.__owner), ownerTag(differs.__owner)]);
    await nat.delete(fresh.id, fresh.outs);
    await nat.delete(adopted.id, adopted.outs);
    expect(await nsRun("nft", "list", "tables")).not.toContain("nslab");
  });

  it("NatRule: a namespace that is not there is named, and no file is made in its place (the lock opens, never creates)", async () => {
    const missing = uniq("knone");
    const rule = nat.check(undefined, { namespace: missing, kind: "masquerade", __owner: owner("missing-ns") }).inputs;
    await expect(nat.create(rule)).rejects.toThrow(new RegExp(`namespace "${missing}" does not exist`));
    await expect(nat.update(`${missing}/x`, rule, rule)).rejects.toThrow(new RegExp(`namespace "${missing}"`));
    // The lock itself, asked directly (a namespace removed between the check and the lock).
    await expect(withNetnsLock(missing, "t", async () => "ran")).rejects.toThrow(new RegExp(`cannot lock namespace "${missing}": it does not exist`));
    expect(fs.existsSync(`/run/netns/${missing}`)).toBe(false);
    // The name stays free: a namespace of that name is made, and the lock then works there.
    await must("ip", ["netns", "add", missing]);
    try {
      expect(await withNetnsLock(missing, "t", async () => "ran")).toBe("ran");
    } finally {
      await must("ip", ["netns", "delete", missing]);
    }
  });

  it("NatRule: a UDP port forward moved to another host, then removed: a client sending from the same port follows at once (its tracked flow is ended)", async () => {
    const [gw, wan, h1, h2] = ["kngw", "knwan", "knh1", "knh2"].map(uniq);
    const servers: ReturnType<typeof spawn>[] = [];
    try {
      for (const n of [gw, wan, h1, h2]) await ipByHand("netns", "add", n);
      await ipByHand("link", "add", "g-wan", "netns", gw, "type", "veth", "peer", "w0", "netns", wan);
      await ipByHand("link", "add", "g-h1", "netns", gw, "type", "veth", "peer", "e0", "netns", h1);
      await ipByHand("link", "add", "g-h2", "netns", gw, "type", "veth", "peer", "e0", "netns", h2);
      for (const [n, dev, cidr] of [[gw, "g-wan", "203.0.113.1/24"], [wan, "w0", "203.0.113.2/24"], [gw, "g-h1", "192.168.50.1/24"], [h1, "e0", "192.168.50.2/24"], [gw, "g-h2", "192.168.51.1/24"], [h2, "e0", "192.168.51.3/24"]]) {
        await ipByHand("-n", n, "addr", "add", cidr, "dev", dev);
        await ipByHand("-n", n, "link", "set", dev, "up");
      }
      for (const n of [gw, wan, h1, h2]) await ipByHand("-n", n, "link", "set", "lo", "up");
      await ipByHand("-n", h1, "route", "add", "default", "via", "192.168.50.1");
      await ipByHand("-n", h2, "route", "add", "default", "via", "192.168.51.1");
      await must("ip", ["netns", "exec", gw, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      // A UDP echo on port 5353 in each host, answering with its name.
      for (const [n, name] of [[h1, "h1"], [h2, "h2"]]) {
        servers.push(spawn("ip", ["netns", "exec", n, "python3", "-c", `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(("",5353))\nwhile True:\n  d,a=s.recvfrom(100); s.sendto(b"${name}",a)`], { stdio: "ignore" }));
      }
      await new Promise((r) => setTimeout(r, 300));
      // One datagram from the outside, always from port 40000: who answers.
      const ask = async () =>
        (await sh("ip", ["netns", "exec", wan, "python3", "-c", 'import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(("",40000)); s.settimeout(1)\ns.sendto(b"x",("203.0.113.1",5353))\ntry: print(s.recv(100).decode())\nexcept Exception as e: print(type(e).__name__)'])).stdout.trim();
      const forward = (toAddress: string) => {
        const r = nat.check(undefined, { namespace: gw, kind: "dnat", protocol: "udp", inInterface: "g-wan", port: 5353, toAddress, __owner: owner("udp-forward") });
        expect(r.failures).toEqual([]);
        return r.inputs;
      };
      const { id, outs } = await nat.create(forward("192.168.50.2"));
      expect(await ask()).toBe("h1");
      const { outs: moved } = await nat.update(id, outs, forward("192.168.51.3"));
      expect(await ask()).toBe("h2");
      await nat.delete(id, moved);
      expect(await ask()).not.toBe("h2");
    } finally {
      for (const p of servers) p.kill("SIGKILL");
      for (const n of [gw, wan, h1, h2]) await ipByHand("netns", "delete", n).catch(() => undefined);
    }
  });

  it("NatRule: 32 rules created concurrently in one namespace all land; deleting concurrently empties the table", async () => {
    const rules = Array.from({ length: 32 }, (_, n) =>
      checked(nat, { kind: "dnat", protocol: "tcp", inInterface: "r1", port: 10000 + n, toAddress: "192.168.1.3", toPort: 80, __owner: owner(`c${n}`) }),
    );
    const made = await Promise.all(rules.map((r) => nat.create(r)));
    const listing = await nsRun("nft", "-a", "list", "table", "inet", "nslab");
    for (let n = 0; n < 32; n++) expect(listing).toContain(`tcp dport ${10000 + n} dnat ip to 192.168.1.3:80`);
    expect(listing.match(/comment "nslab:/g)).toHaveLength(32);
    for (const r of made) expect((await nat.read(r.id, r.outs)).id).toBe(r.id);
    await Promise.all(made.map((r) => nat.delete(r.id, r.outs)));
    expect(await nsRun("nft", "list", "tables")).not.toContain("nslab");
  });

  it("NatRule: the expression text round-trips through the kernel's JSON", () => {
    const i = checked(nat, { kind: "dnat", protocol: "udp", inInterface: "r1", destination: "fd00::1", port: 53, toAddress: "fd00::3", toPort: 5353 });
    expect(ruleExpression(i)).toBe('iifname "r1" ip6 daddr fd00::1/128 udp dport 53 dnat ip6 to [fd00::3]:5353');
    const parsed = parseRule({
      family: "inet",
      table: "nslab",
      chain: "prerouting",
      handle: 1,
      expr: [
        { match: { op: "==", left: { meta: { key: "iifname" } }, right: "r1" } },
        { match: { op: "==", left: { payload: { protocol: "ip6", field: "daddr" } }, right: "fd00::1" } },
        { match: { op: "==", left: { payload: { protocol: "udp", field: "dport" } }, right: 53 } },
        { dnat: { family: "ip6", addr: "fd00::3", port: 5353 } },
      ],
    });
    expect(parsed).toEqual({ inInterface: "r1", destination: "fd00::1/128", family: "ipv6", protocol: "udp", port: 53, kind: "dnat", toAddress: "fd00::3", toPort: 5353 });
  });
});
