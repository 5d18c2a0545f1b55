/**
 * IPv6 end to end: a dual-stack bridged lab with IPv6 addresses on veths and the
 * bridge, an IPv6 default route via a gateway, a device-only IPv6 route and a
 * device-only IPv6 default (the one whose text `ip route` prints like an IPv4 one),
 * IPv6 forwarding and IPv6 masquerade. Packets cross at the first try, refresh is
 * clean, a hand-deleted IPv6 route is drift, destroy leaves nothing.
 */
import { describe, expect, it } from "vitest";
import { Lab, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

const DUAL_STACK = `
import * as nslab from "nslab";

const br = new nslab.Bridge("br6", { addresses: ["192.168.8.1/24", "fd00:8::1/64"] });
for (const n of [1, 2]) {
  const ns = new nslab.Namespace(\`d\${n}\`);
  const link = new nslab.VethPair(\`d\${n}-link\`, {
    a: { name: "eth0", namespace: ns.name, addresses: [\`192.168.8.1\${n}/24\`, \`fd00:8::1\${n}/64\`] },
    b: { name: \`d\${n}-br\`, master: br.name },
  });
  new nslab.Route(\`d\${n}-default4\`, { namespace: ns.name, destination: "default", gateway: "192.168.8.1" }, { dependsOn: [link, br] });
  new nslab.Route(\`d\${n}-default6\`, { namespace: ns.name, destination: "default", gateway: "fd00:8::1" }, { dependsOn: [link, br] });
}
// The outside: wan has no route back to the lab, only on-link ones and a device-only
// IPv6 default, so its replies reach the lab only through the masquerade.
const wan = new nslab.Namespace("wan6");
const uplink = new nslab.VethPair("uplink", {
  a: { name: "up6", addresses: ["10.8.0.1/24", "fd00:99::1/64"] },
  b: { name: "wan0", namespace: wan.name, addresses: ["10.8.0.2/24", "fd00:99::2/64", "fd00:aa::2/64"] },
});
new nslab.Route("wan-default6", { namespace: wan.name, destination: "default", family: "ipv6", device: "wan0" }, { dependsOn: [uplink] });
new nslab.Route("to-aa", { destination: "fd00:aa::/64", device: "up6" }, { dependsOn: [uplink] });
new nslab.IpForwarding("forwarding", { ipv4: true, ipv6: true });
new nslab.NatRule("masquerade4", { kind: "masquerade", source: "192.168.8.0/24", outInterface: "up6" }, { dependsOn: [uplink] });
new nslab.NatRule("masquerade6", { kind: "masquerade", source: "fd00:8::/64", outInterface: "up6" }, { dependsOn: [uplink] });
`;

/** Two IPv6 networks joined by a Router, and one more host on a veth of the router's own, which the program sets down and up. */
const ROUTED = `
import * as nslab from "nslab";
const a = new nslab.BridgedNetwork("a", { cidr: "fd00:11::/64", hosts: ["h1"], gateway: true, gatewayOnBridge: false });
const b = new nslab.BridgedNetwork("b", { cidr: "fd00:12::/64", hosts: ["h2"], gateway: true, gatewayOnBridge: false });
const r = new nslab.Router("r", { attach: [{ network: a }, { network: b }] });
const solo = new nslab.Namespace("solo");
const link = new nslab.VethPair("solo-link", { a: { name: "eth0", namespace: solo.name, addresses: ["fd00:13::2/64"], up: true }, b: { name: "to-solo", namespace: r.namespace.name, addresses: ["fd00:13::1/64"] } });
new nslab.Route("solo-default", { namespace: solo.name, destination: "default", gateway: "fd00:13::1" }, { dependsOn: [link] });
`;

/**
 * A NatGateway for an IPv4 and an IPv6 network, with port 80 forwarded over both
 * families; a Router whose address is another spelling of a host's is added later.
 */
const NAT_DUAL = `
import * as nslab from "nslab";
const gw = new nslab.Namespace("gw");
const wan = new nslab.Namespace("wan");
const lan4 = new nslab.BridgedNetwork("lan4", { cidr: "192.168.60.0/24", gateway: true, bridgeNamespace: gw.name, hosts: ["h4"] });
const lan6 = new nslab.BridgedNetwork("lan6", { cidr: "fd00:60::/64", gateway: true, bridgeNamespace: gw.name, hosts: ["h6"] });
const up = new nslab.VethPair("uplink", { a: { name: "up0", namespace: gw.name, addresses: ["10.60.0.1/24", "fd00:99::1/64"] }, b: { name: "wan0", namespace: wan.name, addresses: ["10.60.0.2/24", "fd00:99::2/64"] } });
new nslab.NatGateway("nat", { namespace: gw.name, sources: [lan4, lan6], uplink: "up0", portForwards: [{ protocol: "tcp", port: 80, toAddress: "192.168.60.2" }, { protocol: "tcp", port: 80, toAddress: "fd00:60::2" }] }, { dependsOn: [up] });
// A link-local network with a gateway: its hosts' default routes name their interface.
new nslab.BridgedNetwork("ll", { cidr: "fe80::/64", gateway: true, bridgeNamespace: gw.name, hosts: ["hl"] });
// ROUTER
`;

async function once(sandbox: Sandbox, from: string, to: string): Promise<boolean> {
  const family = to.includes(":") ? "-6" : "-4";
  return (await sandbox.run("ip", ["netns", "exec", from, "ping", family, "-c", "1", "-W", "1", to])).exitCode === 0;
}

async function failures(sandbox: Sandbox): Promise<string[]> {
  const failed: string[] = [];
  const paths: [string, string][] = [
    ["d1", "fd00:8::1"], // the gateway on the bridge
    ["d1", "fd00:8::12"], // across the bridge
    ["d2", "fd00:8::11"],
    ["d1", "fd00:aa::2"], // out: via the IPv6 default, the device-only route and the masquerade
    ["d2", "fd00:aa::2"],
    ["d1", "10.8.0.2"], // IPv4 alongside
  ];
  for (const [from, to] of paths) if (!(await once(sandbox, from, to))) failed.push(`${from} -> ${to}`);
  return failed;
}

describe("IPv6 end to end", () => {
  let sandbox: Sandbox;
  sandboxPerTest((s) => (sandbox = s));

  it("a dual-stack lab: ping -6 across and out, clean refresh, a deleted IPv6 route is drift and repaired, destroy leaves nothing", async () => {
    const lab = await Lab.create(sandbox, "ipv6", DUAL_STACK);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await failures(sandbox)).toEqual([]);
    // The wan saw the lab's traffic from the uplink's address (masquerade).
    const seen = await sandbox.must("ip", ["netns", "exec", "wan6", "ip", "-6", "neigh", "show", "dev", "wan0"]);
    expect(seen).toContain("fd00:99::1");
    expect(seen).not.toContain("fd00:8::");

    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);
    expect(clean.stdout).not.toMatch(/diff:|=>/);

    // The device-only IPv6 default is found by refresh as IPv6: deleting it is drift.
    await sandbox.must("ip", ["-n", "wan6", "-6", "route", "del", "default", "dev", "wan0"]);
    await sandbox.must("ip", ["-n", "d1", "-6", "route", "del", "default"]);
    const drift = await lab.driftCheck();
    expect(drift.exitCode, show(drift)).toBe(7);
    expect(drift.stdout).toMatch(/wan-default6[\s\S]*delete|d1-default6/);
    const repair = await lab.up(["--refresh"]);
    expect(repair.exitCode, show(repair)).toBe(0);
    expect(await failures(sandbox)).toEqual([]);
    expect((await sandbox.must("ip", ["-n", "wan6", "-6", "route", "show", "default"])).trim()).toMatch(/^default dev wan0 proto 151/);
    expect((await lab.driftCheck()).exitCode).toBe(0);

    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
    expect((await sandbox.must("sysctl", ["-n", "net.ipv6.conf.all.forwarding"])).trim()).toBe("0");
  });

  it("a NatGateway of an IPv4 and an IPv6 network switches both forwarding switches on and forwards a port over both families; a Router address that is a host's in another spelling fails at preview", async () => {
    const lab = await Lab.create(sandbox, "ipv6-nat", NAT_DUAL);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    // Out over both families at the first try (before: IPv6 forwarding stayed off).
    expect(await once(sandbox, "h6", "fd00:99::2")).toBe(true);
    expect(await once(sandbox, "h4", "10.60.0.2")).toBe(true);
    for (const key of ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]) expect((await sandbox.must("ip", ["netns", "exec", "gw", "sysctl", "-n", key])).trim()).toBe("1");
    const rules = await sandbox.must("ip", ["netns", "exec", "gw", "nft", "list", "table", "inet", "nslab"]);
    expect(rules).toContain('iifname "up0" tcp dport 80 dnat ip to 192.168.60.2:80');
    expect(rules).toContain('iifname "up0" tcp dport 80 dnat ip6 to [fd00:60::2]:80');
    expect((await lab.resources()).map((r) => r.urn.split("::").pop())).toEqual(expect.arrayContaining(["nat-tcp-80", "nat-tcp-80-ipv6"]));
    expect((await sandbox.must("ip", ["-n", "hl", "-6", "route", "show", "default"])).trim()).toMatch(/^default via fe80::1 dev eth-ll proto 151/);
    expect((await sandbox.run("ip", ["netns", "exec", "hl", "ping", "-6", "-c", "1", "-W", "1", "fe80::1%eth-ll"])).exitCode).toBe(0);

    // fd00:60:0:0::2 is h6's fd00:60::2: refused at preview, naming the Router, the
    // attachment and the host; nothing changes.
    lab.edit("// ROUTER", `new nslab.Router("r", { attach: [{ network: lan6, address: "fd00:60:0:0::2" }] });`);
    const refused = await lab.preview();
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/Router "r": attach\[0\]\.address fd00:60::2 in "lan6" belongs to host "h6"; choose a free one/);
    expect(await once(sandbox, "h6", "fd00:99::2")).toBe(true);

    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("through a Router, the first packet passes right after up; an end set down keeps its IPv6 address, and up again passes at the first try", async () => {
    const lab = await Lab.create(sandbox, "ipv6-routed", ROUTED);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    // Before: the router's link-locals were still tentative, so it sent no neighbour
    // solicitation for the first packet it forwarded, and that ping took 1 to 2 s.
    expect(await once(sandbox, "h1", "fd00:12::2")).toBe(true);
    expect(await once(sandbox, "h1", "fd00:13::2")).toBe(true);

    // Down: the update keeps the address (before, it failed: the kernel flushed it).
    lab.edit(`addresses: ["fd00:13::2/64"], up: true`, `addresses: ["fd00:13::2/64"], up: false`);
    const down = await lab.up();
    expect(down.exitCode, show(down)).toBe(0);
    expect(await sandbox.must("ip", ["-n", "solo", "-6", "address", "show", "dev", "eth0"])).toContain("fd00:13::2/64");
    expect(await once(sandbox, "h1", "fd00:13::2")).toBe(false);

    lab.edit(`up: false`, `up: true`);
    const again = await lab.up();
    expect(again.exitCode, show(again)).toBe(0);
    expect(await once(sandbox, "h1", "fd00:13::2")).toBe(true);
    expect(await once(sandbox, "solo", "fd00:11::2")).toBe(true);
    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);

    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
