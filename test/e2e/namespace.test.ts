import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

const PROGRAM = `
import * as nslab from "nslab";
const lab = new nslab.Namespace("labns");
export const name = lab.name;
export const path = lab.path;
`;

describe("Namespace through the real Pulumi engine", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  sandboxPerTest((s) => (sandbox = s));

  it("up creates it, refresh notices a hand deletion, destroy removes it", async () => {
    lab = await Lab.create(sandbox, "ns-loop", PROGRAM);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await lab.outputs()).toEqual({ name: "labns", path: "/run/netns/labns" });
    expect((await sandbox.must("ip", ["netns", "list"])).trim()).toBe("labns");

    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);

    await sandbox.must("ip", ["netns", "delete", "labns"]);
    const drift = await lab.driftCheck();
    expect(drift.exitCode, show(drift)).toBe(7);

    const refresh = await lab.refresh();
    expect(refresh.exitCode, show(refresh)).toBe(0);
    expect((await lab.resources()).filter((r) => r.type.endsWith("nslab:Namespace"))).toHaveLength(0);

    const again = await lab.up();
    expect(again.exitCode, show(again)).toBe(0);
    expect((await sandbox.must("ip", ["netns", "list"])).trim()).toBe("labns");

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("refresh and destroy run the installed provider code, not a copy frozen in state", async () => {
    lab = await Lab.create(sandbox, "ns-code", PROGRAM);
    expect((await lab.up()).exitCode).toBe(0);
    // The state holds only the trampoline, which loads nslab by name at call time.
    const resource = (await lab.resources()).find((r) => r.type.endsWith("nslab:Namespace"))!;
    const serialized = String(resource.outputs!.__provider);
    expect(serialized).toContain('require("nslab/provider")');
    expect(serialized).not.toContain("netns");
    expect(serialized.length).toBeLessThan(100);
    // "Upgrade" nslab for this program only: a package named nslab whose provider logs
    // every call and delegates to the real one.
    const marks = path.join(lab.dir, "calls.log");
    const shim = path.join(lab.dir, "node_modules/nslab");
    fs.mkdirSync(shim, { recursive: true });
    fs.writeFileSync(
      path.join(shim, "package.json"),
      JSON.stringify({ name: "nslab", exports: { ".": "./index.js", "./provider": "./provider.js" } }),
    );
    fs.writeFileSync(path.join(shim, "index.js"), `module.exports = require(${JSON.stringify(REPO)});\n`);
    fs.writeFileSync(
      path.join(shim, "provider.js"),
      `const real = require(${JSON.stringify(path.join(REPO, "dist/provider"))});
exports.handlerFor = (kind) => {
  const ops = real.handlerFor(kind);
  return Object.fromEntries(Object.entries(ops).map(([op, fn]) => [op, (...args) => {
    require("fs").appendFileSync(${JSON.stringify(marks)}, kind + " " + op + "\\n");
    return fn(...args);
  }]));
};
`,
    );
    expect((await lab.refresh()).exitCode).toBe(0);
    expect(fs.readFileSync(marks, "utf8")).toContain("Namespace read");
    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(fs.readFileSync(marks, "utf8")).toContain("Namespace delete");
    expect(await sandbox.residue()).toEqual([]);
  });

  it("keeps working on a stack whose state holds the closure-serialized provider of older nslab", async () => {
    // nslab up to 0.1.0 registered through pulumi.dynamic.Resource, which serializes the
    // provider object (a secret in state). That shape, written out here:
    const old = `
import * as pulumi from "@pulumi/pulumi";
const kind = "Namespace";
const provider = {
  check: (o: unknown, n: unknown) => require("nslab/provider").dispatch(kind, "check", [o, n]),
  diff: (id: string, o: unknown, n: unknown) => require("nslab/provider").dispatch(kind, "diff", [id, o, n]),
  create: (i: unknown) => require("nslab/provider").dispatch(kind, "create", [i]),
  read: (id: string, p: unknown) => require("nslab/provider").dispatch(kind, "read", [id, p]),
  update: (id: string, o: unknown, n: unknown) => require("nslab/provider").dispatch(kind, "update", [id, o, n]),
  delete: (id: string, p: unknown) => require("nslab/provider").dispatch(kind, "delete", [id, p]),
} as pulumi.dynamic.ResourceProvider;
const owner = \`\${pulumi.getProject()}/\${pulumi.getStack()}/Namespace/labns\`;
new pulumi.dynamic.Resource(provider, "labns", { name: "labns", adopt: undefined, path: undefined, __owner: owner }, {}, "nslab", "Namespace");
`;
    lab = await Lab.create(sandbox, "ns-compat", old);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const before = (await lab.resources()).find((r) => r.type.endsWith("nslab:Namespace"))!;
    expect(String(before.outputs!.__provider)).toContain("with({"); // serializeFunction's text

    lab.write(PROGRAM);
    const preview = await lab.driftCheck();
    expect(preview.exitCode, show(preview)).toBe(0);
    expect(preview.stdout).toMatch(/2 unchanged/);
    const again = await lab.up();
    expect(again.exitCode, show(again)).toBe(0);
    const after = (await lab.resources()).find((r) => r.type.endsWith("nslab:Namespace"))!;
    expect(after.id).toBe(before.id);
    expect(String(after.outputs!.__provider)).toContain('require("nslab/provider")');
    expect((await sandbox.must("ip", ["netns", "list"])).trim()).toBe("labns");

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
