/**
 * Two stacks with the same project and stack name on two state backends (two file
 * backends here) are two stacks to nslab: their marks differ (sdk/identity.ts), so
 * neither takes over or deletes the other's objects, a create that meets the other's
 * object names its owner and is refused, and nslab-orphans of one never lists the
 * other's.
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

let sandbox: Sandbox;
sandboxPerTest((s) => (sandbox = s));

const A = `
import * as nslab from "nslab";
const h = new nslab.Namespace("h1", { name: "idh1" });
const p = new nslab.Namespace("p1", { name: "idp1" });
const link = new nslab.VethPair("l", { a: { name: "eth0", namespace: h.name, addresses: ["10.61.0.1/24"] }, b: { name: "eth0", namespace: p.name, addresses: ["10.61.0.2/24"] } });
new nslab.Route("r", { namespace: p.name, destination: "10.99.0.0/16", gateway: "10.61.0.1" }, { dependsOn: [link] });
new nslab.NatRule("masq", { namespace: h.name, kind: "masquerade", source: "10.61.0.0/24" });
`;

/** The same names on the other backend: the namespace A made. */
const B_NAMESPACE = `
import * as nslab from "nslab";
new nslab.Namespace("h1", { name: "idh1" });
`;
/** The same NAT rule, in A's namespace. */
const B_NAT = `
import * as nslab from "nslab";
new nslab.NatRule("masq", { namespace: "idh1", kind: "masquerade", source: "10.61.0.0/24" });
`;
/** The same route, in A's namespace. */
const B_ROUTE = `
import * as nslab from "nslab";
new nslab.Route("r", { namespace: "idp1", destination: "10.99.0.0/16", gateway: "10.61.0.1" });
`;

describe("stack identity", () => {
  it("keeps two same-named stacks on two backends apart: refused creates name the owner, NAT rules coexist, destroy and orphans touch only their own", async () => {
    const a = await Lab.create(sandbox, "ident-a", A);
    expect((await a.up()).exitCode).toBe(0);
    // By name: the state lists resources in the order their creates finished.
    const ownerA = (await a.resources()).find((r) => r.type.endsWith(":Namespace") && r.urn.endsWith("::h1"))!.outputs!.__owner as string;
    expect(ownerA).toMatch(/^nslab-test\/test@[0-9a-f]{8}\/Namespace\/h1$/);
    const stackA = ownerA.split("/").slice(0, 2).join("/");
    const drift = async () => (await a.driftCheck()).exitCode;
    const ping = async () => (await sandbox.run("ip", ["netns", "exec", "idp1", "ping", "-c", "1", "-W", "1", "10.61.0.1"])).exitCode;
    const masquerades = async () => ((await sandbox.must("ip", ["netns", "exec", "idh1", "nft", "list", "ruleset"])).match(/masquerade/g) ?? []).length;

    // Same project, stack and resource names, another backend: A's namespace is refused, naming A.
    const b = await Lab.create(sandbox, "ident-b", B_NAMESPACE);
    let r = await b.up();
    expect(r.exitCode, show(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`namespace "idh1" already exists. It belongs to nslab Namespace "h1" of stack ${stackA}`);
    expect(await drift()).toBe(0);

    // The same NAT rule: B's is a rule of its own beside A's; B's destroy leaves A's.
    b.edit(/[^]*/, B_NAT);
    r = await b.up();
    expect(r.exitCode, show(r)).toBe(0);
    expect(await masquerades()).toBe(2);
    const ownerB = (await b.resources()).find((x) => x.type.endsWith(":NatRule"))!.outputs!.__owner as string;
    expect(ownerB).toMatch(/^nslab-test\/test@[0-9a-f]{8}\/NatRule\/masq$/);
    expect(ownerB).not.toBe(ownerA.replace("Namespace/h1", "NatRule/masq"));
    expect((await b.destroy()).exitCode).toBe(0);
    expect(await masquerades()).toBe(1);
    expect(await drift()).toBe(0);

    // The same route (routes carry no per-owner mark): refused, naming A's Route, not taken over.
    b.edit(/[^]*/, B_ROUTE);
    r = await b.up();
    expect(r.exitCode, show(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`already exists (made by nslab Route "r" of stack ${stackA})`);
    expect(await drift()).toBe(0);
    expect(await ping()).toBe(0);

    // nslab-orphans of B sees nothing of A's (B's state is empty; A's records are all A's).
    const orphans = (lab: Lab, ...extra: string[]) =>
      sandbox.run(process.execPath, [path.join(REPO, "dist/sdk/cli/orphans.js"), "--cwd", lab.dir, "--stack", lab.stack, ...extra], { env: { ...lab.env(), PATH: `${REPO}/.tools/bin:${process.env.PATH}` } });
    for (const lab of [b, a]) {
      const o = await orphans(lab, "--delete");
      expect(o.exitCode, show(o)).toBe(0);
      expect(o.stdout).toContain("no objects outside its state");
    }
    expect(await drift()).toBe(0);
    expect(await ping()).toBe(0);

    expect((await a.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
