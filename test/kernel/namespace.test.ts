import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { dispatch } from "../../provider";
import { namespaceKind as ns } from "../../provider/namespace";
import { ownerTag } from "../../provider/resource";
import { ipByHand, linkByHand, OWNER, uniq } from "../helpers/kernel";

const inputs = (name: string, adopt = false) => ns.check(undefined, { name, adopt, __owner: `${OWNER}/${name}` }).inputs;

type Made = { id: string; outs: Record<string, unknown> };
/** A namespace checked and made through the dispatcher for FN, removed afterwards whatever FN left. */
async function dispatched(fn: (ns: { name: string; checked: { inputs: Record<string, unknown> }; made: Made }) => Promise<void>): Promise<void> {
  const name = uniq("kns");
  const checked = (await dispatch("Namespace", "check", [undefined, { name, __owner: `${OWNER}/${name}` }])) as { inputs: Record<string, unknown> };
  const made = (await dispatch("Namespace", "create", [checked.inputs])) as Made;
  try {
    await fn({ name, checked, made });
  } finally {
    if (fs.existsSync(`/run/netns/${name}`)) await ipByHand("netns", "del", name);
  }
}

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

  it("through the dispatcher: create stamps a token of its own (__made) in the outputs, which read keeps and update extends with one of its own write, and read does not give back as an input", async () => {
    await dispatched(async ({ name, checked, made }) => {
      expect(made.outs.__made).toMatch(/^[A-Za-z0-9_-]{8}$/);
      const read = (await dispatch("Namespace", "read", [made.id, made.outs])) as { props: Record<string, unknown>; inputs: Record<string, unknown> };
      expect(read.props.__made).toBe(made.outs.__made);
      expect(read.inputs).not.toHaveProperty("__made");
      // A kind whose read gives back its recorded outputs as inputs (a Process) too.
      const proc = (await dispatch("Process", "create", [((await dispatch("Process", "check", [undefined, { namespace: name, command: ["sleep", "61.5"], __owner: `${OWNER}/${name}-p` }])) as { inputs: unknown }).inputs])) as { id: string; outs: Record<string, unknown> };
      const seen = (await dispatch("Process", "read", [proc.id, proc.outs])) as { props: Record<string, unknown>; inputs: Record<string, unknown> };
      expect(seen.props.__made).toBe(proc.outs.__made);
      expect(seen.inputs).not.toHaveProperty("__made");
      await dispatch("Process", "delete", [proc.id, proc.outs]);
      const updated = (await dispatch("Namespace", "update", [made.id, made.outs, checked.inputs])) as { outs: Record<string, unknown> };
      expect(updated.outs.__made).toMatch(new RegExp(`^${made.outs.__made}\\.[A-Za-z0-9_-]{8}$`));
      const twice = (await dispatch("Namespace", "update", [made.id, updated.outs, checked.inputs])) as { outs: Record<string, unknown> };
      expect(twice.outs.__made).toMatch(new RegExp(`^${made.outs.__made}\\.[A-Za-z0-9_-]{8}$`));
      expect(twice.outs.__made).not.toBe(updated.outs.__made);
      // Made again (a replacement taking it over): the original's delete leaves it to the
      // later create, whose delete removes it.
      const again = (await dispatch("Namespace", "create", [{ ...checked.inputs, adopt: true }])) as { outs: Record<string, unknown> };
      expect(again.outs.__made).not.toBe(made.outs.__made);
      await dispatch("Namespace", "delete", [made.id, made.outs]);
      expect(fs.existsSync(`/run/netns/${name}`)).toBe(true);
      await dispatch("Namespace", "delete", [made.id, again.outs]);
      expect(fs.existsSync(`/run/netns/${name}`)).toBe(false);
    });
  });

  it("through the dispatcher: an update the engine never recorded (a run killed after it) leaves the object the state's: its delete removes it", async () => {
    await dispatched(async ({ name, checked, made }) => {
      // The record now names the update's token; the state still has the create's.
      await dispatch("Namespace", "update", [made.id, made.outs, checked.inputs]);
      await dispatch("Namespace", "delete", [made.id, made.outs]);
      expect(fs.existsSync(`/run/netns/${name}`)).toBe(false);
    });
  });

  it("through the dispatcher: a resource recorded without a token, updated by a run that was killed before the state recorded it, is still deleted from that state", async () => {
    await dispatched(async ({ name, checked, made }) => {
      const { __made: _made, ...legacy } = made.outs;
      await dispatch("Namespace", "update", [made.id, legacy, checked.inputs]);
      await dispatch("Namespace", "delete", [made.id, legacy]);
      expect(fs.existsSync(`/run/netns/${name}`)).toBe(false);
    });
  });

  it("through the dispatcher: a resource recorded without a token (an nslab from before them) is updated once to get one, writing nothing to the kernel", async () => {
    await dispatched(async ({ name, checked, made }) => {
      const { __made: _made, ...legacy } = made.outs;
      expect(((await dispatch("Namespace", "diff", [made.id, legacy, checked.inputs])) as { changes: boolean }).changes).toBe(true);
      expect(((await dispatch("Namespace", "diff", [made.id, made.outs, checked.inputs])) as { changes: boolean }).changes).toBe(false);
      // The namespace deleted by hand meanwhile: a stamp writes nothing, so it is not made again.
      await ipByHand("netns", "del", name);
      const stamped = (await dispatch("Namespace", "update", [made.id, legacy, checked.inputs])) as { outs: Record<string, unknown> };
      // No create part: its record names none either.
      expect(stamped.outs).toEqual({ ...legacy, __made: expect.stringMatching(/^\.[A-Za-z0-9_-]{8}$/) });
      expect(fs.existsSync(`/run/netns/${name}`)).toBe(false);
    });
  });

  it("through the dispatcher: the one update that records a token does not reach the resource's machine (one that is down, here)", async () => {
    const host = { ssh: "root@127.0.0.1", port: 9 };
    const recorded = { name: uniq("kns"), adopt: false, path: "/run/netns/x", host, __owner: `${OWNER}/remote` };
    const inputs = { name: recorded.name, adopt: false, host, __owner: recorded.__owner };
    const stamped = (await dispatch("Namespace", "update", [recorded.name, recorded, inputs])) as { outs: Record<string, unknown> };
    expect(stamped.outs).toEqual({ ...recorded, __made: expect.stringMatching(/^\.[A-Za-z0-9_-]{8}$/) });
    // A real change there does try to reach it, and says it cannot.
    await expect(dispatch("Namespace", "update", [recorded.name, { ...recorded, __made: "aaaaaaaa" }, { ...inputs, adopt: true }])).rejects.toThrow(/127\.0\.0\.1/);
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
    // Taken over by another resource (adopt): this one's update is refused and leaves the
    // other's mark; with adopt it takes the namespace back.
    const other = ns.check(undefined, { name, adopt: true, __owner: "proj/two@0123abcd/Namespace/other" }).inputs;
    await ns.create(other);
    await expect(ns.update(name, outs, { ...outs, adopt: false })).rejects.toThrow(/was taken over by another resource \(adopt\) since this one last wrote it/);
    expect(await ns.read(name, outs)).toEqual({});
    await ns.update(name, outs, outs);
    expect((await ns.read(name, outs)).id).toBe(name);
    await ns.delete(name, outs);
    expect(fs.existsSync(`/run/netns/${name}`)).toBe(false);
  });

  it("two stacks' creates of one name at the same moment: one makes it, the other is refused naming it, and the namespace stays the first's", async () => {
    const name = uniq("krace");
    const owners = ["test/one@0000aaaa/Namespace/first", "test/two@0000bbbb/Namespace/second"];
    const checked = await Promise.all(owners.map((o) => dispatch("Namespace", "check", [undefined, { name, __owner: o }]) as Promise<{ inputs: Record<string, unknown> }>));
    // Both look before either adds (one ip session serves both, in order).
    const results = await Promise.allSettled(checked.map((c) => dispatch("Namespace", "create", [c.inputs]) as Promise<Made>));
    try {
      const won = results.findIndex((r) => r.status === "fulfilled");
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
      expect(won).toBeGreaterThanOrEqual(0);
      expect(lost).toBeDefined();
      const winner = won === 0 ? 'Namespace "first" of stack test/one@0000aaaa' : 'Namespace "second" of stack test/two@0000bbbb';
      expect(lost!.reason.message).toContain(`namespace "${name}" was made by another process at the same moment as this create. It belongs to nslab ${winner}`);
      expect(lost!.reason.message).not.toMatch(/ip netns del|adopt/);
      expect((await linkByHand("lo", name))!.ifalias).toBe(ownerTag(owners[won]));
    } finally {
      for (const r of results) if (r.status === "fulfilled") await dispatch("Namespace", "delete", [r.value.id, r.value.outs]);
    }
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
