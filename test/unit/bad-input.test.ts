/**
 * Malformed inputs: each is refused by check (so `pulumi preview` fails before anything
 * is made), and the failure names the property at fault. check touches no kernel;
 * e2e/bad-input.test.ts proves the same through the engine with nothing created.
 */
import { describe, expect, it } from "vitest";
import { bridgeKind } from "../../provider/bridge";
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
  ["bridge without name", bridgeKind, { addresses: ["10.0.0.1/24"] }, "name", /required/],
  ["bridge stp not boolean", bridgeKind, { name: "br0", stp: 1 }, "stp", /true or false/],
  ["bridge MTU too large", bridgeKind, { name: "br0", mtu: 70000 }, "mtu", /68 to 65535/],
  ["bridge all-zero MAC", bridgeKind, { name: "br0", mac: "00:00:00:00:00:00" }, "mac", /all zeros/],
  ["tap unknown mode", tapKind, { name: "tap0", mode: "tep" }, "mode", /"tap".*"tun"/],
  ["tap negative owner", tapKind, { name: "tap0", owner: -1 }, "owner", /integer/],
  ["tap fractional group", tapKind, { name: "tap0", group: 1.5 }, "group", /integer/],
  ["tun with a MAC", tapKind, { name: "tun0", mode: "tun", mac: "02:00:00:00:00:01" }, "mac", /no MAC/],
  ["tun as a bridge port", tapKind, { name: "tun0", mode: "tun", master: "br0" }, "master", /cannot be a bridge port/],
];

describe("bad input is refused by check, naming the property", () => {
  it("covers at least 20 cases", () => expect(CASES.length).toBeGreaterThanOrEqual(20));

  it.each(CASES)("%s", (_title, kind, news, property, reason) => {
    const { failures } = kind.check(undefined, { __owner: "t", ...news });
    expect(failures.map((f) => f.property)).toContain(property);
    expect(failures.find((f) => f.property === property)!.reason).toMatch(reason);
  });
});
