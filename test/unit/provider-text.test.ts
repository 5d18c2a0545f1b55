import { describe, expect, it } from "vitest";
import { providerModule } from "../../sdk/base";

/** Loads the text the way the dynamic-provider process does: a CommonJS module, then handler(). */
function load(text: string, require: (id: string) => unknown): Record<string, (...args: unknown[]) => unknown> {
  const module = { exports: {} as { handler?: () => Record<string, (...args: unknown[]) => unknown> } };
  new Function("exports", "require", "module", text)(module.exports, require, module);
  return module.exports.handler!();
}

describe("the provider text each resource carries in state", () => {
  it("forwards every operation, with its arguments, to the installed nslab/provider's dispatch", async () => {
    const calls: unknown[][] = [];
    const required: string[] = [];
    const provider = load(providerModule("VethPair"), (id) => {
      required.push(id);
      return { dispatch: (...args: unknown[]) => (calls.push(args), "result") };
    });
    expect(Object.keys(provider).sort()).toEqual(["check", "create", "delete", "diff", "read", "update"]);
    expect(required).toEqual([]); // nothing is loaded until an operation runs
    expect(provider.check({ o: 1 }, { n: 2 })).toBe("result");
    provider.diff("id1", { o: 1 }, { n: 2 });
    provider.create({ i: 3 });
    provider.read("id2", { p: 4 });
    provider.update("id3", { o: 5 }, { n: 6 });
    provider.delete("id4", { p: 7 });
    expect(required).toEqual(Array(6).fill("nslab/provider"));
    expect(calls).toEqual([
      ["VethPair", "check", [{ o: 1 }, { n: 2 }]],
      ["VethPair", "diff", ["id1", { o: 1 }, { n: 2 }]],
      ["VethPair", "create", [{ i: 3 }]],
      ["VethPair", "read", ["id2", { p: 4 }]],
      ["VethPair", "update", ["id3", { o: 5 }, { n: 6 }]],
      ["VethPair", "delete", ["id4", { p: 7 }]],
    ]);
  });

  it("is the same text on every run and names only its kind", () => {
    expect(providerModule("Route")).toBe(providerModule("Route"));
    expect(providerModule("Route")).not.toBe(providerModule("Bridge"));
    expect(providerModule('Odd"Kind')).toContain('dispatch("Odd\\"Kind"');
  });
});
