/**
 * Malformed inputs: each is refused by check (so `pulumi preview` fails before anything
 * is made), and the failure names the property at fault. check touches no kernel;
 * e2e/bad-input.test.ts proves the same through the engine with nothing created.
 */
import { describe, expect, it } from "vitest";
import { bridgeKind } from "../../provider/bridge";
import { forwardingKind } from "../../provider/forwarding";
import { natKind } from "../../provider/nat";
import { routeKind } from "../../provider/route";
import { namespaceKind } from "../../provider/namespace";
import { tapKind } from "../../provider/tap";
import { vethKind } from "../../provider/veth";

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
  ["veth namespace invalid", vethKind, { a: { ...A, namespace: "../etc" }, b: B }, "a.namespace", /may only contain/],
  ["veth address without prefix", vethKind, { a: { ...A, addresses: ["192.168.1.1"] }, b: B }, "a.addresses[0]", /prefix length/],
  ["veth address out of range", vethKind, { a: A, b: { ...B, addresses: ["192.168.1.256/24"] } }, "b.addresses[0]", /prefix length/],
  ["veth addresses not a list", vethKind, { a: { ...A, addresses: "192.168.1.1/24" }, b: B }, "a.addresses", /must be a list/],
  ["veth IPv6 prefix too long", vethKind, { a: { ...A, addresses: ["fd00::1/129"] }, b: B }, "a.addresses[0]", /prefix length/],
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
});
