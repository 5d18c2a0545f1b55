import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { inspectLoops, safeFrameLine, safeStack } from "../../sdk/safe-stacks";

const REPO = path.resolve(__dirname, "../..");
const SAFE_STACKS = path.join(REPO, "dist/sdk/safe-stacks.js");

/**
 * Runs SCRIPT in a fresh Node.js (this one) in the repo, with a heap so small that
 * util.inspect's loop ends in an out-of-memory crash within a second instead of a
 * minute's spin: its exit status and output.
 */
function inNode(script: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ["--max-old-space-size=96", "-e", script], {
    cwd: REPO,
    env: { ...process.env, NODE_OPTIONS: "", PULUMI_CONFIG: "" },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * An error thrown by @pulumi/pulumi (Config.require, as a program's missing setting),
 * its trace formatted through the source maps Pulumi's runner installs, printed as the
 * runner prints it (util.inspect with colors). With SAFE, nslab's safeStacks first.
 */
const printPulumiError = (safe: boolean) => `
  require("source-map-support/register");
  ${safe ? `console.log("safe:", require(${JSON.stringify(SAFE_STACKS)}).safeStacks());` : ""}
  const pulumi = require("@pulumi/pulumi");
  try {
    new pulumi.Config("lab").require("uplink");
  } catch (err) {
    console.log(require("node:util").inspect(err, { colors: true }));
  }`;

describe("traces Node.js can print (sdk/safe-stacks.ts)", () => {
  it("a frame whose path ends in a node_modules package name gets ./ before its last part; other frames and the message stay", () => {
    expect(safeFrameLine("    at applyHelperAsync (/p/node_modules/@pulumi/output.ts:519:31)")).toBe("    at applyHelperAsync (/p/node_modules/@pulumi/./output.ts:519:31)");
    expect(safeFrameLine("    at /p/node_modules/foo.js:1:1")).toBe("    at /p/node_modules/./foo.js:1:1");
    expect(safeFrameLine("    at f (/p/node_modules/@scope)")).toBe("    at f (/p/node_modules/./@scope)");
    expect(safeFrameLine("    at f (C:\\p\\node_modules\\@s\\x.ts:1:2)")).toBe("    at f (C:\\p\\node_modules\\@s\\.\\x.ts:1:2)");
    // A later package folder decides, as in util.inspect: the first segment is followed by a separator.
    expect(safeFrameLine("    at f (/p/node_modules/a/node_modules/b.js:1:1)")).toBe("    at f (/p/node_modules/a/node_modules/./b.js:1:1)");
    for (const fine of [
      "    at f (/p/node_modules/@pulumi/pulumi/output.js:1:2)",
      "    at f (/p/node_modules/nslab/dist/sdk/index.js:1:2)",
      "    at f (/p/my_node_modules/x.js:1:2)",
      "    at f (/p/index.ts:3:1)",
      "    at new Promise (<anonymous>)",
    ])
      expect(safeFrameLine(fine)).toBe(fine);
    const trace = "Error: bad /p/node_modules/x\n  second line /p/node_modules/y\n    at f (/p/node_modules/@pulumi/output.ts:1:2)\n    at g (/p/index.ts:3:1)";
    expect(safeStack(trace)).toBe("Error: bad /p/node_modules/x\n  second line /p/node_modules/y\n    at f (/p/node_modules/@pulumi/./output.ts:1:2)\n    at g (/p/index.ts:3:1)");
    expect(safeStack("Error: no frames /p/node_modules/x")).toBe("Error: no frames /p/node_modules/x");
  });

  it("which Node.js releases loop", () => {
    expect(inspectLoops("22.23.5")).toBe(true);
    expect(inspectLoops("24.18.1")).toBe(true);
    expect(inspectLoops("24.19.0")).toBe(false);
    expect(inspectLoops("25.9.0")).toBe(true);
    expect(inspectLoops("26.4.0")).toBe(true);
    expect(inspectLoops("26.5.0")).toBe(false);
    expect(inspectLoops("27.0.0")).toBe(false);
  });

  it("the guard holds: this Node.js loops on @pulumi/pulumi's traces exactly when inspectLoops says so", () => {
    // When this fails, the Node.js that scripts/setup provides changed: correct
    // inspectLoops (and the releases in sdk/safe-stacks.ts) to what it does now.
    const raw = inNode(printPulumiError(false));
    if (inspectLoops()) {
      expect(raw.status, raw.out.slice(0, 2000)).not.toBe(0);
      expect(raw.out).toMatch(/heap out of memory|Invalid string length/);
    } else {
      expect(raw.status, raw.out.slice(0, 2000)).toBe(0);
      expect(raw.out).toContain("Missing required configuration variable 'lab:uplink'");
    }
  });

  it("with safeStacks, util.inspect prints @pulumi/pulumi's error with its source-mapped frames", () => {
    const safe = inNode(printPulumiError(true));
    expect(safe.status, safe.out.slice(0, 2000)).toBe(0);
    expect(safe.out).toContain(`safe: ${inspectLoops()}`);
    expect(safe.out).toContain("Missing required configuration variable 'lab:uplink'");
    // The frames are still the source-mapped ones, the file named (colors around the package).
    expect(safe.out).toMatch(/at Config\.require .*node_modules\/.*config\.ts:\d+:\d+/);
  });

  it("wraps Node.js's own formatter (its source maps stay in use) or another, only once; installs none where there is none", () => {
    const r = inNode(`
      const { safeStacks } = require(${JSON.stringify(SAFE_STACKS)});
      const own = Error.prepareStackTrace;
      const wrapsOwn = safeStacks() && Error.prepareStackTrace !== own;
      Error.prepareStackTrace = undefined;
      const none = safeStacks();
      const unset = Error.prepareStackTrace === undefined;
      Error.prepareStackTrace = (e, frames) => "T\\n    at f (/p/node_modules/@pulumi/output.ts:1:2)";
      const first = safeStacks();
      const wrapped = Error.prepareStackTrace;
      const again = safeStacks();
      console.log(JSON.stringify({ wrapsOwn, none, unset, first, again, same: wrapped === Error.prepareStackTrace, stack: new Error("x").stack }));`);
    expect(r.status, r.out).toBe(0);
    const loops = inspectLoops();
    expect(JSON.parse(r.out.trim().split("\n").pop()!)).toEqual({
      wrapsOwn: loops,
      none: false,
      unset: true,
      first: loops,
      again: loops,
      same: true,
      stack: loops ? "T\n    at f (/p/node_modules/@pulumi/./output.ts:1:2)" : "T\n    at f (/p/node_modules/@pulumi/output.ts:1:2)",
    });
  });
});
