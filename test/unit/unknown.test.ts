/**
 * During preview, values that are outputs of resources not made yet reach check as the
 * engine's "unknown" marker. check must accept them (it validates them at create time,
 * when they are known) and must not fail on the properties that depend on them.
 */
import { describe, expect, it } from "vitest";
import { bridgeKind } from "../../provider/bridge";
import { forwardingKind } from "../../provider/forwarding";
import { natKind } from "../../provider/nat";
import { namespaceKind } from "../../provider/namespace";
import { routeKind } from "../../provider/route";
import { tapKind } from "../../provider/tap";
import { UNKNOWN } from "../../provider/validate";
import { vethKind } from "../../provider/veth";

type Kind = { check: (o: undefined, n: Record<string, unknown>) => { failures: { property: string }[] } };
const VALID: [string, Kind, Record<string, unknown>][] = [
  ["Namespace", namespaceKind, { name: "ns1" }],
  ["VethPair", vethKind, { a: { name: "va", namespace: "ns1", addresses: ["10.0.0.1/24"], master: "br0", mac: "02:00:00:00:00:01" }, b: { name: "vb" }, mtu: 1500 }],
  ["Bridge", bridgeKind, { name: "br0", namespace: "ns1", addresses: ["10.0.0.1/24"], mac: "02:00:00:00:00:01", mtu: 1500 }],
  ["TapDevice", tapKind, { name: "tap0", master: "br0", addresses: ["10.0.0.1/24"], owner: 1000 }],
  ["Route", routeKind, { namespace: "ns1", destination: "10.0.0.0/8", gateway: "192.168.1.1", device: "eth0", source: "192.168.1.2", metric: 5 }],
  ["IpForwarding", forwardingKind, { namespace: "ns1", ipv4: true }],
  ["NatRule", natKind, { kind: "dnat", protocol: "tcp", inInterface: "up", port: 80, toAddress: "10.0.0.2", toPort: 8080, source: "10.1.0.0/16" }],
];

describe("check accepts values unknown during preview", () => {
  for (const [title, kind, news] of VALID) {
    it(`${title}: valid inputs have no failures`, () => expect(kind.check(undefined, { __owner: "t", ...news }).failures).toEqual([]));
    for (const key of Object.keys(news)) {
      it(`${title}: ${key} unknown`, () => {
        expect(kind.check(undefined, { __owner: "t", ...news, [key]: UNKNOWN }).failures).toEqual([]);
      });
    }
  }

  it("an unknown element inside a list or an end", () => {
    expect(vethKind.check(undefined, { __owner: "t", a: { name: "va", namespace: UNKNOWN, addresses: [UNKNOWN, "10.0.0.1/24"], master: UNKNOWN }, b: { name: UNKNOWN } }).failures).toEqual([]);
  });
});
