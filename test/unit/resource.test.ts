import { describe, expect, it } from "vitest";
import { diffFields, isNslabTag, ownerTag } from "../../provider/resource";

const RULES = [
  { name: "name", replace: true },
  { name: "addresses", set: true },
  { name: "mac", computed: true },
  { name: "mtu" },
];

describe("diffFields", () => {
  const base = { name: "x", addresses: ["10.0.0.1/24", "10.0.1.1/24"], mac: "02:00:00:00:00:01", mtu: 1500 };

  it("is empty for identical inputs", () => {
    expect(diffFields(base, { ...base }, RULES)).toEqual({ changes: false, replaces: [], stables: ["name"], deleteBeforeReplace: false });
  });

  it("ignores address order and an unset computed field", () => {
    const d = diffFields(base, { ...base, addresses: ["10.0.1.1/24", "10.0.0.1/24"], mac: undefined }, RULES);
    expect(d.changes).toBe(false);
  });

  it("updates in place for in-place fields", () => {
    const d = diffFields(base, { ...base, mtu: 9000 }, RULES);
    expect(d).toMatchObject({ changes: true, replaces: [], deleteBeforeReplace: false });
  });

  it("replaces, deleting first, when a replace field changes", () => {
    const d = diffFields(base, { ...base, name: "y" }, RULES);
    expect(d).toMatchObject({ changes: true, replaces: ["name"], deleteBeforeReplace: true });
  });
});

describe("ownerTag", () => {
  it("is stable, distinct per owner and recognisable", () => {
    expect(ownerTag("p/s/Namespace/a")).toBe(ownerTag("p/s/Namespace/a"));
    expect(ownerTag("p/s/Namespace/a")).not.toBe(ownerTag("p/s/Namespace/b"));
    expect(isNslabTag(ownerTag("x"))).toBe(true);
    expect(isNslabTag("someone else")).toBe(false);
  });
});
