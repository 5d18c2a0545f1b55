/**
 * Defaults that check fills in (pure, no kernel): stable MACs derived from the owner,
 * interface names from the resource name, and an IPv6 route family that is never
 * guessed from text.
 */
import { describe, expect, it } from "vitest";
import { bridgeKind } from "../../provider/bridge";
import { routeKind } from "../../provider/route";
import { stableMac } from "../../provider/resource";
import { tapKind } from "../../provider/tap";
import { vethKind } from "../../provider/veth";
import { convergeCommands, dropsPrimaryOfKept, linkInputs, linkOutputs, normaliseLink } from "../../provider/link";
import { checkMaster } from "../../sdk/bridge";

const owner = (kind: string, name: string) => `proj/dev/${kind}/${name}`;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

describe("stable MACs", () => {
  it("are locally administered unicast, the same for the same owner and role, different otherwise", () => {
    const m = stableMac(owner("Bridge", "br0"), "bridge");
    expect(m).toMatch(MAC);
    const first = parseInt(m.slice(0, 2), 16);
    expect(first & 0x02).toBe(0x02); // locally administered
    expect(first & 0x01).toBe(0); // unicast
    expect(stableMac(owner("Bridge", "br0"), "bridge")).toBe(m);
    expect(stableMac(owner("Bridge", "br1"), "bridge")).not.toBe(m);
    expect(stableMac("proj/other-stack/Bridge/br0", "bridge")).not.toBe(m);
    expect(stableMac(owner("VethPair", "l"), "a")).not.toBe(stableMac(owner("VethPair", "l"), "b"));
  });

  it("a bridge without mac gets its owner's stable MAC; a given mac wins; adopt keeps the live one", () => {
    const o = owner("Bridge", "br0");
    expect(bridgeKind.check(undefined, { name: "br0", __owner: o }).inputs.mac).toBe(stableMac(o, "bridge"));
    expect(bridgeKind.check(undefined, { name: "br0", mac: "02:AA:00:00:00:01", __owner: o }).inputs.mac).toBe("02:aa:00:00:00:01");
    expect(bridgeKind.check(undefined, { name: "br0", adopt: true, __owner: o }).inputs.mac).toBeUndefined();
  });

  it("veth ends and taps get stable MACs per role; a tun has none", () => {
    const o = owner("VethPair", "link");
    const v = vethKind.check(undefined, { a: { name: "x1" }, b: { name: "x2" }, __owner: o }).inputs;
    expect(v.a.mac).toBe(stableMac(o, "a"));
    expect(v.b.mac).toBe(stableMac(o, "b"));
    const t = owner("TapDevice", "tap0");
    expect(tapKind.check(undefined, { mode: "tap", __owner: t }).inputs.mac).toBe(stableMac(t, "tap"));
    expect(tapKind.check(undefined, { mode: "tun", __owner: owner("TapDevice", "tun0") }).inputs.mac).toBeUndefined();
  });

  it("outputs flag a MAC the program did not give, and the inputs read back leave it out (and the generation, an output alone)", () => {
    const live = normaliseLink({ ifindex: 3, ifname: "br0", flags: ["UP"], mtu: 1500, address: "0A:00:00:00:00:09" });
    const settings: { name: string; addresses: string[]; up: boolean; mac?: string } = { name: "br0", addresses: [], up: true };
    const unset = linkOutputs(settings, live);
    expect(unset).toEqual({ name: "br0", addresses: [], up: true, mac: "0a:00:00:00:00:09", macUnset: true, generation: "3" });
    expect(linkInputs(unset)).toEqual({ name: "br0", addresses: [], up: true });
    const given = linkOutputs({ ...settings, mac: "02:00:00:00:00:01" }, live);
    const { generation, ...givenInputs } = given;
    expect(generation).toBe("3");
    expect(linkInputs(given)).toEqual(givenInputs);
  });
});

describe("interface names default to the resource name", () => {
  it("Bridge and TapDevice take the resource name when it is a valid interface name", () => {
    const b = bridgeKind.check(undefined, { addresses: ["10.0.0.1/24"], __owner: owner("Bridge", "br0") });
    expect(b.failures).toEqual([]);
    expect(b.inputs.name).toBe("br0");
    const t = tapKind.check(undefined, { mode: "tap", __owner: owner("TapDevice", "tap0") });
    expect(t.failures).toEqual([]);
    expect(t.inputs.name).toBe("tap0");
    // A given name wins.
    expect(bridgeKind.check(undefined, { name: "sw1", __owner: owner("Bridge", "br0") }).inputs.name).toBe("sw1");
  });
});

describe("route family", () => {
  it("an IPv6 default route with only a device is IPv6, given by family or ::/0", () => {
    for (const news of [{ destination: "default", family: "ipv6", device: "eth0" }, { destination: "::/0", device: "eth0" }]) {
      const r = routeKind.check(undefined, news);
      expect(r.failures).toEqual([]);
      expect(r.inputs).toMatchObject({ destination: "default", family: "ipv6", device: "eth0" });
    }
    expect(routeKind.check(undefined, { destination: "default", device: "eth0" }).inputs.family).toBe("ipv4");
    expect(routeKind.check(undefined, { destination: "default", gateway: "fd00::1" }).inputs.family).toBe("ipv6");
  });
});

describe("a port's bridge is checked at preview by name and namespace", () => {
  it("one name may be a bridge in several namespaces; a port fails only where its namespace has none", () => {
    const bridges = new Map([["br0", new Set(["siteA", "siteB"])], ["br1", new Set([""])]]);
    expect(() => checkMaster(bridges, 'VethPair "a"', "b.", "br0", "siteA")).not.toThrow();
    expect(() => checkMaster(bridges, 'VethPair "b"', "b.", "br0", "siteB")).not.toThrow();
    expect(() => checkMaster(bridges, 'VethPair "c"', "b.", "br0", undefined)).toThrow(
      /VethPair "c": b\.master "br0" is a bridge in namespace "siteA" and namespace "siteB", but the port is in the program's namespace/,
    );
    expect(() => checkMaster(bridges, 'TapDevice "t"', "", "br1", "siteA")).toThrow(/is a bridge in the program's namespace, but the port is in namespace "siteA"/);
    expect(() => checkMaster(bridges, 'TapDevice "t"', "", "elsewhere", "siteA")).not.toThrow(); // not this program's
  });
});

describe("converging a just-made interface", () => {
  it("does not set again the MAC and MTU the creating command set, and sets what it did not", () => {
    const desired = { name: "v1", addresses: [], up: true, mac: "02:00:00:00:00:09", mtu: 1400 };
    const sets = (cmds: string[][]) => cmds.map((c) => c.slice(4).join(" ")).filter((c) => /^(address|mtu) /.test(c));
    expect(sets(convergeCommands(desired, undefined, "nslab:t", { mac: desired.mac, mtu: 1400 }))).toEqual([]);
    expect(sets(convergeCommands(desired, undefined, "nslab:t"))).toEqual(["mtu 1400", "address 02:00:00:00:00:09"]);
    expect(sets(convergeCommands(desired, undefined, "nslab:t", { mac: desired.mac }))).toEqual(["mtu 1400"]);
    // A live interface is compared as it is; what it was made with no longer counts.
    const live = normaliseLink({ ifindex: 3, ifname: "v1", flags: ["UP"], mtu: 1500, address: "02:00:00:00:00:01", ifalias: "nslab:t" });
    expect(sets(convergeCommands(desired, live, "nslab:t", { mac: desired.mac, mtu: 1400 }))).toEqual(["mtu 1400", "address 02:00:00:00:00:09"]);
  });
});

describe("changing a live interface's addresses", () => {
  const live = (addresses: string[]) =>
    normaliseLink({ ifindex: 3, ifname: "eth0", flags: ["UP"], mtu: 1500, address: "02:00:00:00:00:01", ifalias: "nslab:t", addr_info: addresses.map((a) => ({ local: a.split("/")[0], prefixlen: Number(a.split("/")[1]), scope: "global" })) } as never);
  const addressCommands = (from: string[], to: string[]) =>
    convergeCommands({ name: "eth0", addresses: to, up: true }, live(from), "nslab:t").filter((c) => c[0] === "address").map((c) => `${c[1]} ${c[2]}`);

  it("adds the new addresses before it removes the old ones (an interface without an IPv4 address loses its routes)", () => {
    expect(addressCommands(["10.0.1.2/24"], ["10.0.1.5/24"])).toEqual(["add 10.0.1.5/24", "del 10.0.1.2/24"]);
    expect(addressCommands(["10.0.1.2/24", "fd00::2/64"], ["10.0.1.2/24", "fd00::5/64"])).toEqual(["add fd00::5/64", "del fd00::2/64"]);
    // IPv4 keeps an address with two prefix lengths side by side.
    expect(addressCommands(["10.0.1.2/24"], ["10.0.1.2/16"])).toEqual(["add 10.0.1.2/16", "del 10.0.1.2/24"]);
  });

  it("removes an IPv6 address first when it comes back with another prefix length (the kernel keys IPv6 addresses by address)", () => {
    expect(addressCommands(["fd00::2/64", "fd00::9/64"], ["fd00::2/80"])).toEqual(["del fd00::2/64", "add fd00::2/80", "del fd00::9/64"]);
  });

  it("knows when a removed IPv4 address shares its subnet with one that stays (promote_secondaries is needed)", () => {
    const drops = (from: string[], to: string[]) => dropsPrimaryOfKept({ name: "eth0", addresses: to, up: true }, live(from));
    expect(drops(["10.0.1.2/24", "10.0.1.20/24"], ["10.0.1.20/24"])).toBe(true);
    expect(drops(["10.0.1.2/24"], ["10.0.1.5/24"])).toBe(true);
    expect(drops(["10.0.1.2/24"], ["10.0.5.2/24"])).toBe(false);
    expect(drops(["10.0.1.2/24"], ["10.0.1.2/24", "10.0.1.3/24"])).toBe(false);
    expect(drops(["10.0.1.2/24"], ["10.0.1.5/16"])).toBe(false);
    expect(drops(["fd00::2/64", "fd00::3/64"], ["fd00::3/64"])).toBe(false);
    expect(drops(["10.0.1.2/24"], ["10.0.1.2/24"])).toBe(false);
  });
});
