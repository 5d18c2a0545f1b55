/**
 * A resource the engine makes again under another URN, or replaces creating first,
 * while its object stays: `pulumi up --replace` (Pulumi creates the replacement before
 * deleting the original) and resources put under a component without `aliases` (a
 * create of the new URN, a delete of the old). nslab's create takes over the object,
 * which carries its own mark; the delete of the old resource, in the same run, leaves
 * it to the new one (provider/index.ts madeThisRun). Before, that delete removed the
 * object the new resource held: the bridge or the namespace was gone, with `up` green.
 * When the run fails before that delete, the engine does it in a later run: the object's
 * record names a later create's token (`__made`), and the delete leaves the object too.
 */
import { describe, expect, it } from "vitest";
import { Lab, sandboxPerTest, show } from "../helpers/lab";
import { pings } from "../helpers/net";
import { Sandbox } from "../helpers/sandbox";

let sandbox: Sandbox;
sandboxPerTest((s) => (sandbox = s));

const LAB = `
const br = new nslab.Bridge("br", { name: "rbr0", addresses: ["10.62.0.1/24"] }, opts);
for (const i of [1, 2]) {
  const ns = new nslab.Namespace("h" + i, { name: "rh" + i }, opts);
  const link = new nslab.VethPair("h" + i + "-link", { a: { name: "eth0", namespace: ns.name, addresses: ["10.62.0.1" + i + "/24"] }, b: { name: "rh" + i + "-br", master: br.name } }, opts);
  new nslab.Route("h" + i + "-default", { namespace: ns.name, destination: "default", gateway: "10.62.0.1" }, { ...opts, dependsOn: [link] });
}
new nslab.IpForwarding("fwd", { ipv4: true }, opts);
`;
const FLAT = `
import * as nslab from "nslab";
const opts = {};
${LAB}`;
/** The same resources under a component of the user's, without aliases: new URNs. */
const NESTED = `
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";
class Site extends pulumi.ComponentResource {
  constructor(name: string) {
    super("user:index:Site", name);
    const opts = { parent: this };
    ${LAB}
    this.registerOutputs({});
  }
}
new Site("site");
`;

/** Both hosts reach the bridge's address and each other (FLAT's and NESTED's lab), at the first try. */
async function reachable(sandbox: Sandbox): Promise<void> {
  for (const [from, to] of [["rh1", "10.62.0.1"], ["rh1", "10.62.0.12"], ["rh2", "10.62.0.11"]]) expect(await pings(sandbox, from, to), `${from} -> ${to}`).toBe(true);
}

/** The URN of the lab's nslab resource of TYPE named NAME. */
async function urnOf(lab: Lab, type: string, name: string): Promise<string> {
  return (await lab.resources()).find((r) => r.type === `pulumi-nodejs:dynamic/nslab:${type}` && r.urn.endsWith(`::${name}`))!.urn;
}

describe("a resource made again under another URN keeps its object", () => {
  it("pulumi up --replace of a bridge and of a namespace, and resources moved under a component without aliases: the lab stays up, nothing is left", async () => {
    const lab = await Lab.create(sandbox, "replace", FLAT);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    await reachable(sandbox);

    for (const [type, name] of [["Bridge", "br"], ["Namespace", "h2"], ["IpForwarding", "fwd"]]) {
      const replaced = await lab.up(["--replace", await urnOf(lab, type, name)]);
      expect(replaced.exitCode, show(replaced)).toBe(0);
      expect(replaced.stdout, `${type} ${name}`).toMatch(/1 replaced/);
      // At the first try: the object was never gone.
      await reachable(sandbox);
      expect((await sandbox.must("sysctl", ["-n", "net.ipv4.ip_forward"])).trim()).toBe("1");
      const clean = await lab.driftCheck();
      expect(clean.exitCode, show(clean)).toBe(0);
    }

    lab.write(NESTED);
    const moved = await lab.up();
    expect(moved.exitCode, show(moved)).toBe(0);
    expect(moved.stdout).toMatch(/\+ 9 created/); // the component and its 8 resources
    expect(moved.stdout).toMatch(/- 8 deleted/);
    await reachable(sandbox);
    const settled = await lab.driftCheck();
    expect(settled.exitCode, show(settled)).toBe(0);

    // A resource renamed in the program (the URN's name part): its new owner is another,
    // so the object is refused, as this stack's other resource's, with the fix: aliases,
    // with which Pulumi keeps it as one resource and nothing moves.
    lab.edit(`new nslab.Namespace("h" + i,`, `new nslab.Namespace("host" + i,`);
    const renamed = await lab.up();
    expect(renamed.exitCode, show(renamed)).not.toBe(0);
    expect(renamed.stdout + renamed.stderr).toMatch(/namespace "rh1" already exists\. It belongs to nslab Namespace "h1" of this same stack \([^)]*\)\. If this resource is that one renamed, give it the option aliases: \[\{ name: "h1" \}\]/);
    await reachable(sandbox);
    lab.edit(`new nslab.Namespace("host" + i, { name: "rh" + i }, opts);`, `new nslab.Namespace("host" + i, { name: "rh" + i }, { ...opts, aliases: [{ name: "h" + i }] });`);
    const aliased = await lab.up();
    expect(aliased.exitCode, show(aliased)).toBe(0);
    await reachable(sandbox);
    const kept = await lab.driftCheck();
    expect(kept.exitCode, show(kept)).toBe(0);

    // The new resources own the objects: destroy removes them, and restores forwarding.
    const destroyed = await lab.destroy();
    expect(destroyed.exitCode, show(destroyed)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
    expect((await sandbox.must("sysctl", ["-n", "net.ipv4.ip_forward"])).trim()).toBe("0");
  });

  it("a run that fails after objects were made again (--replace, a move under a component) and before the originals' deletes: the next run deletes the originals and the objects stay", async () => {
    const lab = await Lab.create(sandbox, "replace-fail", FLAT);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    await reachable(sandbox);
    // A bridge that cannot be made (its name taken by hand), made after the others: the
    // run stops with the originals not yet deleted (kept in the state to delete later).
    await sandbox.must("ip", ["link", "add", "junk0", "type", "veth", "peer", "name", "junk1"]);
    const failing = (after: string) => `\nnew nslab.Bridge("junk", { name: "junk0" }, { dependsOn: [${after}] });\n`;

    lab.write(FLAT.replace(`new nslab.IpForwarding("fwd", { ipv4: true }, opts);`, `const fwd = new nslab.IpForwarding("fwd", { ipv4: true }, opts);${failing("br, fwd")}`));
    const replacing = await lab.up(["--replace", await urnOf(lab, "Bridge", "br"), "--replace", await urnOf(lab, "Namespace", "h2")]);
    expect(replacing.exitCode, show(replacing)).not.toBe(0);
    expect(replacing.stdout + replacing.stderr).toContain('bridge "junk0" in the program\'s namespace already exists');
    await reachable(sandbox);
    await sandbox.must("ip", ["link", "del", "junk0"]);
    lab.write(FLAT);
    const deleting = await lab.up();
    expect(deleting.exitCode, show(deleting)).toBe(0);
    expect(deleting.stdout.match(/deleted original/g)).toHaveLength(2); // the originals the failed run kept
    await reachable(sandbox);
    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);

    await sandbox.must("ip", ["link", "add", "junk0", "type", "veth", "peer", "name", "junk1"]);
    lab.write(NESTED.replace(`new Site("site");`, `const site = new Site("site");${failing("site")}`));
    const moving = await lab.up();
    expect(moving.exitCode, show(moving)).not.toBe(0);
    expect(moving.stdout).toMatch(/\+ 9 created/); // the component and its 8 resources
    await reachable(sandbox);
    await sandbox.must("ip", ["link", "del", "junk0"]);
    lab.write(NESTED);
    const moved = await lab.up();
    expect(moved.exitCode, show(moved)).toBe(0);
    expect(moved.stdout).toMatch(/- 8 deleted/);
    await reachable(sandbox);
    const settled = await lab.driftCheck();
    expect(settled.exitCode, show(settled)).toBe(0);

    const destroyed = await lab.destroy();
    expect(destroyed.exitCode, show(destroyed)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a resource renamed with aliases while a change replaces it (a bridge given another name; a BridgedNetwork renamed, which renames its interfaces): one up, traffic passes, nothing is left", async () => {
    const program = (bridge: string, network: string) => `
import * as nslab from "nslab";
${bridge}
${network}
`;
    const lab = await Lab.create(
      sandbox,
      "rename-replace",
      program(`new nslab.Bridge("b1", { name: "bra", addresses: ["10.63.9.1/24"] });`, `new nslab.BridgedNetwork("lan", { cidr: "10.63.0.0/24", hosts: ["rr1", "rr2"], gateway: true });`),
    );
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const reachable = async () => {
      for (const [from, to] of [["rr1", "10.63.0.1"], ["rr1", "10.63.0.3"], ["rr2", "10.63.0.2"]]) expect(await pings(sandbox, from, to), `${from} -> ${to}`).toBe(true);
    };
    await reachable();
    const links = async () => (await sandbox.must("ip", ["-br", "link"])).split("\n").map((l) => l.split(/[ @]/)[0]).filter(Boolean);
    expect(await links()).toEqual(expect.arrayContaining(["bra", "br-lan"]));

    // Before: the replacement's check (the engine checks it again, without the old
    // inputs) found the names claimed by the same resource under its old name, and failed
    // ('interface "brb" ... is also made by Bridge "b1"').
    lab.write(
      program(
        `new nslab.Bridge("b3", { name: "brb", addresses: ["10.63.9.1/24"] }, { aliases: [{ name: "b1" }] });`,
        `new nslab.BridgedNetwork("lanb", { cidr: "10.63.0.0/24", hosts: ["rr1", "rr2"], gateway: true }, { aliases: [{ name: "lan" }] });`,
      ),
    );
    const renamed = await lab.up();
    expect(renamed.exitCode, show(renamed)).toBe(0);
    expect(renamed.stdout).toMatch(/replaced/);
    await reachable();
    const now = await links();
    expect(now).toEqual(expect.arrayContaining(["brb", "br-lanb"]));
    expect(now).not.toContain("bra");
    expect(now).not.toContain("br-lan");
    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);

    const destroyed = await lab.destroy();
    expect(destroyed.exitCode, show(destroyed)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a host moved from one BridgedNetwork to another in one up is refused with the way that works, two runs, which the lab survives", async () => {
    const program = (lan: string, lan2: string) => `
import * as nslab from "nslab";
new nslab.BridgedNetwork("lan", { cidr: "10.64.1.0/24", hosts: [${lan}], gateway: true });
new nslab.BridgedNetwork("lan2", { cidr: "10.64.2.0/24", hosts: [${lan2}], gateway: true });
`;
    const lab = await Lab.create(sandbox, "move-host", program(`"mh1", "mh3"`, `"mk1"`));
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    lab.write(program(`"mh1"`, `"mk1", "mh3"`));
    const once = await lab.up();
    expect(once.exitCode, show(once)).not.toBe(0);
    // The advice is one a component's user can follow (aliases reach no component's child).
    expect(once.stdout + once.stderr).toMatch(/a host moved from one BridgedNetwork to another[^:]*: move it in two runs/);
    expect(await pings(sandbox, "mh1", "10.64.1.1")).toBe(true);

    lab.write(program(`"mh1"`, `"mk1"`));
    const out = await lab.up();
    expect(out.exitCode, show(out)).toBe(0);
    lab.write(program(`"mh1"`, `"mk1", "mh3"`));
    const moved = await lab.up();
    expect(moved.exitCode, show(moved)).toBe(0);
    for (const [from, to] of [["mh3", "10.64.2.1"], ["mh3", "10.64.2.2"], ["mk1", "10.64.2.3"], ["mh1", "10.64.1.1"]]) expect(await pings(sandbox, from, to), `${from} -> ${to}`).toBe(true);
    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
