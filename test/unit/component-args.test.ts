/**
 * The components' arguments are checked while the program declares them
 * (sdk/components/args.ts): unknown keys, missing ones and wrong types are refused,
 * naming the component, the argument and the fix; nothing is registered.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { BridgedNetwork, NatGateway, PlanError, Router } from "../../sdk/components";
import { checkArgs } from "../../sdk/components/args";
import { HostLink } from "../../sdk/components/hostlink";

beforeAll(() => {
  pulumi.runtime.setMocks({ newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }), call: (a) => a.inputs }, "nslab-unit", "unit");
});

/** What `construct` throws (it must throw a PlanError). */
function refusal(construct: () => unknown): string {
  try {
    construct();
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return (e as Error).message;
  }
  throw new Error("not refused");
}

describe("component arguments", () => {
  it("a misspelt key is refused with the closest name and the list", () => {
    expect(refusal(() => new BridgedNetwork("lan", { cidr: "10.0.0.0/24", hosts: ["a"], gatway: true } as never))).toMatch(
      /^BridgedNetwork "lan": gatway is not an argument \(did you mean gateway\?\); the arguments are cidr, hosts, .*gateway.*\. \(at /,
    );
    expect(refusal(() => new BridgedNetwork("lan2", { cidr: "10.0.1.0/24", hosts: [{ name: "a", adress: "10.0.1.9" }] } as never))).toMatch(
      /hosts\[0\]\.adress is not an argument of hosts\[0\] \(did you mean hosts\[0\]\.address\?\)/,
    );
  });

  it("a missing argument, and a value of the wrong type, are refused instead of a TypeError or a silent default", () => {
    // Without uplink the rule would masquerade out of every interface.
    expect(refusal(() => new NatGateway("nat", { sources: ["10.0.0.0/24"] } as never))).toMatch(/^NatGateway "nat": uplink is required \(a string\)/);
    expect(refusal(() => new BridgedNetwork("s", { cidr: "10.0.2.0/24", hosts: "a,b" } as never))).toMatch(/^BridgedNetwork "s": hosts must be a list, got "a,b"/);
    expect(refusal(() => new Router("r", { attach: [{ network: "10.0.0.0/24" }] } as never))).toMatch(/^Router "r": attach\[0\]\.network must be a BridgedNetwork, got "10\.0\.0\.0\/24"/);
    expect(refusal(() => new NatGateway("pf", { sources: [], uplink: "up0", portForwards: [{ protocol: "tcp", port: "80", toAddress: "10.0.0.2" }] } as never))).toMatch(
      /portForwards\[0\]\.port must be a number, got "80"/,
    );
    expect(refusal(() => new HostLink("hl", { vni: 5, a: { address: "10.0.0.1", bridge: "br0" }, b: { address: "10.0.0.2" } } as never))).toMatch(/^HostLink "hl": b\.bridge is required/);
    expect(refusal(() => new BridgedNetwork("n", undefined as never))).toMatch(/its arguments must be an object, got undefined/);
  });

  it("two port forwards of one protocol and port are refused naming both, instead of Pulumi's duplicate URN", () => {
    const forwards = [
      { protocol: "tcp", port: 80, toAddress: "10.0.0.2" },
      { protocol: "udp", port: 80, toAddress: "10.0.0.2" },
      { protocol: "tcp", port: 80, toAddress: "10.0.0.3" },
    ] as const;
    expect(refusal(() => new NatGateway("dup", { sources: [], uplink: "up0", portForwards: [...forwards], forwarding: false }))).toMatch(
      /^NatGateway "dup": portForwards\[2\] forwards tcp port 80, as portForwards\[0\] does, over IPv4: a port of the uplink goes to one place per family; drop one, or give it another port\. \(at /,
    );
    // One over IPv4 and one over IPv6 are two places: both made, the IPv6 one named "-ipv6".
    const both = new NatGateway("dual", { sources: [], uplink: "up0", portForwards: [{ protocol: "tcp", port: 80, toAddress: "fd00::2" }, { protocol: "tcp", port: 80, toAddress: "10.0.0.2" }], forwarding: false });
    expect(both.forwards.length).toBe(2);
  });

  it("a Router's address is checked against its network: family, subnet, the network's own address, a host's in any spelling, the bridge's gateway", () => {
    const lan = new BridgedNetwork("ra", { cidr: "fd00:5::/64", hosts: ["x1"], gateway: true });
    const lan4 = new BridgedNetwork("ra4", { cidr: "10.5.0.0/24", hosts: ["y1"], gateway: true });
    const attach = (network: BridgedNetwork, address: string) => refusal(() => new Router(`r-${address}`, { attach: [{ network, address }] }));
    expect(attach(lan, "fd00:6::1")).toMatch(/^Router "r-fd00:6::1": attach\[0\]\.address \(network "ra"\) fd00:6::1 is outside fd00:5::\/64; use an address inside the subnet/);
    expect(attach(lan4, "10.6.0.1")).toMatch(/10\.6\.0\.1 is outside 10\.5\.0\.0\/24/);
    expect(attach(lan, "10.0.0.1")).toMatch(/10\.0\.0\.1 is an IPv4 address, and fd00:5::\/64 is IPv6/);
    expect(attach(lan, "fd00:5::")).toMatch(/subnet-router anycast address/);
    expect(attach(lan4, "10.5.0.255")).toMatch(/broadcast address/);
    expect(attach(lan, "fd00:5:0:0::2")).toMatch(/attach\[0\]\.address fd00:5::2 in "ra" belongs to host "x1"; choose a free one/);
    expect(attach(lan, "fd00:5::1")).toMatch(/is the network's gateway, which its bridge holds \(gatewayOnBridge: true\)/);
  });

  it("accepts Outputs where a component takes an Input, and nowhere else", () => {
    const shape = { "name!": "string", namespace: "input" } as const;
    expect(() => checkArgs("X", { name: "a", namespace: pulumi.output("ns") }, shape)).not.toThrow();
    expect(() => checkArgs("X", { name: pulumi.output("a") }, shape)).toThrow(/name must be a string, got a Output/);
  });

  it("knows every argument each component declares (the Args interfaces of sdk/components)", () => {
    // The interfaces' keys, read from the source: a new argument must be added to the shapes.
    const declared = (file: string, iface: string) => {
      const text = fs.readFileSync(path.join(__dirname, "../../sdk/components", file), "utf8");
      const body = text.slice(text.indexOf(`export interface ${iface} {`)).split("\n}")[0];
      return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1]);
    };
    const unknown = (construct: () => unknown) => {
      try {
        construct();
      } catch (e) {
        return /is not an argument/.test((e as Error).message) ? (e as Error).message : undefined;
      }
      return undefined;
    };
    // Every declared key is known: giving it never fails as "not an argument".
    const probe = (iface: string, file: string, make: (args: Record<string, unknown>) => unknown) => {
      for (const key of declared(file, iface)) expect(unknown(() => make({ [key]: undefined })), `${iface}.${key}`).toBeUndefined();
      expect(declared(file, iface).length).toBeGreaterThan(2);
    };
    let i = 0;
    probe("BridgedNetworkArgs", "index.ts", (a) => new BridgedNetwork(`k${i++}`, { cidr: `10.9.${i}.0/24`, hosts: ["h"], ...a } as never));
    probe("RouterArgs", "index.ts", (a) => new Router(`k${i++}`, { attach: [], ...a } as never));
    probe("NatGatewayArgs", "index.ts", (a) => new NatGateway(`k${i++}`, { sources: [], uplink: "u", ...a, forwarding: false } as never));
    probe("HostLinkArgs", "hostlink.ts", (a) => new HostLink(`k${i++}`, { vni: 1, a: { address: "10.0.0.1", bridge: "b" }, b: { address: "10.0.0.2", bridge: "b", namespace: "x" }, ...a } as never));
  });
});
