/**
 * Changing a running lab never breaks it: a bridged lab grows, shrinks and is repaired
 * with `pulumi up` (and `up --refresh`), and right after each run every host reaches
 * its gateway, its neighbours and the outside at the first try (one ping, one second).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

/**
 * The outside of a lab program: a namespace `wan` behind an uplink (WAN.1 here, WAN.2
 * there, no route back), forwarding, and masquerade of LAN.0/24 out of the uplink.
 */
const outside = (lan: string, wan: string) => `const wan = new nslab.Namespace("wan");
const uplink = new nslab.VethPair("uplink", {
  a: { name: "up0", addresses: ["${wan}.1/24"] },
  b: { name: "wan0", namespace: wan.name, addresses: ["${wan}.2/24"] },
});
new nslab.IpForwarding("forwarding", { ipv4: true });
new nslab.NatRule("masquerade", { kind: "masquerade", source: "${lan}.0/24", outInterface: "up0" }, { dependsOn: [uplink] });`;

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
${outside("192.168.7", "10.7.0")}
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

/**
 * A lab whose every changeable part is config: host 1's addresses and interface name,
 * the bridge's name, whether host 2's link is up, host 3's interface name; host 3's
 * bridge port is rate-limited (a LinkImpairment that depends on its pair).
 */
const CHANGING_LAB = `
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const config = new pulumi.Config();
const br = new nslab.Bridge("br", { name: config.get("bridge") ?? "br0", addresses: ["192.168.8.1/24"] });
for (const n of [1, 2, 3]) {
  const ns = new nslab.Namespace(\`h\${n}\`);
  const link = new nslab.VethPair(\`h\${n}-link\`, {
    a: {
      name: config.get(\`ifname\${n}\`) ?? "eth0",
      namespace: ns.name,
      addresses: (config.get(\`addresses\${n}\`) ?? \`192.168.8.\${10 + n}/24\`).split(","),
      up: config.get(\`up\${n}\`) !== "false",
    },
    b: { name: \`h\${n}-br\`, master: br.name },
  });
  new nslab.Route(\`h\${n}-default\`, { namespace: ns.name, destination: "default", gateway: "192.168.8.1" }, { dependsOn: [link, br] });
  if (n === 3) new nslab.LinkImpairment("h3-port", { device: \`h\${n}-br\`, egress: { rate: "100mbit" } }, { dependsOn: [link] });
}
${outside("192.168.8", "10.8.0")}
`;

describe("changing the program of a running lab", () => {
  let sandbox: Sandbox;
  sandboxPerTest((s) => (sandbox = s));

  it("addresses changed, a subnet's first address removed, interfaces and the bridge renamed, a link down and up again, an impaired port made anew: after each plain `up` every host reaches its gateway and the outside at the first try, and nothing drifted", async () => {
    const lab = await Lab.create(sandbox, "reshape", CHANGING_LAB);
    /** Hosts that are up reach the gateway and the outside at the first try; the drift check is clean. */
    const proven = async (step: string, down: number[] = []) => {
      const up = await lab.up();
      expect(up.exitCode, `${step}: up\n${show(up)}`).toBe(0);
      const failed: string[] = [];
      for (const n of [1, 2, 3].filter((h) => !down.includes(h))) {
        for (const to of ["192.168.8.1", "10.8.0.2"]) if (!(await once(sandbox, `h${n}`, to))) failed.push(`h${n} -> ${to}`);
      }
      expect(failed, `${step}: traffic right after up\n${await sandbox.must("ip", ["-n", "h1", "route"])}`).toEqual([]);
      expect(await sandbox.must("tc", ["qdisc", "show", "dev", "h3-br"]), `${step}: h3's port keeps its rate`).toMatch(/qdisc tbf .* rate 100Mbit/);
      const drift = await lab.driftCheck();
      if (down.length === 0) {
        expect(drift.exitCode, `${step}: drift check\n${show(drift)}`).toBe(0);
      } else {
        // A link that is down has no routes (the kernel removed them): that, and only that, is drift.
        expect(drift.exitCode, `${step}: drift check\n${show(drift)}`).toBe(7);
        const created = [...drift.stdout.matchAll(/\+ pulumi-nodejs:dynamic\/nslab:(\w+): \(create\)\n\s+\[urn=[^\]]*::(\S+)\]/g)].map((m) => `${m[1]} ${m[2]}`);
        expect(created, `${step}: drift check\n${show(drift)}`).toEqual(down.map((n) => `Route h${n}-default`));
        expect(drift.stdout, `${step}: drift check`).toMatch(new RegExp(`\\+ ${down.length} to create\\n\\s+\\d+ unchanged\\n`));
      }
      return up;
    };
    /** The resources `pulumi preview` plans to change, as "KIND NAME op". */
    const planned = async (step: string, rows: string[]) => {
      const p = await lab.pulumi(["preview", "--non-interactive"]);
      expect(p.exitCode, show(p)).toBe(0);
      // A row is " ~  TYPE NAME update [diff: ...]"; on a slow machine a row may follow
      // the engine's "@ previewing update...." dots on the same line.
      const seen = [...p.stdout.matchAll(/(?:^|\.)\s*[-+~]{1,2}\s+pulumi-nodejs:dynamic\/nslab:(\w+) (\S+) (update|replace|create|delete)\b/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
      expect([...new Set(seen)].sort(), `${step}: the preview's plan\n${p.stdout}`).toEqual(rows);
    };
    await proven("first up");
    // Host 1's only address changed: never without one (it would lose its default route).
    // In place: a preview cannot know whether the pair's generation changes, so it plans
    // the route too; the update itself leaves it alone.
    await lab.ok(["config", "set", "addresses1", "192.168.8.15/24"]);
    await planned("address changed", ["Route h1-default update", "VethPair h1-link update"]);
    expect((await proven("address changed")).stdout).not.toMatch(/Route h1-default updat/);
    // A second address of the subnet, then the first one removed: the second stays.
    await lab.ok(["config", "set", "addresses1", "192.168.8.15/24,192.168.8.20/24"]);
    await proven("address added");
    await lab.ok(["config", "set", "addresses1", "192.168.8.20/24"]);
    await proven("first address removed");
    expect(await sandbox.must("ip", ["-n", "h1", "-br", "-4", "addr", "show", "dev", "eth0"])).toMatch(/192\.168\.8\.20\/24/);
    // Host 1's interface renamed: the pair is made anew, and with it the route through it.
    await lab.ok(["config", "set", "ifname1", "eth1"]);
    await planned("interface renamed", ["Route h1-default update", "VethPair h1-link create", "VethPair h1-link delete", "VethPair h1-link replace"]);
    expect((await proven("interface renamed")).stdout).toMatch(/Route h1-default updated/);
    // The bridge renamed: made anew, with every port.
    await lab.ok(["config", "set", "bridge", "br1"]);
    await proven("bridge renamed");
    // Host 2's link down (the kernel drops its route), then up again: the route is back.
    await lab.ok(["config", "set", "up2", "false"]);
    await proven("link down", [2]);
    await lab.ok(["config", "set", "up2", "true"]);
    await proven("link up again");
    // Host 3's pair made anew (its interface renamed): its port's qdisc with it.
    await lab.ok(["config", "set", "ifname3", "eth3"]);
    await planned("impaired port made anew", ["LinkImpairment h3-port update", "Route h3-default update", "VethPair h3-link create", "VethPair h3-link delete", "VethPair h3-link replace"]);
    expect((await proven("impaired port made anew")).stdout).toMatch(/LinkImpairment h3-port updated/);

    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  }, 600_000);

  it("a lab made by an nslab from before generations: one plain `up` records them (writing nothing new), after which the drift check is clean and a renamed interface keeps its route", async () => {
    const lab = await Lab.create(sandbox, "upgrade", CHANGING_LAB);
    const first = await lab.up();
    expect(first.exitCode, show(first)).toBe(0);
    // The state as an earlier nslab wrote it: no generation, no __links.
    const exported = JSON.parse((await lab.ok(["stack", "export"])).stdout);
    for (const r of exported.deployment.resources) {
      for (const part of ["inputs", "outputs"]) if (r[part]) for (const key of ["generation", "__links"]) delete r[part][key];
    }
    const file = path.join(lab.dir, "legacy.json");
    fs.writeFileSync(file, JSON.stringify(exported));
    await lab.ok(["stack", "import", "--file", file]);
    const routesBefore = await sandbox.must("ip", ["-n", "h1", "route"]);
    // Interfaces are updated once, to record their generations; what depends on them, to record those.
    const plan = await lab.pulumi(["preview", "--non-interactive"]);
    expect(plan.stdout, show(plan)).toMatch(/~ 9 to update/);
    const migrated = await lab.up();
    expect(migrated.exitCode, show(migrated)).toBe(0);
    expect(await sandbox.must("ip", ["-n", "h1", "route"])).toBe(routesBefore);
    const drift = await lab.driftCheck();
    expect(drift.exitCode, show(drift)).toBe(0);
    const again = await lab.pulumi(["preview", "--non-interactive", "--expect-no-changes"]);
    expect(again.exitCode, show(again)).toBe(0);
    // And the protection holds from then on.
    await lab.ok(["config", "set", "ifname1", "eth1"]);
    const renamed = await lab.up();
    expect(renamed.exitCode, show(renamed)).toBe(0);
    expect(await once(sandbox, "h1", "10.8.0.2")).toBe(true);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  }, 600_000);
});
