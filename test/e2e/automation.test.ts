import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REPO } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

describe("programmatic labs with the Automation API (examples/06-automation)", () => {
  let sandbox: Sandbox;
  let dir: string;
  beforeEach(async () => {
    sandbox = await Sandbox.create();
    fs.mkdirSync(path.join(REPO, "test/.work"), { recursive: true });
    dir = fs.mkdtempSync(path.join(REPO, "test/.work/automation-"));
  });
  afterEach(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await sandbox.destroy();
  });

  it("builds N namespaces in a loop, every pair reaches each other, destroy leaves nothing", async () => {
    const r = await sandbox.run("node", ["-r", "ts-node/register", path.join(REPO, "examples/06-automation/lab.ts"), "5"], {
      cwd: dir,
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" },
      timeoutMs: 300_000,
    });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/up: \{"create":\d+\}/);
    expect(r.stdout).toContain("connectivity: 20/20 pairs reachable");
    expect(r.stdout).toMatch(/destroy: \{"delete":\d+\}/);
    // The helper kept its state and program folder under the current directory.
    expect(fs.existsSync(path.join(dir, ".nslab/state"))).toBe(true);
    expect(await sandbox.residue()).toEqual([]);
  });
});
