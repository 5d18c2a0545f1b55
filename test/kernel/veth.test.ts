import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bridgeKind } from "../../provider/bridge";
import * as kernel from "../../provider/kernel";
import { namespaceKind } from "../../provider/namespace";
import { routeKind } from "../../provider/route";
import { ownerTag } from "../../provider/resource";
import { VethInputs, vethKind as veth } from "../../provider/veth";
import { ipByHand, linkByHand, must, OWNER, uniq } from "../helpers/kernel";

const nsA = uniq("kva");
const nsB = uniq("kvb");
const owner = `${OWNER}/veth`;

function inputs(over: Partial<Record<string, unknown>> = {}): VethInputs {
  const { inputs, failures } = veth.check(undefined, {
    a: { name: "v-a", namespace: nsA, addresses: ["192.168.1.1/24"] },
    b: { name: "v-b", namespace: nsB, addresses: ["192.168.1.2/24"] },
    __owner: owner,
    ...over,
  });
  expect(failures).toEqual([]);
  return inputs;
}

/** Namespaces made for one test (three hosts of a small topology), deleted after `body`. */
async function withNamespaces(prefixes: string[], body: (names: string[]) => Promise<void>): Promise<void> {
  const names = prefixes.map(uniq);
  for (const name of names) await namespaceKind.create(namespaceKind.check(undefined, { name, __owner: `${OWNER}/${name}` }).inputs);
  try {
    await body(names);
  } finally {
    for (const name of names) await ipByHand("netns", "delete", name).catch(() => undefined);
  }
}

/** One echo with one second to answer, from `netns`: whether it came back. */
const pingsFrom = (netns: string) => (to: string) =>
  ipByHand("netns", "exec", netns, "ping", "-n", "-c", "1", "-W", "1", to).then(
    () => true,
    () => false,
  );

/**
 * `dev` in `netns` asks for an unresolved neighbour again every 30 s instead of every
 * second: a first packet that waits for its next question fails a one-second ping
 * however long the steps before it take, instead of only in the last second before the
 * entry fails.
 */
async function asksSlowly(netns: string, dev: string): Promise<void> {
  for (const family of ["ipv4", "ipv6"]) await must("ip", ["netns", "exec", netns, "sysctl", "-qw", `net.${family}.neigh.${dev}.retrans_time_ms=30000`]);
}

describe("VethPair on the kernel", () => {
  beforeAll(async () => {
    for (const name of [nsA, nsB]) await namespaceKind.create(namespaceKind.check(undefined, { name, __owner: `${OWNER}/${name}` }).inputs);
  });
  afterAll(async () => {
    for (const name of [nsA, nsB]) await ipByHand("netns", "delete", name).catch(() => undefined);
  });

  it("runs the whole lifecycle: create, read, in-place updates, delete twice", async () => {
    const want = inputs({ mtu: 1400 });
    const { id, outs } = await veth.create(want);
    const a = await linkByHand("v-a", nsA);
    const b = await linkByHand("v-b", nsB);
    expect(a).toMatchObject({ mtu: 1400, ifalias: ownerTag(owner), linkinfo: { info_kind: "veth" } });
    expect(a!.flags).toContain("UP");
    expect(b!.addr_info.map((x: any) => `${x.local}/${x.prefixlen}`)).toContain("192.168.1.2/24");
    expect(outs.a.mac).toBe(a!.address);

    // Read back: every field as created, and no diff against the program.
    const read = await veth.read(id, outs);
    expect(read.props).toEqual(outs);
    expect(veth.diff(id, read.props!, want).changes).toBe(false);
    // Either end's MTU changed by hand is drift, and update puts it back.
    for (const [end, ns] of [["v-a", nsA], ["v-b", nsB]] as const) {
      await ipByHand("-n", ns, "link", "set", "dev", end, "mtu", "1300");
      const drifted = await veth.read(id, outs);
      expect(drifted.props!.mtu).toBe(1300);
      expect(veth.diff(id, drifted.props!, want).changes).toBe(true);
      await veth.update(id, drifted.props!, want);
      expect((await linkByHand(end, ns))!.mtu).toBe(1400);
    }

    // Each in-place property, keeping the interfaces (same ifindex).
    const ifindex = a!.ifindex;
    const changed = inputs({
      mtu: 9000,
      a: { name: "v-a", namespace: nsA, addresses: ["192.168.1.1/24", "fd00::1/64"], mac: "02:00:00:00:00:aa", up: false },
      b: { name: "v-b", namespace: nsB, addresses: ["192.168.1.3/24"] },
    });
    const d = veth.diff(id, outs, changed);
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const { outs: updated } = await veth.update(id, outs, changed);
    const a2 = await linkByHand("v-a", nsA);
    const b2 = await linkByHand("v-b", nsB);
    expect(a2).toMatchObject({ ifindex, mtu: 9000, address: "02:00:00:00:00:aa" });
    expect(a2!.flags).not.toContain("UP");
    expect(a2!.addr_info.map((x: any) => x.local).sort()).toEqual(["192.168.1.1", "fd00::1"]);
    expect(b2!.addr_info.map((x: any) => x.local).filter((x: string) => !x.startsWith("fe80"))).toEqual(["192.168.1.3"]);
    expect(veth.diff(id, (await veth.read(id, updated)).props!, changed).changes).toBe(false);

    // Replace-only properties.
    expect(veth.diff(id, updated, inputs({ a: { name: "v-a2", namespace: nsA } })).replaces).toEqual(["a"]);
    expect(veth.diff(id, updated, inputs({ b: { name: "v-b", namespace: nsA } }))).toMatchObject({ replaces: ["b"], deleteBeforeReplace: true });

    await veth.delete(id, updated);
    expect(await linkByHand("v-a", nsA)).toBeUndefined();
    expect(await linkByHand("v-b", nsB)).toBeUndefined();
    expect(await veth.read(id, updated)).toEqual({});
    await veth.delete(id, updated);
  });

  it("changes an end's addresses without the namespace losing its default route: a new address, then the old primary removed while its subnet's secondary stays", async () => {
    const pair = (aAddresses: string[]) => inputs({ a: { name: "v-a", namespace: nsA, addresses: aAddresses }, b: { name: "v-b", namespace: nsB, addresses: ["192.168.1.1/24"] } });
    const { id, outs } = await veth.create(pair(["192.168.1.2/24"]));
    const gw = routeKind.check(undefined, { namespace: nsA, destination: "default", gateway: "192.168.1.1", __owner: `${OWNER}/veth-gw` }).inputs;
    await routeKind.create(gw);
    const defaultRoute = async () => (await must("ip", ["-n", nsA, "route", "show", "default"])).trim();
    const ping = () => must("ip", ["netns", "exec", nsA, "ping", "-c", "1", "-W", "1", "192.168.1.1"]);
    const promote = async () => (await must("ip", ["netns", "exec", nsA, "sysctl", "-n", "net.ipv4.conf.v-a.promote_secondaries"])).trim();
    const v4 = async () => (await linkByHand("v-a", nsA))!.addr_info.filter((x: any) => !x.local.includes(":")).map((x: any) => `${x.local}/${x.prefixlen}`);
    try {
      expect(await defaultRoute()).toMatch(/^default via 192\.168\.1\.1 dev v-a proto 151/);
      // The only address changed: the interface never goes without one.
      let cur = (await veth.update(id, outs, pair(["192.168.1.5/24"]))).outs;
      expect(await v4()).toEqual(["192.168.1.5/24"]);
      expect(await defaultRoute()).toMatch(/^default via 192\.168\.1\.1 dev v-a/);
      await ping();
      // A second address of the subnet (a secondary), then the primary removed: the
      // secondary stays (promoted), and promote_secondaries is back to its value after.
      cur = (await veth.update(id, cur, pair(["192.168.1.5/24", "192.168.1.20/24"]))).outs;
      expect(await promote()).toBe("0");
      cur = (await veth.update(id, cur, pair(["192.168.1.20/24"]))).outs;
      expect(await v4()).toEqual(["192.168.1.20/24"]);
      expect(await defaultRoute()).toMatch(/^default via 192\.168\.1\.1 dev v-a/);
      expect(await promote()).toBe("0");
      await ping();
      expect(veth.diff(id, (await veth.read(id, cur)).props!, pair(["192.168.1.20/24"])).changes).toBe(false);
      await veth.delete(id, cur);
    } finally {
      await routeKind.delete("", gw);
      await veth.delete(id, outs);
    }
  });

  it("announces an address given in place to an end that is up: a neighbour that knew it as another host's learns the new MAC, and traffic passes at the first try", async () => {
    const pair = (aAddresses: string[]) => inputs({ a: { name: "v-a", namespace: nsA, addresses: aAddresses }, b: { name: "v-b", namespace: nsB, addresses: ["192.168.1.1/24"] } });
    const { id, outs } = await veth.create(pair(["192.168.1.4/24"]));
    try {
      // Both sides know each other (a ping), and b still knows .3 as a host that left.
      await must("ip", ["netns", "exec", nsA, "ping", "-c", "1", "-W", "1", "192.168.1.1"]);
      await must("ip", ["-n", nsB, "neigh", "replace", "192.168.1.3", "lladdr", "02:de:ad:00:00:03", "dev", "v-b", "nud", "reachable"]);
      // A static neighbour of a's (setting the MAC flushes them all): kept.
      await must("ip", ["-n", nsA, "neigh", "replace", "192.168.1.77", "lladdr", "02:00:00:00:00:77", "dev", "v-a", "nud", "permanent"]);
      // a takes .3 (a sequential allocation after a host left), in place.
      const cur = (await veth.update(id, outs, pair(["192.168.1.3/24"]))).outs;
      expect(await must("ip", ["-n", nsA, "neigh", "show", "192.168.1.77", "dev", "v-a"])).toMatch(/lladdr 02:00:00:00:00:77 PERMANENT/);
      const mac = (await linkByHand("v-a", nsA))!.address;
      expect(await must("ip", ["-n", nsB, "neigh", "show", "192.168.1.3", "dev", "v-b"])).toContain(`lladdr ${mac}`);
      await must("ip", ["netns", "exec", nsA, "ping", "-c", "1", "-W", "1", "192.168.1.1"]);
      await must("ip", ["netns", "exec", nsB, "ping", "-c", "1", "-W", "1", "192.168.1.3"]);
      expect((await must("ip", ["netns", "exec", nsA, "sysctl", "-n", "net.ipv4.conf.v-a.arp_notify"])).trim()).toBe("1");
      expect(veth.diff(id, (await veth.read(id, cur)).props!, pair(["192.168.1.3/24"])).changes).toBe(false);
    } finally {
      await veth.delete(id, outs);
    }
  });

  it("gives the pair a generation: each end's ifindex, counting the times it came back up; read keeps it, a pair made anew gets a new one", async () => {
    const pair = (up: boolean) => inputs({ a: { name: "v-a", namespace: nsA, addresses: ["192.168.1.1/24"], up } });
    const { id, outs } = await veth.create(pair(true));
    const [ia, ib] = [String((await linkByHand("v-a", nsA))!.ifindex), String((await linkByHand("v-b", nsB))!.ifindex)];
    expect(outs.generation).toBe(`${ia}/${ib}`);
    const down = (await veth.update(id, outs, pair(false))).outs;
    expect(down.generation).toBe(`${ia}/${ib}`);
    const upAgain = (await veth.update(id, down, pair(true))).outs;
    expect(upAgain.generation).toBe(`${ia}+1/${ib}`);
    expect((await veth.read(id, upAgain)).props).toEqual(upAgain);
    // The generation is an output alone: read's inputs leave it out, and diff ignores it
    // (a state without one is updated once, to record it).
    expect((await veth.read(id, upAgain)).inputs).not.toHaveProperty("generation");
    expect(veth.diff(id, upAgain, pair(true)).changes).toBe(false);
    const { generation: _g, ...legacy } = upAgain;
    expect(veth.diff(id, legacy as never, pair(true))).toMatchObject({ changes: true, replaces: [] });
    expect((await veth.read(id, legacy as never)).props!.generation).toBe(`${ia}/${ib}`);
    await veth.delete(id, upAgain);
    const again = await veth.create(pair(true));
    expect(again.outs.generation).not.toBe(`${ia}/${ib}`);
    expect(again.outs.generation).toBe(`${(await linkByHand("v-a", nsA))!.ifindex}/${(await linkByHand("v-b", nsB))!.ifindex}`);
    await veth.delete(again.id, again.outs);
  });

  it("an IPv6 address given another prefix length renews the end's generation: the kernel cleared it as its routes' source, and the route written again has it back", async () => {
    const pair = (address: string) => inputs({ a: { name: "v-a", namespace: nsA, addresses: ["192.168.1.2/24", address] }, b: { name: "v-b", namespace: nsB, addresses: ["192.168.1.1/24", "fd00:7::2/64"] } });
    const { id, outs } = await veth.create(pair("fd00:7::1/64"));
    const route = (links: string[]) => routeKind.check(undefined, { namespace: nsA, destination: "fd00:9::/64", gateway: "fd00:7::2", source: "fd00:7::1", __links: links, __owner: `${OWNER}/veth-src` }).inputs;
    let cur = outs;
    try {
      await routeKind.create(route([outs.generation!]));
      const src = async () => (await ipByHand("-n", nsA, "-6", "route", "show", "fd00:9::/64")).trim();
      expect(await src()).toMatch(/ src fd00:7::1 /);
      const moved = (await veth.update(id, cur, pair("fd00:7::1/56"))).outs;
      cur = moved;
      expect(await src()).not.toMatch(/ src /);
      // The generation changed, so the route (which depends on the pair) is written again.
      const [a] = moved.generation!.split("/");
      expect(a).toBe(`${outs.generation!.split("/")[0]}+1`);
      const before = route([outs.generation!]);
      const after = route([moved.generation!]);
      expect(routeKind.diff("", before, after).changes).toBe(true);
      await routeKind.update("", before, after);
      expect(await src()).toMatch(/ src fd00:7::1 /);
      // Any other change keeps the generation.
      const same = (await veth.update(id, cur, inputs({ ...pair("fd00:7::1/56"), mtu: 1400 }))).outs;
      cur = same;
      expect(same.generation).toBe(moved.generation);
    } finally {
      await routeKind.delete("", route([]));
      await veth.delete(id, cur);
    }
  });

  it("a route written again because an interface it depends on changed stays missing while its link is down, and fails when it is refused for another reason", async () => {
    const pair = (up: boolean, address = "192.168.1.2/24") => inputs({ a: { name: "v-a", namespace: nsA, addresses: [address], up }, b: { name: "v-b", namespace: nsB, addresses: ["192.168.1.1/24"] } });
    const { id, outs } = await veth.create(pair(true));
    const route = (links: string[], over: Record<string, unknown> = {}) => routeKind.check(undefined, { namespace: nsA, destination: "default", gateway: "192.168.1.1", __links: links, __owner: `${OWNER}/veth-way`, ...over }).inputs;
    let cur = outs;
    try {
      const gw = route(["1"]);
      await routeKind.create(gw);
      // The link down: the kernel drops the route; written again (a dependency changed), it stays missing.
      cur = (await veth.update(id, cur, pair(false))).outs;
      await expect(routeKind.update("", gw, route(["2"]))).resolves.toBeDefined();
      const dev = route(["1"], { destination: "10.77.0.0/24", gateway: undefined, device: "v-a" });
      await expect(routeKind.update("", dev, route(["2"], { destination: "10.77.0.0/24", gateway: undefined, device: "v-a" }))).resolves.toBeDefined();
      // Up, in another subnet: the gateway is off every subnet, which is an error, not a way that is down.
      cur = (await veth.update(id, cur, pair(true, "192.168.9.2/24"))).outs;
      await expect(routeKind.update("", gw, route(["3"]))).rejects.toThrow(/No interface in namespace "[^"]+" has a subnet that holds 192\.168\.1\.1 \(its addresses now: 192\.168\.9\.2\/24 on v-a\)/);
      // A change of its own is never excused either.
      cur = (await veth.update(id, cur, pair(false))).outs;
      await expect(routeKind.update("", gw, route(["2"], { gateway: "192.168.1.254" }))).rejects.toThrow();
    } finally {
      await routeKind.delete("", route([]));
      await veth.delete(id, cur);
    }
  });

  it("IPv6 is usable at once: a router forwards the first packet right after its pairs are made, and an end set down and up again keeps its IPv6 addresses", async () => {
    // h1 fd01::2 --e6/r6a-- router fd01::1 | fd02::1 --r6b/e6-- h2 fd02::2
    await withNamespaces(["k6a", "k6r", "k6b"], async ([h1, rt, h2]) => {
      const pair = (host: string, hostAddress: string, port: string, routerAddress: string, up = true) =>
        inputs({ a: { name: "e6", namespace: host, addresses: [hostAddress], up }, b: { name: port, namespace: rt, addresses: [routerAddress] }, __owner: `${owner}/${port}` });
      await must("ip", ["netns", "exec", rt, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
      const left = await veth.create(pair(h1, "fd01::2/64", "r6a", "fd01::1/64"));
      await veth.create(pair(h2, "fd02::2/64", "r6b", "fd02::1/64"));
      await ipByHand("-n", h1, "-6", "route", "add", "default", "via", "fd01::1");
      await ipByHand("-n", h2, "-6", "route", "add", "default", "via", "fd02::1");
      // One echo, one second: a neighbour solicitation lost (the router's link-local
      // still tentative, or IPv6 not yet started on an end) is resent only after a second.
      const ping = () => must("ip", ["netns", "exec", h1, "ping", "-6", "-n", "-c", "1", "-W", "1", "fd02::2"]);
      await ping();
      for (const dev of ["r6a", "r6b"]) {
        expect((await must("ip", ["netns", "exec", rt, "sysctl", "-n", `net.ipv6.conf.${dev}.accept_dad`, `net.ipv6.conf.${dev}.keep_addr_on_down`])).split("\n").slice(0, 2)).toEqual(["0", "1"]);
      }

      // Down: the update keeps its IPv6 address (the kernel would flush it), and verifies.
      const { outs: down } = await veth.update(left.id, left.outs, pair(h1, "fd01::2/64", "r6a", "fd01::1/64", false));
      expect(down.a.up).toBe(false);
      expect(await ipByHand("-n", h1, "-6", "address", "show", "dev", "e6")).toContain("fd01::2/64");
      // Up again: the default route went with the link (the kernel's doing; a Route that
      // depends on the pair is written again), and the first packet passes.
      await veth.update(left.id, down, pair(h1, "fd01::2/64", "r6a", "fd01::1/64"));
      await ipByHand("-n", h1, "-6", "route", "replace", "default", "via", "fd01::1");
      await ping();
    });
  });

  it("an end set up again is announced: a router that sent to it while it was down (its entry still unresolved) reaches it at the first packet, IPv4 and IPv6", async () => {
    // h1 --e6/ra-- router --rb/e6-- h2; h2's end goes down and up.
    await withNamespaces(["kua", "kur", "kub"], async ([h1, rt, h2]) => {
      const pair = (host: string, hostAddresses: string[], port: string, routerAddresses: string[], up = true) =>
        inputs({ a: { name: "e6", namespace: host, addresses: hostAddresses, up }, b: { name: port, namespace: rt, addresses: routerAddresses }, __owner: `${owner}/${port}` });
      const right = (up: boolean) => pair(h2, ["10.61.2.2/24", "fd02::2/64"], "rb", ["10.61.2.1/24", "fd02::1/64"], up);
      await must("ip", ["netns", "exec", rt, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
      await veth.create(pair(h1, ["10.61.1.2/24", "fd01::2/64"], "ra", ["10.61.1.1/24", "fd01::1/64"]));
      const made = await veth.create(right(true));
      const defaults = async (host: string, v4: string, v6: string) => {
        await ipByHand("-n", host, "route", "replace", "default", "via", v4);
        await ipByHand("-n", host, "-6", "route", "replace", "default", "via", v6);
      };
      await defaults(h1, "10.61.1.1", "fd01::1");
      await defaults(h2, "10.61.2.1", "fd02::1");
      await asksSlowly(rt, "rb");
      const ping = pingsFrom(h1);
      expect([await ping("10.61.2.2"), await ping("fd02::2")]).toEqual([true, true]);

      const { outs: down } = await veth.update(made.id, made.outs, right(false));
      // Sent to while it is down: the router's entries for h2 are left unresolved.
      expect([await ping("10.61.2.2"), await ping("fd02::2")]).toEqual([false, false]);
      const unresolved = await ipByHand("-n", rt, "neigh", "show", "dev", "rb");
      const unresolved6 = await ipByHand("-n", rt, "-6", "neigh", "show", "dev", "rb");
      expect(unresolved).toMatch(/10\.61\.2\.2 +INCOMPLETE/);
      expect(unresolved6).toMatch(/fd02::2 +INCOMPLETE/);

      await veth.update(made.id, down, right(true));
      // The default routes went with the link (a Route that depends on the pair is written again).
      await defaults(h2, "10.61.2.1", "fd02::1");
      expect([await ping("10.61.2.2"), await ping("fd02::2")]).toEqual([true, true]);
    });
  });

  it("a bridge port set up again makes its peer announce: a host on the bridge that sent to the other end while the port was down reaches it at the first packet", async () => {
    // h1 --(port p1)-- sw0 --(port p2)-- h2, all ports in namespace sw; p2 goes down and up.
    await withNamespaces(["kpa", "kps", "kpb"], async ([h1, sw, h2]) => {
      await ipByHand("-n", sw, "link", "add", "sw0", "type", "bridge");
      await ipByHand("-n", sw, "link", "set", "sw0", "up");
      const pair = (host: string, addresses: string[], port: string, up = true) =>
        inputs({ a: { name: "e0", namespace: host, addresses }, b: { name: port, namespace: sw, master: "sw0", up }, __owner: `${owner}/${port}` });
      await veth.create(pair(h1, ["10.62.0.2/24", "fd62::2/64"], "p1"));
      const right = (up: boolean) => pair(h2, ["10.62.0.3/24", "fd62::3/64"], "p2", up);
      const made = await veth.create(right(true));
      await asksSlowly(h1, "e0");
      const ping = pingsFrom(h1);
      expect([await ping("10.62.0.3"), await ping("fd62::3")]).toEqual([true, true]);
      // Forget h2 (as after a while), so the pings below must ask for it.
      await ipByHand("-n", h1, "neigh", "flush", "dev", "e0");

      const { outs: down } = await veth.update(made.id, made.outs, right(false));
      expect([await ping("10.62.0.3"), await ping("fd62::3")]).toEqual([false, false]);
      expect(await ipByHand("-n", h1, "neigh", "show", "dev", "e0")).toMatch(/10\.62\.0\.3 +INCOMPLETE/);
      expect(await ipByHand("-n", h1, "-6", "neigh", "show", "dev", "e0")).toMatch(/fd62::3 +INCOMPLETE/);

      const { outs: back } = await veth.update(made.id, down, right(true));
      expect([await ping("10.62.0.3"), await ping("fd62::3")]).toEqual([true, true]);
      // The announcement changed nothing recorded: no drift, the generation counts one up.
      expect(veth.diff(made.id, (await veth.read(made.id, back)).props!, right(true)).changes).toBe(false);
    });
  });

  it("a pair made anew announces its end's addresses once the peer is up: a host on the bridge that knew them as a removed host's reaches the new one at the first packet, IPv4 and IPv6", async () => {
    // h1 --(p1)-- sw0 --(p2)-- old host, removed; then --(p3)-- new host, same addresses.
    await withNamespaces(["kma", "kms", "kmb", "kmc"], async ([h1, sw, gone, h3]) => {
      await ipByHand("-n", sw, "link", "add", "sw0", "type", "bridge");
      await ipByHand("-n", sw, "link", "set", "sw0", "up");
      const pair = (host: string, addresses: string[], port: string) =>
        inputs({ a: { name: "e0", namespace: host, addresses }, b: { name: port, namespace: sw, master: "sw0" }, __owner: `${owner}/${port}` });
      await veth.create(pair(h1, ["10.63.0.2/24", "fd63::2/64"], "p1"));
      const old = await veth.create(pair(gone, ["10.63.0.3/24", "fd63::3/64"], "p2"));
      const ping = pingsFrom(h1);
      expect([await ping("10.63.0.3"), await ping("fd63::3")]).toEqual([true, true]);
      const oldMac = (await linkByHand("e0", gone))!.address;
      await veth.delete(old.id, old.outs);
      // h1 still holds the removed host's MAC for both addresses.
      expect(await ipByHand("-n", h1, "neigh", "show", "10.63.0.3", "dev", "e0")).toContain(`lladdr ${oldMac}`);
      expect(await ipByHand("-n", h1, "-6", "neigh", "show", "fd63::3", "dev", "e0")).toContain(`lladdr ${oldMac}`);

      const made = await veth.create(pair(h3, ["10.63.0.3/24", "fd63::3/64"], "p3"));
      const mac = (await linkByHand("e0", h3))!.address;
      expect(mac).not.toBe(oldMac);
      expect(await ipByHand("-n", h1, "neigh", "show", "10.63.0.3", "dev", "e0")).toContain(`lladdr ${mac}`);
      expect(await ipByHand("-n", h1, "-6", "neigh", "show", "fd63::3", "dev", "e0")).toContain(`lladdr ${mac}`);
      expect([await ping("10.63.0.3"), await ping("fd63::3")]).toEqual([true, true]);
      // The announcement leaves no entry for the host's own address behind.
      expect(await ipByHand("-n", h3, "neigh", "show", "10.63.0.3")).toBe("");
      expect(veth.diff(made.id, (await veth.read(made.id, made.outs)).props!, pair(h3, ["10.63.0.3/24", "fd63::3/64"], "p3")).changes).toBe(false);
    });
  });

  it("attaches to and detaches from a bridge in place", async () => {
    const br = uniq("kbr");
    const brIn = bridgeKind.check(undefined, { name: br, namespace: nsB, __owner: `${owner}/br` }).inputs;
    const bridge = await bridgeKind.create(brIn);
    const plain = inputs({ b: { name: "v-b", namespace: nsB } });
    const { id, outs } = await veth.create(plain);
    const ifindex = (await linkByHand("v-b", nsB))!.ifindex;
    const ported = inputs({ b: { name: "v-b", namespace: nsB, master: br } });
    expect(veth.diff(id, outs, ported)).toMatchObject({ changes: true, replaces: [] });
    const { outs: o2 } = await veth.update(id, outs, ported);
    expect(await linkByHand("v-b", nsB)).toMatchObject({ ifindex, master: br });
    const { outs: o3 } = await veth.update(id, o2, plain);
    expect((await linkByHand("v-b", nsB))!.master).toBeUndefined();
    await veth.delete(id, o3);
    await bridgeKind.delete(bridge.id, bridge.outs);
  });

  it("refuses a foreign interface with the same name and leaves it alone; adopts a matching pair", async () => {
    await ipByHand("-n", nsA, "link", "add", "name", "v-a", "type", "veth", "peer", "name", "v-b", "netns", nsB);
    await expect(veth.create(inputs())).rejects.toMatchObject({ kind: "AlreadyExists" });
    expect(await linkByHand("v-a", nsA)).toBeDefined();
    // Not ours: read says gone and delete does nothing.
    const foreign = { ...inputs(), a: { ...inputs().a }, b: { ...inputs().b } };
    expect(await veth.read("x", foreign)).toEqual({});
    await veth.delete("x", foreign);
    expect(await linkByHand("v-a", nsA)).toBeDefined();

    const adopted = await veth.create(inputs({ adopt: true }));
    expect(await linkByHand("v-a", nsA)).toMatchObject({ ifalias: ownerTag(owner) });
    expect((await veth.read(adopted.id, adopted.outs)).id).toBe(adopted.id);
    await veth.delete(adopted.id, adopted.outs);
    expect(await linkByHand("v-a", nsA)).toBeUndefined();
  });

  it("adopt refuses two veths that are not each other's peers, and leaves them and their peers alone", async () => {
    // v-a (peer x-a, in nsB) and v-b (peer x-b, in nsA): two veths, not one pair.
    await ipByHand("-n", nsA, "link", "add", "name", "v-a", "type", "veth", "peer", "name", "x-a", "netns", nsB);
    await ipByHand("-n", nsB, "link", "add", "name", "v-b", "type", "veth", "peer", "name", "x-b", "netns", nsA);
    // And in one namespace: y-a (peer y-c) and y-b (peer y-d).
    await ipByHand("-n", nsA, "link", "add", "name", "y-a", "type", "veth", "peer", "name", "y-c");
    await ipByHand("-n", nsA, "link", "add", "name", "y-b", "type", "veth", "peer", "name", "y-d");
    try {
      await expect(veth.create(inputs({ adopt: true }))).rejects.toThrow(/cannot adopt: an interface with one of these names exists but the two are not a veth pair \(each the other's peer\)/);
      const same = inputs({ adopt: true, a: { name: "y-a", namespace: nsA }, b: { name: "y-b", namespace: nsA } });
      await expect(veth.create(same)).rejects.toThrow(/not a veth pair/);
      for (const [name, ns] of [["v-a", nsA], ["v-b", nsB], ["x-a", nsB], ["x-b", nsA], ["y-a", nsA], ["y-b", nsA]] as const) {
        expect((await linkByHand(name, ns))?.ifalias).toBeUndefined();
      }
      // Across four fresh namespaces, where both veths have ifindex 2 at both ends: x (in
      // n1, peer in n2) and z (in n3, peer in n4) look like peers of each other by
      // ifindex alone, and are not.
      const fresh = [uniq("kv1"), uniq("kv2"), uniq("kv3"), uniq("kv4")];
      for (const n of fresh) await ipByHand("netns", "add", n);
      try {
        await ipByHand("-n", fresh[0], "link", "add", "name", "x", "type", "veth", "peer", "name", "y", "netns", fresh[1]);
        await ipByHand("-n", fresh[2], "link", "add", "name", "z", "type", "veth", "peer", "name", "w", "netns", fresh[3]);
        expect([(await linkByHand("x", fresh[0]))!.ifindex, (await linkByHand("z", fresh[2]))!.ifindex]).toEqual([2, 2]);
        await expect(veth.create(inputs({ adopt: true, a: { name: "x", namespace: fresh[0] }, b: { name: "z", namespace: fresh[2] } }))).rejects.toThrow(/not a veth pair/);
        expect((await linkByHand("x", fresh[0]))!.ifalias).toBeUndefined();
        // The real pair across two namespaces is adopted.
        const real = await veth.create(inputs({ adopt: true, a: { name: "x", namespace: fresh[0] }, b: { name: "y", namespace: fresh[1] } }));
        await veth.delete(real.id, real.outs);
        expect(await linkByHand("z", fresh[2])).toBeDefined();
      } finally {
        for (const n of fresh) await ipByHand("netns", "delete", n).catch(() => undefined);
      }
      // Each end with its own peer is a pair (in one namespace too).
      const pairInOne = inputs({ adopt: true, a: { name: "y-a", namespace: nsA }, b: { name: "y-c", namespace: nsA } });
      const adopted = await veth.create(pairInOne);
      expect((await veth.read(adopted.id, adopted.outs)).id).toBe(adopted.id);
      await veth.delete(adopted.id, adopted.outs);
      expect(await linkByHand("y-a", nsA)).toBeUndefined();
    } finally {
      for (const [name, ns] of [["v-a", nsA], ["v-b", nsB], ["y-a", nsA], ["y-b", nsA]] as const) await ipByHand("-n", ns, "link", "del", name).catch(() => undefined);
    }
  });

  it("an adopt that fails half-way gives the pair its aliases back (the user's, or none), instead of leaving nslab's mark on it", async () => {
    await ipByHand("-n", nsA, "link", "add", "name", "v-a", "type", "veth", "peer", "name", "v-b", "netns", nsB);
    await ipByHand("-n", nsA, "link", "set", "dev", "v-a", "alias", "my uplink #1");
    await ipByHand("-n", nsA, "link", "add", "name", "vz1", "type", "veth", "peer", "name", "vz2");
    try {
      // The kernel refuses the master after the mark is written: a veth is no bridge.
      await expect(veth.create(inputs({ adopt: true, a: { name: "v-a", namespace: nsA, master: "vz1" } }))).rejects.toThrow(/a\.master "vz1" is a veth interface, not a bridge/);
      expect((await linkByHand("v-a", nsA))!.ifalias).toBe("my uplink #1");
      expect((await linkByHand("v-b", nsB))!.ifalias).toBeUndefined();
      // This resource's own pair left unmarked by a killed create (its intent record says
      // so), taken over and failing the same way: it keeps this resource's mark, so that
      // the next run takes it over again (an alias put back to none left it no one's).
      await ipByHand("-n", nsA, "link", "del", "v-a");
      await ipByHand("-n", nsA, "link", "add", "name", "v-a", "type", "veth", "peer", "name", "v-b", "netns", nsB);
      await kernel.intend(nsA, "link-v-a", ownerTag(owner), "test", owner);
      await expect(veth.create(inputs({ a: { name: "v-a", namespace: nsA, master: "vz1" } }))).rejects.toThrow(/not a bridge/);
      expect((await linkByHand("v-a", nsA))!.ifalias).toBe(ownerTag(owner));
      expect((await linkByHand("v-b", nsB))!.ifalias).toBe(ownerTag(owner));
    } finally {
      await ipByHand("-n", nsA, "link", "del", "v-a").catch(() => undefined);
      await ipByHand("-n", nsA, "link", "del", "vz1").catch(() => undefined);
    }
  });

  it("undoes its own work when create fails half-way", async () => {
    // Bypass check: the kernel itself refuses an IPv6 address on a link with MTU < 1280,
    // after the pair exists.
    const bad = { ...inputs(), mtu: 1000, a: { ...inputs().a, addresses: ["fd00::1/64"] } };
    await expect(veth.create(bad)).rejects.toThrow(/address add fd00::1\/64/);
    expect(await linkByHand("v-a", nsA)).toBeUndefined();
    expect(await linkByHand("v-b", nsB)).toBeUndefined();
  });

  it("fails clearly, leaving nothing, when a namespace or master is missing", async () => {
    await expect(veth.create(inputs({ a: { name: "v-a", namespace: "no-such-ns" } }))).rejects.toThrow(/a\.namespace "no-such-ns" does not exist/);
    await expect(veth.create(inputs({ b: { name: "v-b", namespace: nsB, master: "nobr" } }))).rejects.toThrow(/b\.master "nobr" does not exist/);
    expect(await linkByHand("v-a", nsA)).toBeUndefined();
  });

  it("sees drift: an address changed by hand, a link set down, an end deleted", async () => {
    const want = inputs();
    const { id, outs } = await veth.create(want);
    await ipByHand("-n", nsA, "addr", "del", "192.168.1.1/24", "dev", "v-a");
    await ipByHand("-n", nsA, "addr", "add", "192.168.1.9/24", "dev", "v-a");
    await ipByHand("-n", nsB, "link", "set", "v-b", "down");
    const read = await veth.read(id, outs);
    expect(read.inputs!.a.addresses).toEqual(["192.168.1.9/24"]);
    expect(read.inputs!.b.up).toBe(false);
    expect(veth.diff(id, read.props!, want)).toMatchObject({ changes: true, replaces: [] });
    const { outs: repaired } = await veth.update(id, read.props!, want);
    expect(veth.diff(id, (await veth.read(id, repaired)).props!, want).changes).toBe(false);
    await ipByHand("-n", nsB, "link", "del", "v-b");
    expect(await veth.read(id, repaired)).toEqual({});
    await veth.delete(id, repaired);
  });

  it("an update whose namespace is in the state but gone from the kernel (a reboot) says to run pulumi up --refresh", async () => {
    const gone = uniq("kvg");
    const want = inputs({ a: { name: "v-g", namespace: gone, addresses: ["192.168.9.1/24"] }, b: { name: "v-gb", namespace: nsB } });
    const err = await veth.update("id", { ...want }, want).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(new RegExp(`a\\.namespace "${gone}" does not exist\\. It is in the stack's state but not in the kernel .*reboot.*run \`pulumi up --refresh\``));
    // A create (not in the state yet) says how to order it, and mentions the reboot case too.
    const create = await veth.create(want).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(create?.message).toMatch(/Create it first \(nslab\.Namespace\).*pulumi up --refresh/);
    expect(await linkByHand("v-gb", nsB)).toBeUndefined();
  });
});
