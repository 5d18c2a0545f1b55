/**
 * Changing a running lab never breaks it: a bridged lab grows, shrinks and is repaired
 * with `pulumi up` (and `up --refresh`), and right after each run every host reaches
 * its gateway, its neighbours and the outside at the first try (one ping, one second).
 */
import { describe, expect, it } from "vitest";
import { Lab, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

/**
 * A bridge in the program's namespace holding the gateway (its name defaults to the
 * resource's), N hosts on it with default routes, forwarding, and masquerade out to a
 * namespace `wan` that has no route back: traffic to it passes only through the NAT.
 * Host 4's bridge port has the MAC 02:00:00:00:00:01, lower than any other port's.
 */
export const BRIDGED_LAB = `
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const count = new pulumi.Config().getNumber("hosts") ?? 3;
const br0 = new nslab.Bridge("br0", { addresses: ["192.168.7.1/24"], mtu: 1400 });
export const hosts = Array.from({ length: count }, (_, i) => {
  const n = i + 1;
  const ns = new nslab.Namespace(\`h\${n}\`);
  const link = new nslab.VethPair(\`h\${n}-link\`, {
    a: { name: "eth0", namespace: ns.name, addresses: [\`192.168.7.\${10 + n}/24\`] },
    b: { name: \`h\${n}-br\`, master: br0.name, ...(n === 4 ? { mac: "02:00:00:00:00:01" } : {}) },
    mtu: 1400,
  });
  new nslab.Route(\`h\${n}-default\`, { namespace: ns.name, destination: "default", gateway: "192.168.7.1" }, { dependsOn: [link, br0] });
  return ns.name;
});
const wan = new nslab.Namespace("wan");
const uplink = new nslab.VethPair("uplink", {
  a: { name: "up0", addresses: ["10.7.0.1/24"] },
  b: { name: "wan0", namespace: wan.name, addresses: ["10.7.0.2/24"] },
});
new nslab.IpForwarding("forwarding", { ipv4: true });
new nslab.NatRule("masquerade", { kind: "masquerade", source: "192.168.7.0/24", outInterface: "up0" }, { dependsOn: [uplink] });
export const bridgeMac = br0.mac;
`;

const GATEWAY = "192.168.7.1";
const hostAddress = (n: number) => `192.168.7.${10 + n}`;

/** One ping, one second: the "first try". */
async function once(sandbox: Sandbox, from: string, to: string): Promise<boolean> {
  return (await sandbox.run("ip", ["netns", "exec", from, "ping", "-c", "1", "-W", "1", to])).exitCode === 0;
}

/**
 * Every host reaches the gateway, host 1 (and host 1 every other), and the outside
 * through the NAT, each at the first try; returns what failed.
 */
export async function trafficFailures(sandbox: Sandbox, hosts: number): Promise<string[]> {
  const failed: string[] = [];
  for (let n = 1; n <= hosts; n++) {
    for (const to of [GATEWAY, "10.7.0.2", ...(n === 1 ? [] : [hostAddress(1)])]) {
      if (!(await once(sandbox, `h${n}`, to))) failed.push(`h${n} -> ${to}`);
    }
  }
  return failed;
}

const bridgeMac = async (sandbox: Sandbox) => JSON.parse(await sandbox.must("ip", ["-j", "link", "show", "br0"]))[0].address as string;

describe("changing a running bridged lab", () => {
  let sandbox: Sandbox;
  sandboxPerTest((s) => (sandbox = s));

  it("a host with a lower port MAC joins, a veth deleted by hand is recreated: the bridge MAC never moves and nobody loses the gateway", async () => {
    const lab = await Lab.create(sandbox, "grow", BRIDGED_LAB, { config: { hosts: "3" } });
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await trafficFailures(sandbox, 3)).toEqual([]);
    const mac = await bridgeMac(sandbox);
    expect((await lab.outputs()).bridgeMac).toBe(mac);
    expect(mac).not.toBe("02:00:00:00:00:01");

    // (a) A fourth host whose bridge port has a lower MAC than any: an unpinned bridge
    // would take it, and the three old hosts would keep the old one for the gateway.
    await lab.ok(["config", "set", "hosts", "4"]);
    const grow = await lab.up();
    expect(grow.exitCode, show(grow)).toBe(0);
    expect(await bridgeMac(sandbox)).toBe(mac);
    expect(await trafficFailures(sandbox, 4)).toEqual([]);

    // (b) A host's veth deleted by hand, repaired by `up --refresh`.
    await sandbox.must("ip", ["-n", "h2", "link", "del", "eth0"]);
    const repair = await lab.up(["--refresh"]);
    expect(repair.exitCode, show(repair)).toBe(0);
    expect(await bridgeMac(sandbox)).toBe(mac);
    expect(await trafficFailures(sandbox, 4)).toEqual([]);

    // Shrink back to three: the host that owned the lowest MAC leaves.
    await lab.ok(["config", "set", "hosts", "3"]);
    const shrink = await lab.up();
    expect(shrink.exitCode, show(shrink)).toBe(0);
    expect(await bridgeMac(sandbox)).toBe(mac);
    expect(await trafficFailures(sandbox, 3)).toEqual([]);

    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("ten kinds of hand-made drift: each is reported, and after `up --refresh` the lab passes traffic at the first try", async () => {
    const lab = await Lab.create(sandbox, "drift10", BRIDGED_LAB, { config: { hosts: "3" } });
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await trafficFailures(sandbox, 3)).toEqual([]);
    const mac = await bridgeMac(sandbox);
    const drifts: [string, string[]][] = [
      ["veth deleted", ["ip", "-n", "h1", "link", "del", "eth0"]],
      ["address flushed", ["ip", "-n", "h2", "addr", "flush", "dev", "eth0"]],
      ["link down", ["ip", "-n", "h3", "link", "set", "eth0", "down"]],
      ["port detached", ["ip", "link", "set", "h1-br", "nomaster"]],
      ["bridge mtu changed", ["ip", "link", "set", "br0", "mtu", "1300"]],
      ["route deleted", ["ip", "-n", "h2", "route", "del", "default"]],
      ["forwarding off", ["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]],
      ["nft ruleset flushed", ["nft", "flush", "ruleset"]],
      ["namespace deleted", ["ip", "netns", "delete", "h3"]],
      ["an extra address", ["ip", "-n", "h1", "addr", "add", "192.168.7.99/24", "dev", "eth0"]],
    ];
    for (const [kind, command] of drifts) {
      await sandbox.must(command[0], command.slice(1));
      const seen = await lab.driftCheck();
      expect(seen.exitCode, `${kind}: drift check\n${show(seen)}`).toBe(7);
      const repair = await lab.up(["--refresh"]);
      expect(repair.exitCode, `${kind}: up --refresh\n${show(repair)}`).toBe(0);
      expect(await trafficFailures(sandbox, 3), `${kind}: traffic right after up --refresh`).toEqual([]);
      expect(await bridgeMac(sandbox), kind).toBe(mac);
      const clean = await lab.driftCheck();
      expect(clean.exitCode, `${kind}: drift check after the repair\n${show(clean)}`).toBe(0);
    }
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  }, 600_000);
});
