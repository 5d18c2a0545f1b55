/**
 * Two "sites" joined by VXLAN through the real CLI: the local rehearsal of the
 * multi-host HostLink of issue 19. Namespaces siteA and siteB stand for two machines;
 * the only path between them is an underlay veth (10.99.0.1/24 <-> 10.99.0.2/24). Each
 * site has a bridge br0 (one name in two namespaces, as on two machines) with a host namespace on it, and a Vxlan (vni 42) that is a port of
 * the site's bridge: the two bridges become one segment, so hostA and hostB
 * (10.50.0.0/24) reach each other only through UDP port 4789 on the underlay.
 *
 *   hostA --veth-- [br0 + vx42]siteA --underlay veth-- siteB[vx42 + br0] --veth-- hostB
 */
import { describe, expect, it } from "vitest";
import { Lab, sandboxPerTest, show } from "../helpers/lab";
import { pings } from "../helpers/net";
import { Sandbox } from "../helpers/sandbox";

const PROGRAM = `
import * as nslab from "nslab";
const siteA = new nslab.Namespace("siteA");
const siteB = new nslab.Namespace("siteB");
// The underlay: the only link between the two sites. Each site's bridge is "br0": the
// preview check of a port's master tells same-named bridges apart by namespace.
new nslab.VethPair("underlay", {
  a: { name: "ul-a", namespace: siteA.name, addresses: ["10.99.0.1/24"] },
  b: { name: "ul-b", namespace: siteB.name, addresses: ["10.99.0.2/24"] },
});
const sites = [
  { site: siteA, tag: "A", local: "10.99.0.1", remote: "10.99.0.2", host: "10.50.0.11/24" },
  { site: siteB, tag: "B", local: "10.99.0.2", remote: "10.99.0.1", host: "10.50.0.12/24" },
];
for (const s of sites) {
  const br = new nslab.Bridge("br" + s.tag, { name: "br0", namespace: s.site.name });
  const host = new nslab.Namespace("host" + s.tag);
  new nslab.VethPair("host" + s.tag + "-link", {
    a: { name: "eth0", namespace: host.name, addresses: [s.host] },
    b: { name: "h" + s.tag + "-br", namespace: s.site.name, master: br.name },
  });
  new nslab.Vxlan("vx" + s.tag, { name: "vx42", namespace: s.site.name, vni: 42, local: s.local, remote: s.remote, dstPort: 4789, master: br.name });
}
`;

describe("Vxlan: two sites joined only by an underlay, through the real CLI", () => {
  let sandbox: Sandbox;
  sandboxPerTest((s) => (sandbox = s));

  /** Starts a capture of one VXLAN packet on siteA's underlay; resolves once it listens. */
  const captureUnderlay = async () => {
    const tcpdump = sandbox.spawn("ip", ["netns", "exec", "siteA", "timeout", "20", "tcpdump", "-n", "-l", "-c", "1", "-i", "ul-a", "udp", "port", "4789"]);
    let out = "";
    tcpdump.stdout!.on("data", (d) => (out += String(d)));
    await new Promise<void>((resolve, reject) => {
      tcpdump.stderr!.on("data", (d) => String(d).includes("listening on") && resolve());
      tcpdump.once("exit", (code) => reject(new Error(`tcpdump exited ${code} before listening`)));
    });
    return new Promise<string>((resolve) => tcpdump.once("exit", () => resolve(out)));
  };

  it("hosts on different sites ping across the VXLAN; the underlay carries UDP 4789; drift is found and repaired; an underlay made anew takes the Vxlans along and they are made again; destroy leaves nothing", async () => {
    const lab = await Lab.create(sandbox, "vxlan", PROGRAM);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);

    const captured = captureUnderlay();
    // At the first try, both ways.
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(true);
    expect(await pings(sandbox, "hostB", "10.50.0.11")).toBe(true);
    expect(await captured).toMatch(/10\.99\.0\.[12]\.\d+ > 10\.99\.0\.[12]\.4789: VXLAN.*vni 42/);
    const live = JSON.parse(await sandbox.must("ip", ["-n", "siteA", "-j", "-d", "link", "show", "vx42"]))[0];
    expect(live).toMatchObject({ master: "br0", linkinfo: { info_kind: "vxlan", info_data: { id: 42, local: "10.99.0.1", remote: "10.99.0.2", port: 4789, learning: true } } });

    // Quiet refresh: nothing changed, nothing shown.
    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);
    expect(clean.stdout).not.toMatch(/diff:|=>/);

    // Drift 1: learning flipped by hand on siteB.
    await sandbox.must("ip", ["-n", "siteB", "link", "set", "vx42", "type", "vxlan", "nolearning"]);
    const flipped = await lab.driftCheck();
    expect(flipped.exitCode, show(flipped)).toBe(7);
    expect(flipped.stdout).toMatch(/learning/);
    const repair1 = await lab.up(["--refresh"]);
    expect(repair1.exitCode, show(repair1)).toBe(0);
    expect(JSON.parse(await sandbox.must("ip", ["-n", "siteB", "-j", "-d", "link", "show", "vx42"]))[0].linkinfo.info_data.learning).toBe(true);
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(true);

    // Drift 2: the vxlan device deleted by hand on siteA: the sites are cut off.
    await sandbox.must("ip", ["-n", "siteA", "link", "del", "vx42"]);
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(false);
    const gone = await lab.driftCheck();
    expect(gone.exitCode, show(gone)).toBe(7);
    const repair2 = await lab.up(["--refresh"]);
    expect(repair2.exitCode, show(repair2)).toBe(0);
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(true);
    expect(await pings(sandbox, "hostB", "10.50.0.11")).toBe(true);
    expect((await lab.driftCheck()).exitCode).toBe(0);

    // Drift 3: the tunnel's default forwarding entry deleted by hand on siteA. The device
    // still shows remote 10.99.0.2, but frames for unknown MACs (ARP) go nowhere.
    await sandbox.must("ip", ["netns", "exec", "siteA", "bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx42", "dst", "10.99.0.2"]);
    await sandbox.must("ip", ["-n", "hostA", "neigh", "flush", "all"]);
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(false);
    const unsent = await lab.driftCheck();
    expect(unsent.exitCode, show(unsent)).toBe(7);
    expect(unsent.stdout).toMatch(/remote\s*: "10\.99\.0\.2"/);
    const repair3 = await lab.up(["--refresh"]);
    expect(repair3.exitCode, show(repair3)).toBe(0);
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(true);
    expect((await lab.driftCheck()).exitCode).toBe(0);

    // In place: siteB's underlay re-addressed (10.99.0.2 -> 10.99.0.3) with both tunnels'
    // ends. siteA's vx42 learned hostB's MAC at 10.99.0.2: those entries are forgotten, so
    // hostA's next frame (its neighbour entry for hostB kept) takes the new remote at once.
    const learnedAt = async (dst: string) =>
      (JSON.parse(await sandbox.must("ip", ["netns", "exec", "siteA", "bridge", "-json", "fdb", "show", "dev", "vx42"])) as { mac: string; dst?: string; state?: string }[]).filter(
        (e) => e.dst === dst && !e.state && e.mac !== "00:00:00:00:00:00",
      );
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(true);
    expect(await learnedAt("10.99.0.2")).not.toEqual([]);
    lab.edit('addresses: ["10.99.0.2/24"]', 'addresses: ["10.99.0.3/24"]');
    lab.edit('local: "10.99.0.2"', 'local: "10.99.0.3"');
    lab.edit('remote: "10.99.0.2"', 'remote: "10.99.0.3"');
    const moved = await lab.up();
    expect(moved.exitCode, show(moved)).toBe(0);
    expect(await learnedAt("10.99.0.2")).toEqual([]);
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(true);
    expect(await pings(sandbox, "hostB", "10.50.0.11")).toBe(true);

    // In place: learning off on both sides keeps the device (same ifindex) and traffic.
    const ifindex = JSON.parse(await sandbox.must("ip", ["-n", "siteA", "-j", "link", "show", "vx42"]))[0].ifindex;
    lab.edit("dstPort: 4789, master", "dstPort: 4789, learning: false, master");
    const change = await lab.up();
    expect(change.exitCode, show(change)).toBe(0);
    const after = JSON.parse(await sandbox.must("ip", ["-n", "siteA", "-j", "-d", "link", "show", "vx42"]))[0];
    expect(after).toMatchObject({ ifindex, linkinfo: { info_data: { learning: false } } });
    // Without learning the bridge floods to the one remote: traffic still passes.
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(true);
    // Bound to the underlay (device, dependsOn): the kernel deletes a VXLAN device with
    // its lower device, so when the underlay pair is made anew (an end renamed) both
    // Vxlans are made again in the same plain `pulumi up`, and traffic passes at once.
    lab.edit('new nslab.VethPair("underlay"', 'const underlay = new nslab.VethPair("underlay"');
    lab.edit("local: s.local,", 'local: s.local, device: s.tag === "A" ? "ul-a" : "ul-b",');
    lab.edit("master: br.name });", "master: br.name }, { dependsOn: [underlay] });");
    const bound = await lab.up();
    expect(bound.exitCode, show(bound)).toBe(0);
    expect(JSON.parse(await sandbox.must("ip", ["-n", "siteA", "-j", "-d", "link", "show", "vx42"]))[0].linkinfo.info_data.link).toBe("ul-a");
    lab.edit('name: "ul-a"', 'name: "ul-a2"');
    lab.edit('"ul-a" : "ul-b"', '"ul-a2" : "ul-b"');
    const plan = await lab.preview();
    expect(plan.exitCode, show(plan)).toBe(0);
    expect(plan.stdout).toMatch(/\+-pulumi-nodejs:dynamic\/nslab:VethPair: \(replace\)/);
    expect(plan.stdout.match(/~ pulumi-nodejs:dynamic\/nslab:Vxlan: \(update\)/g)).toHaveLength(2);
    const remade = await lab.up();
    expect(remade.exitCode, show(remade)).toBe(0);
    expect(await pings(sandbox, "hostA", "10.50.0.12")).toBe(true);
    expect(await pings(sandbox, "hostB", "10.50.0.11")).toBe(true);
    expect(JSON.parse(await sandbox.must("ip", ["-n", "siteA", "-j", "-d", "link", "show", "vx42"]))[0]).toMatchObject({ master: "br0", linkinfo: { info_data: { link: "ul-a2", learning: false } } });
    expect(JSON.parse(await sandbox.must("ip", ["-n", "siteB", "-j", "-d", "link", "show", "vx42"]))[0]).toMatchObject({ master: "br0", linkinfo: { info_data: { link: "ul-b" } } });
    const settled = await lab.driftCheck();
    expect(settled.exitCode, show(settled)).toBe(0);

    // A new vni is a replacement, shown as such by preview.
    lab.edit("vni: 42", "vni: 43");
    const replace = await lab.preview();
    expect(replace.exitCode, show(replace)).toBe(0);
    expect(replace.stdout).toMatch(/\+-pulumi-nodejs:dynamic\/nslab:Vxlan: \(replace\)/);

    const destroyed = await lab.destroy();
    expect(destroyed.exitCode, show(destroyed)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("bad arguments fail at preview, naming the resource, the property and the fix, and nothing is made", async () => {
    const lab = await Lab.create(sandbox, "vxlan-bad", `
import * as nslab from "nslab";
new nslab.Vxlan("vx-bad", { name: "vx1", vni: 0, remote: "239.1.1.1", dstPort: 4789 });
`);
    const r = await lab.preview();
    expect(r.exitCode, show(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Vxlan resource 'vx-bad': property vni value \{0\} has a problem: vni must be an integer from 1 to 16777215, got 0/);
    expect(r.stdout + r.stderr).toMatch(/'vx-bad': property remote .* is a multicast address; use group for a multicast group \(with device\)/);
    // The engine stops at the first resource that fails check: one per program.
    lab.write(`
import * as nslab from "nslab";
new nslab.Vxlan("vx-mixed", { name: "vx2", vni: 7, local: "10.99.0.1", remote: "fd00::2" });
`);
    const mixed = await lab.preview();
    expect(mixed.exitCode, show(mixed)).not.toBe(0);
    expect(mixed.stdout + mixed.stderr).toMatch(/'vx-mixed': property local .* is ipv4 but remote "fd00::2" is ipv6; the tunnel's endpoints must be of one family/);
    expect(await sandbox.residue()).toEqual([]);
  });
});
