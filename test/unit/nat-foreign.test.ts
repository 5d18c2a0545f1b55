import { describe, expect, it } from "vitest";
import { foreignContent } from "../../provider/nat";

const table = { table: { family: "inet", name: "nslab", handle: 1 } };
const chain = (name: string) => ({ chain: { family: "inet", table: "nslab", name, handle: 2 } });
const rule = (chainName: string, comment?: string) => ({ rule: { family: "inet", table: "nslab", chain: chainName, handle: 5, expr: [], ...(comment ? { comment } : {}) } });

describe("foreignContent: what keeps table inet nslab when nslab's last rule goes", () => {
  it.each([
    ["only nslab's table, base chains and rules", [{ metainfo: {} }, table, chain("postrouting"), chain("prerouting"), rule("postrouting", "nslab:0123456789abcdef")], []],
    ["a chain of someone else", [table, chain("postrouting"), chain("theirs")], ["chain theirs"]],
    ["a chain named like a property every object has", [table, chain("constructor"), chain("toString")], ["chain constructor", "chain toString"]],
    ["a set", [table, { set: { name: "blocked", table: "nslab" } }], ["set blocked"]],
    ["a rule without nslab's comment in nslab's chain", [table, chain("postrouting"), rule("postrouting")], ["rule in chain postrouting (handle 5)"]],
    ["a rule with a comment that is not nslab's", [table, chain("postrouting"), rule("postrouting", "mine")], ["rule in chain postrouting (handle 5)"]],
  ])("%s", (_what, objects, foreign) => {
    expect(foreignContent(objects as Record<string, any>[])).toEqual(foreign);
  });
});
