/**
 * Objects of a run that are not in the stack's state can be found and removed:
 * nslab-orphans compares what the provider recorded for the stack with the state.
 * The state loses resources here the way a killed run loses them (they exist in the
 * kernel, the state does not have them): `pulumi state delete`.
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

let sandbox: Sandbox;
sandboxPerTest((s) => (sandbox = s));

const PROGRAM = `
import * as nslab from "nslab";
const a = new nslab.Namespace("oa");
const b = new nslab.Namespace("ob");
const link = new nslab.VethPair("ab", { a: { name: "eth0", namespace: a.name, addresses: ["10.50.0.1/24"] }, b: { name: "eth0", namespace: b.name, addresses: ["10.50.0.2/24"] } });
new nslab.Route("b-default", { namespace: b.name, destination: "default", gateway: "10.50.0.1" }, { dependsOn: [link] });
new nslab.NatRule("masq", { namespace: a.name, kind: "masquerade", source: "10.50.0.0/24" });
`;

describe("nslab-orphans", () => {
  it("lists the objects a stack made but does not have in its state, removes them with --delete, and leaves the rest", async () => {
    const lab = await Lab.create(sandbox, "orphans", PROGRAM);
    expect((await lab.up()).exitCode).toBe(0);
    const orphans = (...extra: string[]) =>
      sandbox.run(process.execPath, [path.join(REPO, "dist/sdk/cli/orphans.js"), "--cwd", lab.dir, "--stack", lab.stack, ...extra], { env: { ...lab.env(), PATH: `${REPO}/.tools/bin:${process.env.PATH}` } });

    let r = await orphans();
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toContain("no objects outside its state");

    const urns = (await lab.resources()).map((x) => x.urn);
    for (const type of ["NatRule", "Route"]) {
      const urn = urns.find((u) => u.includes(`:${type}::`))!;
      expect((await lab.pulumi(["state", "delete", urn, "--yes"])).exitCode).toBe(0);
    }
    r = await orphans();
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/2 object\(s\) not in its state/);
    expect(r.stdout).toMatch(/NatRule "masq" \(id .*\)/);
    expect(r.stdout).toMatch(/Route "b-default" \(id .*\)/);
    expect(await sandbox.must("ip", ["netns", "exec", "oa", "nft", "list", "ruleset"])).toContain("masquerade");

    r = await orphans("--delete");
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/NatRule "masq" .* deleted/);
    expect(await sandbox.must("ip", ["netns", "exec", "oa", "nft", "list", "ruleset"])).not.toContain("masquerade");
    expect(await sandbox.must("ip", ["-n", "ob", "route", "show", "default"])).toBe("");
    // What is in the state was left alone, and the lab still passes traffic.
    expect((await sandbox.run("ip", ["netns", "exec", "oa", "ping", "-c", "1", "-W", "2", "10.50.0.2"])).exitCode).toBe(0);
    expect((await orphans()).stdout).toContain("no objects outside its state");

    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
