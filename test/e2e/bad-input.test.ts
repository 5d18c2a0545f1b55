import { describe, expect, it } from "vitest";
import { Lab, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

describe("bad input through the real engine", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  sandboxPerTest((s) => (sandbox = s));

  it("preview and up fail at check, naming resource and property, and nothing is created", async () => {
    lab = await Lab.create(
      sandbox,
      "bad-input",
      `
import * as nslab from "nslab";
const ns1 = new nslab.Namespace("ns1");
new nslab.VethPair("cable", {
  a: { name: "veth-with-a-long-name", namespace: ns1.name, addresses: ["192.168.1.1"] },
  b: { name: "veth-b" },
});
`,
    );
    const check = (r: Awaited<ReturnType<Lab["preview"]>>) => {
      expect(r.exitCode, show(r)).not.toBe(0);
      const text = r.stdout + r.stderr;
      expect(text).toMatch(/VethPair.*cable|cable.*VethPair/);
      expect(text).toContain('a.name "veth-with-a-long-name" is 21 characters');
      expect(text).toContain('a.addresses[0] "192.168.1.1" is not an address with prefix length');
      // A nested property's failure is the resource's, its reason naming the property: the
      // engine would show it as "property a.name value {<nil>}" (it looks the value up as
      // one top-level key).
      expect(text).toContain("VethPair resource 'cable' has a problem: a.name ");
      expect(text).not.toContain("<nil>");
    };
    check(await lab.preview());
    expect(await sandbox.residue()).toEqual([]); // preview changes nothing at all
    check(await lab.up());
    // up created the valid namespace the veth depends on, then stopped at the veth's check.
    const links = await sandbox.must("ip", ["-o", "link", "show"]);
    expect(links).not.toContain("veth");
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a bridge port in another namespace than its bridge fails at preview, naming both and the program's line, without a stack trace; so does a component's bad argument", async () => {
    lab = await Lab.create(
      sandbox,
      "bad-master",
      `
import * as nslab from "nslab";
const ns1 = new nslab.Namespace("ns1");
const br = new nslab.Bridge("br", { name: "br0", namespace: ns1.name });
new nslab.VethPair("port", { a: { name: "p-a" }, b: { name: "p-b", master: br.name } });
`,
    );
    const r = await lab.preview();
    expect(r.exitCode, show(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('VethPair "port": b.master "br0" is a bridge in namespace "ns1", but the port is in the program\'s namespace');
    // The line that declared it, and none of nslab's or Pulumi's frames.
    expect(r.stdout + r.stderr).toMatch(/must be in the same namespace \(and on the same host\)\. \(at index\.ts:5:1\)/);
    const frames = /^\s+at .*[(/].*:\d+:\d+\)?$/m;
    expect(r.stdout + r.stderr).not.toMatch(frames);
    expect(await sandbox.residue()).toEqual([]);

    // A component's argument, refused while the program declares it.
    lab.write(`
import * as nslab from "nslab";
new nslab.BridgedNetwork("lan", { cidr: "10.0.0.1/24", hosts: ["a", "b"] });
`);
    const plan = await lab.preview();
    expect(plan.exitCode, show(plan)).not.toBe(0);
    expect(plan.stdout + plan.stderr).toContain('error: BridgedNetwork "lan": cidr "10.0.0.1/24" has host bits set; did you mean "10.0.0.0/24"? (at index.ts:3:1)');
    expect(plan.stdout + plan.stderr).not.toMatch(frames);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a misspelt property, and two resources making one namespace, fail at preview naming resource and property, and up makes nothing of them", async () => {
    lab = await Lab.create(
      sandbox,
      "bad-keys",
      `
import * as nslab from "nslab";
// As a JavaScript program (or TypeScript with noCheck) may write it.
new nslab.VethPair("typo", { a: { name: "t-a", adresses: ["192.168.3.1/24"] }, b: { name: "t-b" } } as never);
`,
    );
    // The engine stops at the first resource whose check fails: one mistake at a time.
    const refused = async (op: "preview" | "up", pattern: RegExp) => {
      const r = op === "preview" ? await lab.preview() : await lab.up();
      expect(r.exitCode, show(r)).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(pattern);
    };
    const typo = /VethPair resource 'typo' has a problem: a\.adresses is not a property of a veth end \(did you mean a\.addresses\?\)/;
    await refused("preview", typo);
    expect(await sandbox.residue()).toEqual([]);
    await refused("up", typo);
    expect(await sandbox.residue()).toEqual([]);
    // At the top level of a Namespace and a VethPair too (their classes once built their
    // inputs field by field, so a misspelt one never reached check and nothing applied it).
    lab.edit(/new nslab\.VethPair[^\n]*\n/, `new nslab.Namespace("n3", { name: "n3", adpot: true } as never);\n`);
    await refused("preview", /Namespace resource 'n3': property adpot .*has a problem: adpot is not a property of a Namespace \(did you mean adopt\?\)/);
    lab.edit(/new nslab\.Namespace[^\n]*\n/, `new nslab.VethPair("p", { a: { name: "va" }, b: { name: "vb" }, mtuu: 1400 } as never);\n`);
    await refused("preview", /VethPair resource 'p': property mtuu .*has a problem: mtuu is not a property of a VethPair \(did you mean mtu\?\)/);
    expect(await sandbox.residue()).toEqual([]);

    lab.edit(/new nslab\.VethPair[^\n]*\n/, `new nslab.Namespace("d1", { name: "same" });\nnew nslab.Namespace("d2", { name: "same" });\n`);
    const twice = /Namespace resource '(d1|d2)': property name .*namespace "same" is also made by Namespace "(d1|d2)" of this program/;
    await refused("preview", twice);
    expect(await sandbox.residue()).toEqual([]);
    await refused("up", twice);
    // The first of the two may be made (the second's check is the one that fails).
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a mistake inside an apply, or a missing setting, is reported at once (on Node.js 22, not after a minute's loop in util.inspect per message)", async () => {
    lab = await Lab.create(
      sandbox,
      "apply-throws",
      `
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";
const ns1 = new nslab.Namespace("ns1");
const hosts: Record<string, { address: string }> = {};
export const address = ns1.name.apply((n) => hosts[n].address);
`,
    );
    // A heap too small for the loop turns its minute into an out-of-memory crash that
    // hides the message (sdk/safe-stacks.ts; test/unit/safe-stacks.test.ts checks the
    // running Node.js has the loop).
    const small = { NODE_OPTIONS: "--max-old-space-size=192" };
    const reported = async (message: string) => {
      const r = await lab.pulumi(["preview", "--non-interactive"], small);
      expect(r.exitCode, show(r)).not.toBe(0);
      expect(r.stdout + r.stderr, show(r)).toContain(message);
      expect(r.stdout + r.stderr).not.toMatch(/out of memory|Invalid string length/i);
      return r.stdout + r.stderr;
    };
    const text = await reported("TypeError: Cannot read properties of undefined (reading 'address')");
    // Its frames: the program's line, and @pulumi/pulumi's (source-mapped) apply.
    expect(text).toMatch(/at .*index\.ts:6:\d+/);
    expect(text).toMatch(/at applyHelperAsync .*output\.ts:\d+:\d+/);

    lab.write(`
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";
new nslab.Namespace("ns" + new pulumi.Config().require("suffix"));
`);
    await reported("Missing required configuration variable 'nslab-test:suffix'");
    expect(await sandbox.residue()).toEqual([]);
  });
});
