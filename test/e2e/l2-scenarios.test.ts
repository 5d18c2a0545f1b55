import { describe, expect, it } from "vitest";
import { Lab, sandboxPerTest, show } from "../helpers/lab";
import { pings, unreachable } from "../helpers/net";
import { Sandbox } from "../helpers/sandbox";

const VETH = "pulumi-nodejs:dynamic/nslab:VethPair";

describe("scenarios 2 and 3 through the real Pulumi engine", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  sandboxPerTest((s) => (sandbox = s));

  it("scenario 2: a veth pair; pings; previews update vs replace; drift found and repaired; destroy leaves nothing", async () => {
    lab = await Lab.fromExample(sandbox, "02-veth-pair");
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await pings(sandbox, "ns1", "192.168.1.2")).toBe(true);
    expect(await pings(sandbox, "ns2", "192.168.1.1")).toBe(true);
    const outs = await lab.outputs();
    expect(outs.a).toMatchObject({ name: "veth-ns1", namespace: "ns1", addresses: ["192.168.1.1/24"], up: true });
    expect((outs.a as { mac: string }).mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);

    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);

    // An address change is an in-place update; a rename is a replacement.
    lab.edit('addresses: ["192.168.1.2/24"]', 'addresses: ["192.168.1.20/24"]');
    const update = await lab.preview();
    expect(update.exitCode, show(update)).toBe(0);
    expect(update.stdout).toMatch(new RegExp(`~ ${VETH}: \\(update\\)`));
    lab.edit('addresses: ["192.168.1.20/24"]', 'addresses: ["192.168.1.2/24"]');
    lab.edit('name: "veth-ns2"', 'name: "veth-ns2x"');
    const replace = await lab.preview();
    expect(replace.exitCode, show(replace)).toBe(0);
    expect(replace.stdout).toMatch(new RegExp(`\\+-${VETH}: \\(replace\\)`));
    // Carry the replacement out: the old pair goes, the new one works.
    const renamed = await lab.up();
    expect(renamed.exitCode, show(renamed)).toBe(0);
    expect(await sandbox.run("ip", ["-n", "ns2", "link", "show", "veth-ns2"])).toMatchObject({ exitCode: 1 });
    expect(await pings(sandbox, "ns1", "192.168.1.2")).toBe(true);
    lab.edit('name: "veth-ns2x"', 'name: "veth-ns2"');
    expect((await lab.up()).exitCode).toBe(0);

    // Drift 1: an address changed by hand, a link set down.
    await sandbox.must("ip", ["-n", "ns1", "addr", "del", "192.168.1.1/24", "dev", "veth-ns1"]);
    await sandbox.must("ip", ["-n", "ns1", "addr", "add", "192.168.1.99/24", "dev", "veth-ns1"]);
    await sandbox.must("ip", ["-n", "ns2", "link", "set", "veth-ns2", "down"]);
    const drift = await lab.driftCheck();
    expect(drift.exitCode, show(drift)).toBe(7);
    const repair = await lab.up(["--refresh"]);
    expect(repair.exitCode, show(repair)).toBe(0);
    expect(await pings(sandbox, "ns1", "192.168.1.2")).toBe(true);
    expect((await lab.driftCheck()).exitCode).toBe(0);

    // Drift 2: the veth deleted by hand.
    await sandbox.must("ip", ["-n", "ns1", "link", "del", "veth-ns1"]);
    expect((await lab.driftCheck()).exitCode).toBe(7);
    expect((await lab.up(["--refresh"])).exitCode).toBe(0);
    expect(await pings(sandbox, "ns1", "192.168.1.2")).toBe(true);

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("scenario 3: a bridge joins three namespaces; every one reaches every other; destroy leaves nothing", async () => {
    lab = await Lab.fromExample(sandbox, "03-bridge");
    // A preview of a lab not made yet: values still unknown pass check, nothing is made.
    const preview = await lab.preview();
    expect(preview.exitCode, show(preview)).toBe(0);
    expect(preview.stdout).toMatch(/\+ 8 to create/); // stack, bridge, 3 namespaces, 3 veth pairs
    expect(await sandbox.residue()).toEqual([]);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const hosts = [1, 2, 3].map((n) => ({ ns: `ns${n}`, address: `192.168.1.${n}` }));
    expect(await unreachable(sandbox, hosts)).toEqual([]);
    const ports = await sandbox.must("ip", ["-o", "link", "show", "master", "br0"]);
    expect(ports.trim().split("\n")).toHaveLength(3);

    // A port detached by hand is drift; up --refresh puts it back.
    await sandbox.must("ip", ["link", "set", "veth-ns2-br", "nomaster"]);
    expect(await pings(sandbox, "ns1", "192.168.1.2")).toBe(false);
    expect((await lab.driftCheck()).exitCode).toBe(7);
    expect((await lab.up(["--refresh"])).exitCode).toBe(0);
    expect(await unreachable(sandbox, hosts)).toEqual([]);

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
