import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

// The benchmark's own tools, run for real on tiny labs: they build, measure and tear down
// the lab with nslab, the floor and both scripts. Speed is never asserted here.
describe("the benchmark tools (bench/run.js, bench/profile.js)", () => {
  let sandbox: Sandbox;
  sandboxPerTest((s) => (sandbox = s));

  it("bench/run.js runs every tool and operation, reports, writes the raw figures and leaves nothing", async () => {
    const out = fs.mkdtempSync(path.join(REPO, "test/.work/bench-"));
    try {
      const r = await sandbox.run("node", [path.join(REPO, "bench/run.js"), "--sizes", "2,3", "--runs", "1", "--out", out], { timeoutMs: 500_000 });
      expect(r.exitCode, show(r)).toBe(0);
      for (const n of [2, 3]) {
        for (const op of ["up", "refresh", "refresh-only", "destroy"]) expect(r.stdout).toMatch(new RegExp(`^\\s+${n} \\| ${op}\\s+\\|`, "m"));
      }
      expect(r.stdout).toContain("left after destroy: nothing, every run");
      expect(r.stdout).toMatch(/linear growth: marginal cost per extra host 2->3: -?\d+\.\d ms/);
      const [file] = fs.readdirSync(out).filter((f) => f.endsWith(".json"));
      const raw = JSON.parse(fs.readFileSync(path.join(out, file), "utf8")) as { results: Record<string, unknown>[]; summary: Record<string, number>[] };
      expect(raw.results).toHaveLength(2 * 5);
      expect(r.stdout).toMatch(/state per resource after up \(pulumi stack export\): N=2: \d+ B, N=3: \d+ B/);
      for (const result of raw.results) {
        expect(result.residue, JSON.stringify(result)).toBe("");
        for (const op of ["up", "refresh", "destroy"]) expect(result[op]).toBeGreaterThan(0);
        if (result.tool === "nslab" || result.tool === "stock" || result.tool === "floor") expect(result.refreshOnly).toBeGreaterThan(0);
        if (result.tool === "nslab" || result.tool === "stock") expect(result.stateBytesPerResource).toBeGreaterThan(500);
      }
      expect(raw.summary.map((row) => row.n)).toEqual([2, 3]);
      expect(raw.summary.every((row) => row.peakKiB > 10 * 1024)).toBe(true); // the provider process's max RSS
      expect(await sandbox.residue()).toEqual([]);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 600_000);

  it("bench/profile.js splits an operation's CPU time and shows the provider's operations", async () => {
    const r = await sandbox.run("node", [path.join(REPO, "bench/profile.js"), "--hosts", "2", "--op", "refresh-only"], { timeoutMs: 300_000 });
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^pulumi refresh-only, 2 hosts \(9 resources\): wall \d+\.\d\d s, CPU \d+\.\d\d s/m);
    for (const part of ["engine (pulumi CLI + language host, Go)", "program (Node.js, registers resources)", "provider (Node.js, dynamic provider)"]) expect(r.stdout).toContain(part);
    expect(r.stdout).toMatch(/provider pid \d+ .* host loaded at .* first call at/);
    for (const kind of ["Namespace", "VethPair", "Route", "Bridge"]) expect(r.stdout).toMatch(new RegExp(`${kind} read\\s+\\d+ calls`));
    expect(await sandbox.residue()).toEqual([]);
  });

  it("bench/profile.js --program lab-root-ends: the lab with every veth deleted from the bridge's namespace", async () => {
    const r = await sandbox.run("node", [path.join(REPO, "bench/profile.js"), "--hosts", "3", "--op", "destroy", "--program", "lab-root-ends"], { timeoutMs: 300_000 });
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^pulumi destroy, 3 hosts \(12 resources\): wall/m);
    for (const kind of ["Namespace", "VethPair", "Route", "Bridge"]) expect(r.stdout).toMatch(new RegExp(`${kind} delete\\s+\\d+ calls`));
    expect(await sandbox.residue()).toEqual([]);
  });
});
