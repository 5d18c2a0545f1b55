import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { namespaceKind as ns } from "../../provider/namespace";
import { ownerTag } from "../../provider/resource";
import { ipByHand, linkByHand, OWNER, uniq } from "../helpers/kernel";

const inputs = (name: string, adopt = false) => ns.check(undefined, { name, adopt, __owner: `${OWNER}/${name}` }).inputs;

describe("Namespace on the kernel", () => {
  it("creates, reads back, deletes, and deletes again", async () => {
    const name = uniq("kns");
    const { id, outs } = await ns.create(inputs(name));
    expect(outs.path).toBe(`/run/netns/${name}`);
    expect(fs.existsSync(outs.path)).toBe(true);
    const lo = await linkByHand("lo", name);
    expect(lo?.flags).toContain("UP");
    expect(lo?.ifalias).toBe(ownerTag(`${OWNER}/${name}`));

    const read = await ns.read(id, outs);
    expect(read.id).toBe(name);
    expect(read.inputs).toEqual(inputs(name));
    expect(ns.diff(id, read.props!, inputs(name)).changes).toBe(false);

    await ns.delete(id, outs);
    expect(fs.existsSync(outs.path)).toBe(false);
    expect(await ns.read(id, outs)).toEqual({});
    await ns.delete(id, outs); // idempotent
  });

  it("refuses an existing namespace unless adopting, and leaves it alone", async () => {
    const name = uniq("kns");
    await ipByHand("netns", "add", name);
    await expect(ns.create(inputs(name))).rejects.toMatchObject({ kind: "AlreadyExists" });
    expect(fs.existsSync(`/run/netns/${name}`)).toBe(true);

    // Not ours: read says gone, delete leaves it.
    const foreign = { ...inputs(name), path: `/run/netns/${name}` };
    expect(await ns.read(name, foreign)).toEqual({});
    await ns.delete(name, foreign);
    expect(fs.existsSync(`/run/netns/${name}`)).toBe(true);

    const { outs } = await ns.create(inputs(name, true));
    expect((await ns.read(name, outs)).id).toBe(name);
    await ns.delete(name, outs);
    expect(fs.existsSync(`/run/netns/${name}`)).toBe(false);
  });

  it("treats a namespace deleted by hand as gone", async () => {
    const name = uniq("kns");
    const { outs } = await ns.create(inputs(name));
    await ipByHand("netns", "delete", name);
    expect(await ns.read(name, outs)).toEqual({});
    await ns.delete(name, outs);
  });

  it("replaces on rename, deleting first", () => {
    const a = inputs("nsa");
    const d = ns.diff("nsa", { ...a, path: "/run/netns/nsa" }, inputs("nsb"));
    expect(d).toMatchObject({ changes: true, replaces: ["name"], deleteBeforeReplace: true });
  });
});
