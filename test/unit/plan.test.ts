import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { interfaceName, overlaps, planNetwork } from "../../sdk/components/plan";
import { toAscii, toGraphviz, toMermaid, Topology } from "../../sdk/components/render";

/** A small seeded PRNG (mulberry32), so that property tests are repeatable. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const RUNS = 300;

describe("interfaceName", () => {
  it.each([
    [["lan", "ns1"], "lan-ns1"],
    [["eth", "lan"], "eth-lan"],
    [["br", "backbone"], "br-backbone"],
  ])("keeps short names readable: %j -> %s", (parts, want) => expect(interfaceName(...parts)).toBe(want));

  it("shortens long names to 15 characters with a stable hash suffix", () => {
    const n = interfaceName("datacenter", "webserver-01");
    expect(n).toMatch(/^datacenter-[0-9a-f]{4}$/);
    expect(n.length).toBeLessThanOrEqual(15);
    expect(interfaceName("datacenter", "webserver-01")).toBe(n);
    expect(interfaceName("datacenter", "webserver-02")).not.toBe(n);
  });

  it("property: valid, at most 15 characters, unique per host set, independent of other hosts", () => {
    const rand = rng(42);
    const word = (max: number) => Array.from({ length: 1 + Math.floor(rand() * max) }, () => "abcdefghijklmnopqrstuvwxyz0123456789-"[Math.floor(rand() * 37)]).join("").replace(/^-+/, "a");
    for (let run = 0; run < RUNS; run++) {
      const net = word(12);
      const hosts = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 40) }, () => word(20)))];
      const names = hosts.map((h) => interfaceName(net, h));
      for (const n of names) {
        expect(n.length).toBeLessThanOrEqual(15);
        expect(n).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/);
      }
      expect(new Set(names).size).toBe(names.length);
      // Insertion and removal rename nobody: a host's name depends only on (net, host).
      const fewer = hosts.filter(() => rand() < 0.5);
      for (const h of fewer) expect(interfaceName(net, h)).toBe(names[hosts.indexOf(h)]);
    }
  });
});

describe("planNetwork", () => {
  it("follows the walkthrough: gateway .1, hosts from .2", () => {
    const p = planNetwork("t", "192.168.1.0/24", [{ name: "ns1" }, { name: "ns2" }], true);
    expect(p).toEqual({ cidr: "192.168.1.0/24", prefixLength: 24, gateway: "192.168.1.1", hosts: [{ name: "ns1", address: "192.168.1.2" }, { name: "ns2", address: "192.168.1.3" }] });
  });

  it("pins fixed addresses and fills around them; IPv6 too", () => {
    const p = planNetwork("t", "fd00:1::/120", [{ name: "a" }, { name: "b", address: "fd00:1::1" }, { name: "c" }], "fd00:1::ff");
    expect(p.hosts).toEqual([{ name: "a", address: "fd00:1::2" }, { name: "b", address: "fd00:1::1" }, { name: "c", address: "fd00:1::3" }]);
    expect(p.gateway).toBe("fd00:1::ff");
  });

  it("an IPv6 /127 holds two hosts, the lower address included (RFC 6164: no subnet-router anycast address there)", () => {
    expect(planNetwork("t", "fd00:7::/127", [{ name: "a" }, { name: "b" }]).hosts).toEqual([{ name: "a", address: "fd00:7::" }, { name: "b", address: "fd00:7::1" }]);
    expect(planNetwork("t", "fd00:7::/127", [{ name: "a", address: "fd00:7::" }]).hosts).toEqual([{ name: "a", address: "fd00:7::" }]);
  });

  it.each([
    ["10.0.0.0/30", [{ name: "a" }, { name: "b" }], true, /holds 2 addresses but 2 hosts and a gateway/],
    ["10.0.0.0/24", [{ name: "a" }, { name: "a" }], false, /"a" is listed twice/],
    ["10.0.0.0/24", [{ name: "a" }], "10.0.1.1", /gateway 10.0.1.1 is outside 10.0.0.0\/24/],
    ["10.0.0.0/24", [{ name: "a", address: "10.0.0.1" }], "10.0.0.1", /host "a" and the gateway both have address 10.0.0.1/],
    // gateway: true is the first usable address; a host pinned there would move it.
    ["10.0.0.0/24", [{ name: "a", address: "10.0.0.1" }], true, /host "a" is pinned to 10\.0\.0\.1, the address gateway: true takes/],
    ["fd00:5::/64", [{ name: "a", address: "fd00:5::" }], false, /host "a" address fd00:5:: is fd00:5::\/64's subnet-router anycast address/],
    ["10.0.0.0/24", [{ name: "a", address: "10.0.0.255" }], false, /host "a" address 10\.0\.0\.255 is 10\.0\.0\.0\/24's broadcast address/],
    ["10.0.0.0/24", [], "fd00::1", /gateway fd00::1 is an IPv6 address, and 10\.0\.0\.0\/24 is IPv4/],
    ["10.0.0.5/24", [], false, /did you mean "10.0.0.0\/24"/],
    ["10.0.0.0/33", [], false, /not a network/],
  ] as const)("refuses %s %j gateway=%s", (cidr, hosts, gw, reason) => {
    expect(() => planNetwork('BridgedNetwork "lan"', cidr, [...hosts], gw)).toThrow(reason);
  });

  it("property: no overlap, all inside, stable when appending, removing the last, or removing around pinned hosts", () => {
    const rand = rng(7);
    for (let run = 0; run < RUNS; run++) {
      const len = 24 + Math.floor(rand() * 5);
      const capacity = 2 ** (32 - len) - 2;
      const gateway = rand() < 0.5;
      const count = Math.floor(rand() * (capacity - (gateway ? 1 : 0)));
      const hosts = Array.from({ length: count }, (_, i) => ({ name: `h${i}` }));
      const p = planNetwork("t", `10.${run % 256}.0.0/${len}`, hosts, gateway);
      const all = [...p.hosts.map((h) => h.address), ...(p.gateway ? [p.gateway] : [])];
      expect(new Set(all).size).toBe(all.length);
      for (const a of all) expect(overlaps(`${a}/32`, p.cidr)).toBe(true);
      if (count > 0) {
        const shorter = planNetwork("t", p.cidr, hosts.slice(0, -1), gateway);
        expect(shorter.hosts).toEqual(p.hosts.slice(0, -1));
      }
      if (count + (gateway ? 1 : 0) < capacity) {
        const longer = planNetwork("t", p.cidr, [...hosts, { name: "new" }], gateway);
        expect(longer.hosts.slice(0, -1)).toEqual(p.hosts);
      }
      // Pinned hosts never move when any other host is removed.
      if (count > 2) {
        const pinned = p.hosts.map((h) => ({ name: h.name, address: h.address }));
        const drop = Math.floor(rand() * count);
        const after = planNetwork("t", p.cidr, pinned.filter((_, i) => i !== drop), gateway ? p.gateway : undefined);
        expect(after.hosts).toEqual(p.hosts.filter((_, i) => i !== drop));
      }
    }
  });

  it('property: with allocation "stable", adding or removing any host moves no other host', () => {
    const rand = rng(99);
    let collisions = 0;
    for (let run = 0; run < RUNS; run++) {
      const len = 16 + Math.floor(rand() * 9);
      const gateway = rand() < 0.5;
      const names = [...new Set(Array.from({ length: 1 + Math.floor(rand() * 12) }, () => `host-${Math.floor(rand() * 1e6)}`))];
      const plan = (hosts: string[]) => planNetwork("t", `10.${run % 256}.0.0/${len}`, hosts.map((name) => ({ name })), gateway, "stable");
      let full;
      try {
        full = plan(names);
      } catch (err) {
        expect(String(err)).toMatch(/hashes to .* which host ".*" already has; pin one of them/);
        collisions++;
        continue;
      }
      const where = new Map(full.hosts.map((h) => [h.name, h.address]));
      expect(new Set(where.values()).size).toBe(names.length);
      if (gateway) expect([...where.values()]).not.toContain(full.gateway);
      // Remove a random subset, and insert a new host at a random place.
      const kept = names.filter(() => rand() < 0.6);
      const inserted = [...kept];
      inserted.splice(Math.floor(rand() * (kept.length + 1)), 0, `new-${run}`);
      for (const variant of [kept, inserted]) {
        let p;
        try {
          p = plan(variant);
        } catch {
          continue; // the new host collided: an error at preview, nobody moved
        }
        for (const h of p.hosts) if (where.has(h.name)) expect(h.address).toBe(where.get(h.name));
      }
    }
    expect(collisions).toBeLessThan(RUNS / 4);
  });

  it("overlaps", () => {
    expect(overlaps("10.0.0.0/8", "10.1.0.0/16")).toBe(true);
    expect(overlaps("10.1.0.0/16", "10.0.0.0/8")).toBe(true);
    expect(overlaps("10.0.0.0/24", "10.0.1.0/24")).toBe(false);
    expect(overlaps("10.0.0.0/8", "fd00::/8")).toBe(false);
  });
});

describe("renderings", () => {
  const lan: Topology = {
    kind: "BridgedNetwork",
    name: "lan",
    cidr: "192.168.1.0/24",
    bridge: { name: "br0" },
    gateway: { address: "192.168.1.1", on: "bridge" },
    hosts: [
      { name: "ns1", namespace: "ns1", address: "192.168.1.2", interface: "eth-lan", port: "lan-ns1" },
      { name: "ns2", namespace: "ns2", address: "192.168.1.3", interface: "eth-lan", port: "lan-ns2" },
    ],
  };
  it("mermaid and graphviz name every host and the bridge", () => {
    const m = toMermaid([lan]);
    expect(m).toMatch(/^graph LR/);
    expect(m).toContain('lan_ns1["ns1: eth-lan 192.168.1.2"] --- lan_br');
    const g = toGraphviz([lan]);
    expect(g).toContain('lan_br [label="br0\\nbridge 192.168.1.1", shape=hexagon];');
    expect(g).toContain("lan_ns2 -- lan_br;");
  });
  it("ascii draws hosts above their bridge", () => {
    const a = toAscii([lan]).split("\n");
    expect(a[1]).toMatch(/^\| ns1 +\|  \| ns2 +\|$/);
    expect(a[3]).toContain("192.168.1.2/24");
    expect(a.find((l) => l.includes("br0 (bridge 192.168.1.1) lan 192.168.1.0/24"))).toBeDefined();
  });
  it("one topology alone draws as a list of one; anything else is refused naming the call that works", () => {
    expect(toAscii(lan)).toBe(toAscii([lan]));
    // A NatGateway's namespace given as an Output is not drawn as the host's.
    const nat = (namespaceOutput?: true): Topology => ({ kind: "NatGateway", name: "nat", uplink: "up0", sources: ["10.0.0.0/24"], portForwards: [], ...(namespaceOutput ? { namespaceOutput } : {}) });
    expect(toAscii([nat()])).toBe("[NAT in host] masquerade 10.0.0.0/24 out of up0");
    expect(toAscii([nat(true)])).toBe("[NAT in a namespace given as an Output] masquerade 10.0.0.0/24 out of up0");
    expect(toMermaid(lan)).toBe(toMermaid([lan]));
    expect(toGraphviz(lan)).toBe(toGraphviz([lan]));
    // An Output passed unresolved (a JavaScript program): told to resolve it first.
    expect(() => toAscii(pulumi.output(lan) as never)).toThrow(/^nslab\.toAscii: an Output \(not resolved yet\) is not a component's topology; pass components' topology values, resolved: lan\.topology\.apply/);
    expect(() => toMermaid([lan, undefined as never])).toThrow(/nslab\.toMermaid: undefined is not a component's topology/);
    expect(() => toGraphviz([{ name: "x" } as never])).toThrow(/nslab\.toGraphviz: an object without a component's kind is not/);
  });
});
