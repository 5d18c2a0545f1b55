/**
 * Malformed inputs: each is refused by check (so `pulumi preview` fails before anything
 * is made), and the failure names the property at fault. check touches no kernel;
 * e2e/bad-input.test.ts proves the same through the engine with nothing created.
 */
import { describe, expect, it } from "vitest";
import { UNKNOWN } from "../../provider/validate";
import { bridgeKind } from "../../provider/bridge";
import { forwardingKind } from "../../provider/forwarding";
import { natKind } from "../../provider/nat";
import { routeKind } from "../../provider/route";
import { namespaceKind } from "../../provider/namespace";
import { tapKind } from "../../provider/tap";
import { vethKind } from "../../provider/veth";
import { dispatch } from "../../provider";
import { claimNames, releaseNames } from "../../provider/claims";

const A = { name: "veth-ns1", namespace: "ns1", addresses: ["192.168.1.1/24"] };
const B = { name: "veth-ns2", namespace: "ns2", addresses: ["192.168.1.2/24"] };

type Case = [string, { check: (o: undefined, n: Record<string, unknown>) => { failures: { property: string; reason: string }[] } }, Record<string, unknown>, string, RegExp];

const CASES: Case[] = [
  ["namespace name missing", namespaceKind, {}, "name", /required/],
  ["namespace name with a slash", namespaceKind, { name: "a/b" }, "name", /may only contain/],
  ["namespace name too long", namespaceKind, { name: "n".repeat(65) }, "name", /longer than 64/],
  ["veth end a missing", vethKind, { b: B }, "a", /a is required/],
  ["veth name too long", vethKind, { a: { ...A, name: "veth-with-long-name" }, b: B }, "a.name", /at most 15/],
  ["veth name with a space", vethKind, { a: A, b: { ...B, name: "veth ns2" } }, "b.name", /may only contain/],
  ["veth name reserved", vethKind, { a: { ...A, name: "default" }, b: B }, "a.name", /reserved/],
  ["veth ends with the same name in one namespace", vethKind, { a: { name: "x" }, b: { name: "x" } }, "b.name", /different names/],
  ["veth ends with the same address", vethKind, { a: A, b: { ...B, addresses: ["fd00::0:1/64", "192.168.1.1/30"] }, mtu: undefined }, "b.addresses", /a and b both hold "192\.168\.1\.1": the two ends of a pair are one link, on which an address must be unique\. Give each end its own address/],
  ["veth ends with the same IPv6 address, written two ways", vethKind, { a: { ...A, addresses: ["FD00::1/64"] }, b: { ...B, addresses: ["fd00:0::1/64"] } }, "b.addresses", /a and b both hold "fd00::1"/],
  ["veth namespace invalid", vethKind, { a: { ...A, namespace: "../etc" }, b: B }, "a.namespace", /may only contain/],
  ["veth address without prefix", vethKind, { a: { ...A, addresses: ["192.168.1.1"] }, b: B }, "a.addresses[0]", /prefix length/],
  ["veth address out of range", vethKind, { a: A, b: { ...B, addresses: ["192.168.1.256/24"] } }, "b.addresses[0]", /prefix length/],
  ["veth address that is its network's own", vethKind, { a: { ...A, addresses: ["192.168.2.0/24"] }, b: B }, "a.addresses[0]", /is the address of the network 192\.168\.2\.0\/24 itself, which no host may have; give a host address such as "192\.168\.2\.1\/24"/],
  ["veth broadcast address", vethKind, { a: A, b: { ...B, addresses: ["192.168.2.255/24"] } }, "b.addresses[0]", /is the broadcast address of 192\.168\.2\.0\/24, which no host may have; give a host address such as "192\.168\.2\.254\/24"/],
  ["veth addresses not a list", vethKind, { a: { ...A, addresses: "192.168.1.1/24" }, b: B }, "a.addresses", /must be a list/],
  ["veth IPv6 prefix too long", vethKind, { a: { ...A, addresses: ["fd00::1/129"] }, b: B }, "a.addresses[0]", /the prefix length 129 is more than an IPv6 address has \(0 to 128\), e\.g\. \/64\./],
  ["veth IPv4 prefix too long", vethKind, { a: { ...A, addresses: ["192.168.1.1/33"] }, b: B }, "a.addresses[0]", /the prefix length 33 is more than an IPv4 address has \(0 to 32\), e\.g\. \/24\./],
  ["veth MTU too small", vethKind, { a: A, b: B, mtu: 40 }, "mtu", /68 to 65535/],
  ["veth MTU not a number", vethKind, { a: A, b: B, mtu: "1500" }, "mtu", /integer/],
  ["veth MTU too small for IPv6", vethKind, { a: { ...A, addresses: ["fd00::1/64"] }, b: B, mtu: 1000 }, "mtu", /1280/],
  ["veth multicast MAC", vethKind, { a: { ...A, mac: "01:00:5e:00:00:01" }, b: B }, "a.mac", /multicast/],
  ["veth malformed MAC", vethKind, { a: A, b: { ...B, mac: "02:00:00:00:00" } }, "b.mac", /not a MAC/],
  ["veth up not boolean", vethKind, { a: { ...A, up: "yes" }, b: B }, "a.up", /true or false/],
  ["veth master name invalid", vethKind, { a: A, b: { ...B, master: "br 0" } }, "b.master", /may only contain/],
  ["bridge without name, resource name no interface name", bridgeKind, { addresses: ["10.0.0.1/24"], __owner: "p/s/Bridge/the-lab-bridge-of-site-a" }, "name", /resource name "the-lab-bridge-of-site-a" cannot be an interface name.*set name/],
  ["tap without name, resource name no interface name", tapKind, { mode: "tap", __owner: "p/s/TapDevice/tap 0" }, "name", /resource name "tap 0" cannot be an interface name.*set name/],
  ["veth end without name", vethKind, { a: { namespace: "ns1" }, b: B }, "a.name", /a\.name is required: the interface's name in its namespace, 1-15 characters/],
  ["route family unknown", routeKind, { destination: "default", device: "eth0", family: "ip6" }, "family", /"ipv4" or "ipv6"/],
  ["route family against destination", routeKind, { destination: "10.0.0.0/8", device: "eth0", family: "ipv6" }, "family", /does not match destination/],
  ["bridge stp not boolean", bridgeKind, { name: "br0", stp: 1 }, "stp", /true or false/],
  ["bridge MTU too large", bridgeKind, { name: "br0", mtu: 70000 }, "mtu", /68 to 65535/],
  ["bridge all-zero MAC", bridgeKind, { name: "br0", mac: "00:00:00:00:00:00" }, "mac", /all zeros/],
  ["tap unknown mode", tapKind, { name: "tap0", mode: "tep" }, "mode", /"tap".*"tun"/],
  ["tap negative owner", tapKind, { name: "tap0", owner: -1 }, "owner", /integer/],
  ["tap fractional group", tapKind, { name: "tap0", group: 1.5 }, "group", /integer/],
  ["tun with a MAC", tapKind, { name: "tun0", mode: "tun", mac: "02:00:00:00:00:01" }, "mac", /no MAC/],
  ["tun as a bridge port", tapKind, { name: "tun0", mode: "tun", master: "br0" }, "master", /cannot be a bridge port/],
];

/** Layer 3: routes, forwarding, NAT. */
const L3_CASES: Case[] = [
  ["route without destination", routeKind, { gateway: "10.0.0.1" }, "destination", /required/],
  ["route destination with host bits", routeKind, { destination: "10.1.2.3/8", gateway: "10.0.0.1" }, "destination", /did you mean "10.0.0.0\/8"/],
  ["route destination garbage", routeKind, { destination: "ten/8", device: "eth0" }, "destination", /not a network/],
  ["route gateway of the wrong family", routeKind, { destination: "fd00:1::/64", gateway: "192.168.1.1" }, "gateway", /is ipv4 but destination fd00:1::\/64 is ipv6/],
  ["route gateway with a prefix", routeKind, { destination: "default", gateway: "192.168.1.1/24" }, "gateway", /not an IP address/],
  ["route with neither gateway nor device", routeKind, { destination: "10.0.0.0/8" }, "gateway", /gateway, a device, or both/],
  ["route source of the wrong family", routeKind, { destination: "10.0.0.0/8", device: "eth0", source: "fd00::1" }, "source", /is ipv6/],
  ["route metric negative", routeKind, { destination: "default", gateway: "10.0.0.1", metric: -1 }, "metric", /integer/],
  ["route in the local table", routeKind, { destination: "default", gateway: "10.0.0.1", table: 255 }, "table", /local table/],
  ["route via a link-local gateway without device", routeKind, { destination: "::/0", gateway: "fe80::1" }, "gateway", /gateway fe80::1 is a link-local address, which is on every interface: set device/],
  ["veth IPv6 multicast address", vethKind, { a: { ...A, addresses: ["ff02::1/64"] }, b: B }, "a.addresses[0]", /"ff02::1\/64" is a multicast group address, which no interface may have as its own/],
  ["veth IPv4 multicast address", vethKind, { a: { ...A, addresses: ["224.0.0.5/24"] }, b: B }, "a.addresses[0]", /is a multicast group address/],
  ["veth IPv6 loopback address", vethKind, { a: { ...A, addresses: ["::1/128"] }, b: B }, "a.addresses[0]", /"::1\/128" is IPv6's loopback address, which no interface of a lab may have/],
  ["veth IPv6 unspecified address", vethKind, { a: { ...A, addresses: ["::/64"] }, b: B }, "a.addresses[0]", /"::\/64" is IPv6's unspecified address/],
  ["route device name too long", routeKind, { destination: "default", device: "a-very-long-device" }, "device", /at most 15/],
  ["forwarding with nothing to set", forwardingKind, {}, "ipv4", /set ipv4 and\/or ipv6/],
  ["forwarding ipv6 not boolean", forwardingKind, { ipv6: "on" }, "ipv6", /true or false/],
  ["nat unknown kind", natKind, { kind: "redirect" }, "kind", /"masquerade", "snat" or "dnat"/],
  ["nat without kind", natKind, { source: "10.0.0.0/8" }, "kind", /required/],
  ["dnat without toAddress", natKind, { kind: "dnat", protocol: "tcp", port: 80 }, "toAddress", /needs toAddress/],
  ["snat without toAddress", natKind, { kind: "snat", source: "10.0.0.0/8" }, "toAddress", /needs toAddress/],
  ["masquerade with toAddress", natKind, { kind: "masquerade", toAddress: "10.0.0.1" }, "toAddress", /remove toAddress/],
  ["toPort without protocol", natKind, { kind: "dnat", toAddress: "10.0.0.1", toPort: 80 }, "toPort", /needs protocol/],
  ["port without protocol", natKind, { kind: "dnat", toAddress: "10.0.0.1", port: 8080 }, "port", /needs protocol/],
  ["nat unknown protocol", natKind, { kind: "dnat", toAddress: "10.0.0.1", protocol: "sctp", port: 1 }, "protocol", /"tcp" or "udp"/],
  ["nat port out of range", natKind, { kind: "dnat", toAddress: "10.0.0.1", protocol: "tcp", port: 70000 }, "port", /1 to 65535/],
  ["nat mixed families", natKind, { kind: "snat", source: "10.0.0.0/8", toAddress: "fd00::1" }, "toAddress", /mix IPv4 and IPv6/],
  ["dnat matching an outgoing interface", natKind, { kind: "dnat", toAddress: "10.0.0.1", outInterface: "eth0" }, "outInterface", /match inInterface/],
  ["masquerade matching an incoming interface", natKind, { kind: "masquerade", inInterface: "eth0" }, "inInterface", /match outInterface/],
  ["nat source with host bits", natKind, { kind: "masquerade", source: "192.168.1.1/24" }, "source", /did you mean "192.168.1.0\/24"/],
];
CASES.push(...L3_CASES);

describe("bad input is refused by check, naming the property", () => {
  it("covers at least 20 layer-2 and 10 layer-3 cases", () => {
    expect(CASES.length - L3_CASES.length).toBeGreaterThanOrEqual(20);
    expect(L3_CASES.length).toBeGreaterThanOrEqual(10);
  });

  it.each(CASES)("%s", (_title, kind, news, property, reason) => {
    const { failures } = kind.check(undefined, { __owner: "t", ...news });
    expect(failures.map((f) => f.property)).toContain(property);
    expect(failures.find((f) => f.property === property)!.reason).toMatch(reason);
  });

  it("a dnat rule's toAddress that is no address gets that one failure, not also 'needs toAddress'", () => {
    const { failures } = natKind.check(undefined, { __owner: "t", kind: "dnat", protocol: "udp", port: 53, toAddress: "192.168.9.300" });
    expect(failures).toEqual([{ property: "toAddress", reason: expect.stringMatching(/"192\.168\.9\.300" is not an IP address/) }]);
  });
});

describe("a property nothing would apply is refused at check, naming it (through the dispatcher, as the engine calls it)", () => {
  const failures = async (kind: string, news: Record<string, unknown>) =>
    ((await dispatch(kind, "check", [undefined, { __owner: `t/s/${kind}/x`, ...news }])) as { failures: { property: string; reason: string }[] }).failures;

  it.each([
    ["a misspelt veth end property", "VethPair", { a: { ...A, adresses: ["192.168.1.1/24"] }, b: B }, "a.adresses", /not a property of a veth end \(did you mean a\.addresses\?\)/],
    ["mtu on a veth end", "VethPair", { a: { ...A, mtu: 1400 }, b: B }, "a.mtu", /mtu is the pair's: set it beside a and b/],
    ["a misspelt bridge property", "Bridge", { name: "br0", adresses: ["10.0.0.1/24"] }, "adresses", /not a property of a Bridge \(did you mean addresses\?\)/],
    ["a property of another kind", "Namespace", { name: "n1", addresses: ["10.0.0.1/24"] }, "addresses", /not a property of a Namespace; it takes name, adopt/],
    ["a misspelt route property", "Route", { destination: "default", gatway: "10.0.0.1", device: "eth0" }, "gatway", /did you mean gateway\?/],
    ["a misspelt process property", "Process", { command: ["sleep", "1"], stopTimeout: 1000 }, "stopTimeout", /did you mean stopTimeoutMs\?/],
    ["a misspelt impairment direction", "LinkImpairment", { device: "eth0", egres: { rate: "1mbit" } }, "egres", /not a property of a LinkImpairment \(did you mean egress\?\)/],
    ["an impairment's output given as input", "LinkImpairment", { device: "eth0", egress: { rate: "1mbit" }, ifb: "x" }, "ifb", /not a property of a LinkImpairment/],
    ["a case slip in a NAT rule", "NatRule", { kind: "masquerade", outinterface: "eth0" }, "outinterface", /did you mean outInterface\?/],
  ] as [string, string, Record<string, unknown>, string, RegExp][])("%s", async (_title, kind, news, property, reason) => {
    const found = await failures(kind, news);
    expect(found.map((f) => f.property)).toContain(property);
    expect(found.find((f) => f.property === property)!.reason).toMatch(reason);
  });

  it("every property the SDK passes is known, and one left undefined (an output's place) is no failure", async () => {
    expect(await failures("Bridge", { name: "br0", mac: undefined, generation: undefined, stp: true })).toEqual([]);
    expect(await failures("VethPair", { a: A, b: { ...B, master: "br0", up: true }, mtu: 1400, adopt: false })).toEqual([]);
    expect(await failures("Route", { destination: "default", gateway: "10.0.0.1", __links: ["4"], family: undefined })).toEqual([]);
  });
});

describe("naming an interface that exists", () => {
  it("a route, a NAT rule and an impairment may name lo; an interface nslab makes may not", () => {
    expect(routeKind.check(undefined, { destination: "10.9.0.0/24", device: "lo", __owner: "t" }).failures).toEqual([]);
    expect(natKind.check(undefined, { kind: "masquerade", outInterface: "lo", __owner: "t" }).failures).toEqual([]);
    expect(vethKind.check(undefined, { a: { ...A, name: "lo" }, b: B, __owner: "t" }).failures.map((f) => f.property)).toEqual(["a.name"]);
  });

  it("a route whose only device is refused is told about the device alone, not that it has none", () => {
    const { failures } = routeKind.check(undefined, { destination: "10.9.0.0/24", device: "all", __owner: "t" });
    expect(failures.map((f) => f.property)).toEqual(["device"]);
  });

  it("forwarding given a wrong value is told about that value alone, not that nothing is set", () => {
    const { failures } = forwardingKind.check(undefined, { ipv4: "yes", __owner: "t" });
    expect(failures.map((f) => [f.property, f.reason])).toEqual([["ipv4", expect.stringMatching(/true or false/)]]);
  });
});

describe("two resources of one program that would make the same name fail at check, naming the other", () => {
  const check = async (kind: string, name: string, news: Record<string, unknown>) =>
    ((await dispatch(kind, "check", [undefined, { __owner: `claims/s@0/${kind}/${name}`, ...news }])) as { failures: { property: string; reason: string }[] }).failures;

  it("a namespace, and an interface in one namespace (whatever kind makes it), once per machine", async () => {
    expect(await check("Namespace", "d1", { name: "cl-same" })).toEqual([]);
    expect(await check("Namespace", "d2", { name: "cl-same" })).toEqual([
      { property: "name", reason: expect.stringMatching(/^namespace "cl-same" is also made by Namespace "d1" of this program; give each its own name, .*\(a BridgedNetwork host joins a namespace made elsewhere as \{ name: "cl-same", namespace: ns\.name \}\)\.$/) },
    ]);
    // Checked again (the update after the preview): still its own.
    expect(await check("Namespace", "d1", { name: "cl-same" })).toEqual([]);
    // Another machine's namespace of that name is another namespace.
    expect(await check("Namespace", "d3", { name: "cl-same", host: { ssh: "root@192.0.2.7" } })).toEqual([]);
    // A clash there says where it is.
    expect((await check("Namespace", "d4", { name: "cl-same", host: { ssh: "root@192.0.2.7" } })).map((f) => f.reason)).toEqual([expect.stringMatching(/^namespace "cl-same" on root@192\.0\.2\.7 is also made by Namespace "d3"/)]);
    expect(await check("Vxlan", "v1", { name: "cl-vx", vni: 7, remote: "192.0.2.9", host: { ssh: "root@192.0.2.7" } })).toEqual([]);
    expect((await check("Vxlan", "v2", { name: "cl-vx", vni: 8, remote: "192.0.2.9", host: { ssh: "root@192.0.2.7" } })).map((f) => f.reason)).toEqual([
      expect.stringMatching(/^interface "cl-vx" in the program's namespace on root@192\.0\.2\.7 is also made by Vxlan "v1"/),
    ]);
    expect(await check("VethPair", "x", { a: { name: "cl-dup0", namespace: "cl-n1" }, b: { name: "cl-x1" } })).toEqual([]);
    expect((await check("VethPair", "y", { a: { name: "cl-y0" }, b: { name: "cl-dup0", namespace: "cl-n1" } })).map((f) => [f.property, f.reason])).toEqual([
      ["b.name", expect.stringMatching(/^interface "cl-dup0" in namespace "cl-n1" is also made by VethPair "x" of this program/)],
    ]);
    expect((await check("Bridge", "b", { name: "cl-x1" })).map((f) => f.reason)).toEqual([expect.stringMatching(/interface "cl-x1" in the program's namespace is also made by VethPair "x"/)]);
    // The same name in another namespace is another interface.
    expect(await check("Bridge", "b2", { name: "cl-dup0", namespace: "cl-n2" })).toEqual([]);
  });

  it("one LinkImpairment per interface and direction: a second fails at check, naming the first", async () => {
    expect(await check("LinkImpairment", "i1", { device: "cl-imp", namespace: "cl-n1", egress: { rate: "10mbit" } })).toEqual([]);
    expect(await check("LinkImpairment", "i2", { device: "cl-imp", namespace: "cl-n1", ingress: { rate: "7mbit" } })).toEqual([]);
    expect((await check("LinkImpairment", "i3", { device: "cl-imp", namespace: "cl-n1", egress: { rate: "7mbit" } })).map((f) => [f.property, f.reason])).toEqual([
      ["egress", expect.stringMatching(/^the egress of interface "cl-imp" in namespace "cl-n1" is also impaired by LinkImpairment "i1" of this program; declare one LinkImpairment per interface and direction/)],
    ]);
    // i1 taking ingress too (an update of the program) meets i2.
    expect((await check("LinkImpairment", "i1", { device: "cl-imp", namespace: "cl-n1", egress: { rate: "10mbit" }, ingress: { loss: 0.1 } })).map((f) => f.property)).toEqual(["ingress"]);
    // Another namespace's interface of that name is another interface.
    expect(await check("LinkImpairment", "i4", { device: "cl-imp", namespace: "cl-n2", egress: { rate: "7mbit" } })).toEqual([]);
    // Egress loss alone (a netdev chain before the qdisc) does not clash with a rate.
    expect(await check("LinkImpairment", "i5", { device: "cl-imp", namespace: "cl-n1", egress: { loss: 0.1 } })).toEqual([]);
  });

  it("one route per destination, table and metric in a namespace: the same route spelled otherwise fails at check, naming the first", async () => {
    expect(await check("Route", "r1", { namespace: "cl-rt", destination: "FD00:9:0::/64", gateway: "fd00:1::2" })).toEqual([]);
    expect((await check("Route", "r2", { namespace: "cl-rt", destination: "fd00:9::/64", gateway: "fd00:1::3" })).map((f) => [f.property, f.reason])).toEqual([
      ["destination", expect.stringMatching(/^the ipv6 route to fd00:9::\/64 in namespace "cl-rt" is also made by Route "r1" of this program; the kernel holds one route per destination, table and metric/)],
    ]);
    // The kernel's default metric spelled out is the same route; another metric, table,
    // namespace or machine is another.
    expect(await check("Route", "r3", { namespace: "cl-rt", destination: "fd00:9::/64", gateway: "fd00:1::3", metric: 1024 })).toHaveLength(1);
    for (const [name, over] of [["r4", { metric: 5 }], ["r5", { table: 100 }], ["r6", { namespace: "cl-rt2" }], ["r7", { host: { ssh: "root@192.0.2.7" } }]] as const) {
      expect(await check("Route", name, { namespace: "cl-rt", destination: "fd00:9::/64", gateway: "fd00:1::3", ...over }), name).toEqual([]);
    }
    expect(await check("Route", "d4", { namespace: "cl-rt", destination: "default", gateway: "10.0.0.1" })).toEqual([]);
    expect(await check("Route", "d6", { namespace: "cl-rt", destination: "default", gateway: "fd00:1::1" })).toEqual([]);
    expect(await check("Route", "d4b", { namespace: "cl-rt", destination: "0.0.0.0/0", device: "eth0" })).toHaveLength(1);
    // A preview's unknown gateway: a default's family is not known yet, so it claims nothing.
    expect(await check("Route", "u4", { namespace: "cl-rt2", destination: "default", gateway: UNKNOWN })).toEqual([]);
    expect(await check("Route", "u6", { namespace: "cl-rt2", destination: "default", gateway: UNKNOWN })).toEqual([]);
    // IPv6 metric 0 is the kernel's 1024.
    expect(await check("Route", "m0", { namespace: "cl-rt", destination: "fd00:9::/64", gateway: "fd00:1::3", metric: 0 })).toHaveLength(1);
  });

  it("a namespace the program makes only on another machine (as host is spelled) fails at check for a resource on this one", async () => {
    const m2 = { ssh: "root@192.0.2.2" };
    expect(await check("Namespace", "onb", { name: "cl-onb", host: m2 })).toEqual([]);
    expect((await check("VethPair", "mismatch", { host: { ssh: "root@192.0.2.1" }, a: { name: "e0", namespace: "cl-onb" }, b: { name: "cl-mm" } })).map((f) => [f.property, f.reason])).toEqual([
      ["a.namespace", 'a.namespace "cl-onb" is made by Namespace "onb" of this program on root@192.0.2.2, but this VethPair is on root@192.0.2.1: give both the same host, spelled alike (nslab tells machines apart by how host names them).'],
    ]);
    // The machine spelled otherwise counts as another; the engine's machine too.
    expect((await check("Route", "r-spelled", { host: { ssh: "192.0.2.2" }, namespace: "cl-onb", destination: "default", device: "e0" })).map((f) => f.property)).toEqual(["namespace"]);
    expect((await check("Reachability", "p-local", { from: "cl-onb", to: "10.0.0.1" })).map((f) => f.reason)).toEqual([expect.stringMatching(/^from "cl-onb" is made by Namespace "onb" of this program on root@192\.0\.2\.2, but this Reachability is on the machine that runs pulumi/)]);
    // On its own machine, or a namespace the program does not make: nothing to say.
    expect(await check("Bridge", "b-there", { host: m2, name: "cl-br", namespace: "cl-onb" })).toEqual([]);
    expect(await check("Bridge", "b-other", { host: { ssh: "root@192.0.2.1" }, name: "cl-br", namespace: "cl-elsewhere" })).toEqual([]);
  });

  it("a resource that is deleted (or checked with another name) frees its names", () => {
    expect(claimNames("TapDevice", "p/s/TapDevice/t1", { name: "cl-tap" })).toEqual([]);
    expect(claimNames("TapDevice", "p/s/TapDevice/t2", { name: "cl-tap" })).toHaveLength(1);
    expect(claimNames("TapDevice", "p/s/TapDevice/t1", { name: "cl-tap-renamed" })).toEqual([]);
    expect(claimNames("TapDevice", "p/s/TapDevice/t2", { name: "cl-tap" })).toEqual([]);
    releaseNames("p/s/TapDevice/t2");
    expect(claimNames("Vxlan", "p/s/Vxlan/v", { name: "cl-tap" })).toEqual([]);
  });
});

describe("addresses a host may have", () => {
  it("a /31 and a /32 have no network or broadcast address; IPv6 has no broadcast", () => {
    for (const addresses of [["10.0.0.0/31", "10.0.0.1/31"], ["10.9.9.0/32"], ["10.9.9.255/32"], ["fd00::/64"]]) {
      expect(vethKind.check(undefined, { a: { ...A, addresses }, b: B, __owner: "t" }).failures, addresses.join()).toEqual([]);
    }
  });
});
