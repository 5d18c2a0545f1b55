import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { pings, unreachable } from "../helpers/net";
import { running } from "../helpers/proc";
import { Sandbox } from "../helpers/sandbox";

const WHOAMI = path.join(REPO, "examples/04-routing-nat/whoami.py");

// Scenario 3, with components: 3 lines of lab.
const SCENARIO_3 = `
import * as nslab from "nslab";
const lan = new nslab.BridgedNetwork("lan", { cidr: "192.168.1.0/24", bridgeName: "br0", hosts: ["ns1", "ns2", "ns3"] });
export const topology = lan.topology;
export const ascii = lan.topology.apply((t) => nslab.toAscii([t]));
`;

// Scenario 4, with components (the outside simulated by a wan namespace).
const SCENARIO_4 = `
import * as nslab from "nslab";
const lan = new nslab.BridgedNetwork("lan", { cidr: "192.168.1.0/24", bridgeName: "br0", gateway: true, hosts: ["ns1", "ns2"] });
const wan = new nslab.Namespace("wan");
const uplink = new nslab.VethPair("uplink", {
  a: { name: "uplink", addresses: ["10.0.2.15/24"] },
  b: { name: "wan0", namespace: wan.name, addresses: ["10.0.2.2/24"] },
});
const nat = new nslab.NatGateway("nat", {
  sources: [lan], uplink: "uplink",
  portForwards: [{ protocol: "tcp", port: 8080, toAddress: "192.168.1.3", toPort: 80 }],
}, { dependsOn: [uplink] });
export const mermaid = lan.topology.apply((t) => nslab.toMermaid([t, nat.topology]));
`;

describe("components through the real Pulumi engine", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  sandboxPerTest((s) => (sandbox = s));

  it("scenario 3 in a few lines: every namespace reaches every other; topology and sketch as outputs", async () => {
    expect(SCENARIO_3.trim().split("\n").length).toBeLessThan(20);
    lab = await Lab.create(sandbox, "comp-s3", SCENARIO_3);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const outs = await lab.outputs();
    expect(outs.topology).toMatchObject({
      kind: "BridgedNetwork",
      cidr: "192.168.1.0/24",
      bridge: { name: "br0" },
      hosts: [
        { name: "ns1", namespace: "ns1", address: "192.168.1.1", interface: "eth-lan", port: "lan-ns1" },
        { name: "ns2", address: "192.168.1.2" },
        { name: "ns3", address: "192.168.1.3" },
      ],
    });
    expect(String(outs.ascii)).toContain("192.168.1.3/24");
    const hosts = [1, 2, 3].map((n) => ({ ns: `ns${n}`, address: `192.168.1.${n}` }));
    expect(await unreachable(sandbox, hosts)).toEqual([]);
    // The drift check against the state sees the component's resources (URNs with the
    // component's type before their own) and finds them clean.
    const byState = await sandbox.run(path.join(REPO, "scripts/drift-check"), ["--against-state", "--cwd", lab.dir, "--stack", lab.stack], { env: lab.env() });
    expect(byState.exitCode, show(byState)).toBe(0);
    expect(byState.stdout).toContain("no drift: the live lab matches the stack's state");
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("scenario 4 in a few lines: out through masquerade, in through a port forward", async () => {
    expect(SCENARIO_4.trim().split("\n").length).toBeLessThan(20);
    lab = await Lab.create(sandbox, "comp-s4", SCENARIO_4);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(String((await lab.outputs()).mermaid)).toContain('lan_ns2["ns2: eth-lan 192.168.1.3"] --- lan_br');
    expect(await pings(sandbox, "ns1", "10.0.2.2")).toBe(true);
    const server = sandbox.spawn("ip", ["netns", "exec", "wan", "python3", WHOAMI, "serve", "80", "1"]);
    await new Promise((r) => server.stdout!.once("data", r));
    expect(await sandbox.must("ip", ["netns", "exec", "ns2", "python3", WHOAMI, "ask", "10.0.2.2", "80"])).toMatch(/saw 10\.0\.2\.15:/);
    const inside = sandbox.spawn("ip", ["netns", "exec", "ns2", "python3", WHOAMI, "serve", "80", "1"]);
    await new Promise((r) => inside.stdout!.once("data", r));
    expect(await sandbox.must("ip", ["netns", "exec", "wan", "python3", WHOAMI, "ask", "10.0.2.15", "8080"])).toMatch(/saw 10\.0\.2\.2:/);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("adding and removing hosts renames nobody, restarts no Process on the network and, with allocation \"stable\", moves nobody", async () => {
    // A program on alpha that depends on the whole network (its links' generations): one
    // host going and another coming in the same up (a rename) is no link of its made anew.
    const program = (hosts: string[]) => `
import * as nslab from "nslab";
const lan = new nslab.BridgedNetwork("lan", { cidr: "10.50.0.0/16", gateway: true, allocation: "stable", hosts: ${JSON.stringify(hosts)} });
export const addresses = Object.fromEntries(lan.hosts.map((h) => [h.name, h.address]));
const sleeper = new nslab.Process("sleeper", { namespace: lan.namespaces["alpha"].name, command: ["/bin/sleep", "300"] }, { dependsOn: [lan] });
export const pid = sleeper.pid;
`;
    lab = await Lab.create(sandbox, "comp-stable", program(["alpha", "bravo", "charlie"]));
    expect((await lab.up()).exitCode).toBe(0);
    const before = (await lab.outputs()).addresses as Record<string, string>;
    const pid = (await lab.outputs()).pid as number;
    const ifindex = async (ns: string) => JSON.parse(await sandbox.must("ip", ["-n", ns, "-j", "link", "show", "eth-lan"]))[0].ifindex;
    const port = async (host: string) => JSON.parse(await sandbox.must("ip", ["-j", "link", "show", `lan-${host}`]))[0].ifindex;
    const kept = { alpha: [await ifindex("alpha"), await port("alpha")], charlie: [await ifindex("charlie"), await port("charlie")] };

    lab.write(program(["delta", "alpha", "charlie"]));
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const after = (await lab.outputs()).addresses as Record<string, string>;
    expect(after.alpha).toBe(before.alpha);
    expect(after.charlie).toBe(before.charlie);
    // Same interfaces, untouched: neither renamed nor replaced.
    expect([await ifindex("alpha"), await port("alpha")]).toEqual(kept.alpha);
    expect([await ifindex("charlie"), await port("charlie")]).toEqual(kept.charlie);
    expect(await pings(sandbox, "delta", after.alpha)).toBe(true);
    expect((await lab.outputs()).pid).toBe(pid);
    expect(running(pid)).toBe(true);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(running(pid)).toBe(false);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a host removed from a sequential network: the host that takes its address, and a host added with another's former address, are reached at the first try (the addresses are announced)", async () => {
    const program = (hosts: string[]) => `
import * as nslab from "nslab";
const lan = new nslab.BridgedNetwork("lan", { cidr: "10.51.0.0/24", gateway: true, hosts: ${JSON.stringify(hosts)} });
export const addresses = Object.fromEntries(lan.hosts.map((h) => [h.name, h.address]));
`;
    lab = await Lab.create(sandbox, "comp-seq", program(["sa", "sb", "sc"]));
    expect((await lab.up()).exitCode).toBe(0);
    const before = (await lab.outputs()).addresses as Record<string, string>;
    // Every neighbour learns every other: sa and the gateway know sb's address as sb's.
    for (const from of ["sa", "sb", "sc"]) for (const to of ["10.51.0.1", ...Object.values(before)]) await pings(sandbox, from, to);
    lab.write(program(["sa", "sc"]));
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const after = (await lab.outputs()).addresses as Record<string, string>;
    expect(after.sc).toBe(before.sb);
    // At the first try, from sc's side and from its neighbours'.
    expect(await pings(sandbox, "sc", "10.51.0.1")).toBe(true);
    expect(await pings(sandbox, "sa", after.sc)).toBe(true);
    // A host added now takes sc's first address: a new interface, which its neighbours
    // (sa, the gateway) knew as sc's. Announced when made: reached at the first try.
    lab.write(program(["sa", "sc", "sd"]));
    const grown = await lab.up();
    expect(grown.exitCode, show(grown)).toBe(0);
    const last = (await lab.outputs()).addresses as Record<string, string>;
    expect(last.sd).toBe(before.sc);
    expect(await pings(sandbox, "sa", last.sd)).toBe(true);
    expect((await sandbox.run("ping", ["-c", "1", "-W", "2", last.sd])).exitCode).toBe(0);
    expect(await pings(sandbox, "sd", last.sa)).toBe(true);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a Router joins two networks whose gateway it holds", async () => {
    lab = await Lab.create(
      sandbox,
      "comp-router",
      `
import * as nslab from "nslab";
const left = new nslab.BridgedNetwork("left", { cidr: "10.1.0.0/24", gateway: true, gatewayOnBridge: false, hosts: ["a1", "a2"] });
const right = new nslab.BridgedNetwork("right", { cidr: "10.2.0.0/24", gateway: true, gatewayOnBridge: false, hosts: ["b1"] });
const rtr = new nslab.Router("rtr", { attach: [{ network: left }, { network: right }] });
export const router = rtr.topology;
`,
    );
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect((await lab.outputs()).router).toEqual({
      kind: "Router",
      name: "rtr",
      namespace: "rtr",
      attachments: [
        { network: "left", interface: "to-left", address: "10.1.0.1" },
        { network: "right", interface: "to-right", address: "10.2.0.1" },
      ],
    });
    expect(await pings(sandbox, "a1", "10.2.0.2")).toBe(true);
    expect(await pings(sandbox, "b1", "10.1.0.3")).toBe(true);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("bad component arguments fail at preview with the component's name", async () => {
    const cases: [string, RegExp][] = [
      [`new nslab.BridgedNetwork("a", { cidr: "10.0.0.0/16", hosts: ["x"] });\nnew nslab.BridgedNetwork("b", { cidr: "10.0.1.0/24", hosts: ["y"] });`, /BridgedNetwork "b": cidr 10.0.1.0\/24 overlaps 10.0.0.0\/16 of BridgedNetwork "a"/],
      [`new nslab.BridgedNetwork("tiny", { cidr: "10.0.0.0/30", gateway: true, hosts: ["x", "y"] });`, /BridgedNetwork "tiny": 10.0.0.0\/30 holds 2 addresses but 2 hosts and a gateway/],
      [`new nslab.BridgedNetwork("dup", { cidr: "10.0.0.0/24", hosts: ["x", "x"] });`, /BridgedNetwork "dup": host "x" is listed twice/],
      [`new nslab.BridgedNetwork("gw", { cidr: "10.0.0.0/24", gateway: "10.9.0.1", hosts: ["x"] });`, /BridgedNetwork "gw": gateway 10.9.0.1 is outside 10.0.0.0\/24/],
      // As a JavaScript program (or TypeScript with noCheck) may write them: refused, not ignored.
      [`new nslab.BridgedNetwork("typo", { cidr: "10.0.0.0/24", hosts: ["x"], gatway: true } as never);`, /BridgedNetwork "typo": gatway is not an argument \(did you mean gateway\?\)/],
      [`new nslab.NatGateway("nat", { sources: ["10.0.0.0/24"] } as never);`, /NatGateway "nat": uplink is required \(a string\)/],
    ];
    for (const [body, reason] of cases) {
      lab = await Lab.create(sandbox, "comp-bad", `import * as nslab from "nslab";\n${body}\n`);
      const r = await lab.preview();
      expect(r.exitCode, show(r)).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(reason);
    }
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a 100-host BridgedNetwork comes up and every host reaches the gateway", async () => {
    lab = await Lab.create(
      sandbox,
      "comp-100",
      `
import * as nslab from "nslab";
const big = new nslab.BridgedNetwork("big", {
  cidr: "10.100.0.0/24", gateway: true,
  hosts: Array.from({ length: 100 }, (_, i) => \`h\${i + 1}\`),
});
export const hosts = big.hosts.map((h) => h.address);
`,
    );
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const addresses = (await lab.outputs()).hosts as string[];
    expect(addresses).toHaveLength(100);
    expect(addresses[0]).toBe("10.100.0.2");
    expect(addresses[99]).toBe("10.100.0.101");
    const failed: string[] = [];
    for (let i = 1; i <= 100; i++) if (!(await pings(sandbox, `h${i}`, "10.100.0.1"))) failed.push(`h${i}`);
    expect(failed).toEqual([]);
    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
