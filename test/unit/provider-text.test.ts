import { describe, expect, it } from "vitest";
import * as providerModuleOfNslab from "../../provider/index";
import { engineFailures, handlerFor } from "../../provider/index";
import { providerModule } from "../../sdk/base";

/** Loads the text the way the dynamic-provider process does: a CommonJS module, then handler(). */
function load(text: string, require: (id: string) => unknown): unknown {
  const module = { exports: {} as { handler?: () => unknown } };
  new Function("exports", "require", "module", text)(module.exports, require, module);
  return module.exports.handler!();
}

describe("the provider text each resource carries in state", () => {
  it("is one line that takes the kind's operations from the installed nslab/provider, loaded only when the kind is first served", () => {
    const text = providerModule("VethPair");
    expect(text.split("\n").filter(Boolean)).toHaveLength(1);
    expect(text.length).toBeLessThan(100);
    const required: string[] = [];
    const asked: string[] = [];
    const handler = { check: () => "checked" };
    const loaded = load(text, (id) => {
      required.push(id);
      return { handlerFor: (kind: string) => (asked.push(kind), handler) };
    });
    expect(loaded).toBe(handler);
    expect(required).toEqual(["nslab/provider"]);
    expect(asked).toEqual(["VethPair"]);
  });

  it("handlerFor forwards every operation to the provider of its kind, and names an unknown kind", async () => {
    const ns = handlerFor("Namespace");
    expect(Object.keys(ns).sort()).toEqual(["check", "create", "delete", "diff", "read", "update"]);
    const checked = (await ns.check(undefined, { name: "bad/name", __owner: "p/s/Namespace/x" })) as { failures: { property: string }[] };
    expect(checked.failures.map((f) => f.property)).toEqual(["name"]);
    // A nested property's failure goes to the engine as the resource's, its reason naming it.
    const veth = (await handlerFor("VethPair").check(undefined, { a: { name: "e0", addresses: ["10.0.0.300/24"] }, b: { name: "e1" }, __owner: "p/s/VethPair/x" })) as {
      failures: { property: string; reason: string }[];
    };
    expect(veth.failures).toEqual([{ property: "", reason: expect.stringMatching(/^a\.addresses\[0\] "10\.0\.0\.300\/24" is not an address/) }]);
    const same = { name: "x", adopt: false, __owner: "o", __provider: "text" };
    expect(await ns.diff("x", { ...same, __made: "aaaaaaaa" }, { ...same, __provider: "other text" })).toMatchObject({ changes: false });
    await expect(handlerFor("Nope").check(undefined, {})).rejects.toThrow(/nslab has no resource kind "Nope"/);
  });

  it("engineFailures keeps top-level failures and names the property of a nested one whose reason does not", () => {
    const top = { inputs: {}, failures: [{ property: "name", reason: "name is bad." }] };
    expect(engineFailures(top)).toBe(top);
    expect(engineFailures({ inputs: {}, failures: [...top.failures, { property: "a.mtu", reason: "must be a number." }, { property: "b[0]", reason: "b[0] is bad." }] }).failures).toEqual([
      { property: "name", reason: "name is bad." },
      { property: "", reason: "a.mtu: must be a number." },
      { property: "", reason: "b[0] is bad." },
    ]);
  });

  it("the longer text that states written before it hold still works (it calls dispatch)", async () => {
    const OLD = [
      `// nslab Namespace provider: runs the installed nslab's provider (require by package name, at call time).`,
      `exports.handler = function () {`,
      `  const call = (op, args) => require("nslab/provider").dispatch("Namespace", op, args);`,
      `  return {`,
      `    check: (olds, news) => call("check", [olds, news]),`,
      `    diff: (id, olds, news) => call("diff", [id, olds, news]),`,
      `    create: (inputs) => call("create", [inputs]),`,
      `    read: (id, props) => call("read", [id, props]),`,
      `    update: (id, olds, news) => call("update", [id, olds, news]),`,
      `    delete: (id, props) => call("delete", [id, props]),`,
      `  };`,
      `};`,
      ``,
    ].join("\n");
    const old = load(OLD, (id) => (id === "nslab/provider" ? providerModuleOfNslab : undefined)) as ReturnType<typeof handlerFor>;
    const checked = (await old.check(undefined, { name: "ok", __owner: "p/s/Namespace/ok" })) as { failures: unknown[]; inputs: { name: string } };
    expect(checked.failures).toEqual([]);
    expect(checked.inputs.name).toBe("ok");
  });

  it("is the same text on every run and names only its kind", () => {
    expect(providerModule("Route")).toBe(providerModule("Route"));
    expect(providerModule("Route")).not.toBe(providerModule("Bridge"));
    expect(providerModule('Odd"Kind')).toContain('handlerFor("Odd\\"Kind")');
  });
});
