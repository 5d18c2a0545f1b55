/**
 * The fault harness (bench/faults.js) in its short form: two trials on a small lab with a
 * Vxlan per host, kill -9 of the CLI during `up` and of the provider process during `destroy`, each
 * followed by the documented recovery (README "Recovering from a crash") without
 * editing the program; then a provider kill during `up` of a lab with a LinkImpairment
 * and a Process per host, given up on (destroy, nslab-orphans); and a provider kill during
 * `up` of a lab on another host over SSH (a real sshd, bench/faults.js --remote). The long form is
 * `bench/faults.js --trials 12 --hosts 40` (docs/faults.md).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { REPO } from "../helpers/lab";
import { sh } from "../helpers/sandbox";

/** Runs bench/faults.js with `args` and its --json report; the report and the run's output. */
async function harness(name: string, args: string[]): Promise<{ report: Record<string, any> & { results: Record<string, any>[] }; log: string }> {
  const out = path.join(REPO, "test/.work", `${name}-${process.pid}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const r = await sh(process.execPath, [path.join(REPO, "bench/faults.js"), ...args, "--json", out], { timeoutMs: 900_000 });
  const log = `${r.stdout}\n${r.stderr}`;
  expect(fs.existsSync(out), log).toBe(true);
  const report = JSON.parse(fs.readFileSync(out, "utf8"));
  fs.rmSync(out);
  return { report, log };
}

/**
 * A trial recovered as README "Recovering from a crash" says: up converged, preview
 * --refresh clean, traffic, destroy left nothing (its residue: objects, records,
 * programs; with --remote on the host too), and no process of the run outlived the kill
 * by 10 s.
 */
function expectRecovered(t: Record<string, any>, log: string): void {
  expect(t.converged, log).toBe(true);
  expect(t.previewClean, log).toBe(true);
  expect(t.traffic, log).toBe(true);
  expect(t.destroyed, log).toBe(true);
  expect(t.residue, log).toEqual([]);
  expect(t.left, log).toEqual([]);
}

it("kill -9 of the CLI during up and of the provider during destroy of a lab with a Vxlan per host: the recovery converges, passes traffic (over the overlay too) and destroys cleanly", { timeout: 900_000 }, async () => {
  const { report, log } = await harness("faults", ["--trials", "2", "--hosts", "10", "--kinds", "cli-up,provider-destroy", "--vxlan"]);
  const { results, vxlan } = report;
  expect(vxlan).toBe(true);
  expect(results).toHaveLength(2);
  for (const t of results) {
    // The kill interrupted the operation: an up had made namespaces; a destroy had not
    // finished (its namespace deletes run side by side, so all may be gone at the kill
    // while other resources are not), which the CLI's exit shows.
    if (t.during === "up") expect(t.namespacesAtKill, log).toBeGreaterThan(0);
    else expect(t.cliExit, log).not.toBe("0");
    // No process of the run outlives the kill by 10 s either: not the provider, its ip
    // launcher and sessions (provider/health.ts), nor the language host and the program
    // (engine/'s health check).
    expectRecovered(t, log);
  }
});

it("kill -9 of the provider during up of a lab with a LinkImpairment and a Process per host, then destroy and nslab-orphans --delete: nothing is left, no program either", { timeout: 900_000 }, async () => {
  const { report, log } = await harness("faults-destroy", ["--trials", "1", "--hosts", "10", "--kinds", "provider-up", "--recovery", "destroy", "--impairments", "--processes"]);
  const [t] = report.results;
  expect(report.impairments).toBe(true);
  expect(report.processes).toBe(true);
  expect(t.namespacesAtKill, log).toBeGreaterThan(0);
  expect(t.programsAtKill, log).toBeGreaterThan(0);
  expect(t.destroyed, log).toBe(true);
  expect(t.orphans, log).toMatch(/stack nslab-bench\/faults@[0-9a-f]{8}: /);
  expect(t.failures, log).toEqual([]);
  expect(t.residue, log).toEqual([]);
});

it("kill -9 of the provider during up of a lab on another host over SSH (a Process per host too): the recovery converges and passes traffic there, and nothing is left on the host or here, no session of the host either", { timeout: 900_000 }, async () => {
  const { report, log } = await harness("faults-remote", ["--trials", "1", "--hosts", "6", "--kinds", "provider-up", "--remote", "--processes"]);
  const [t] = report.results;
  expect(report.remote).toBe(true);
  expect(report.processes).toBe(true);
  // The kill cut the provider's SSH channels on the host (its shells and ip sessions there,
  // not only the connection's own sshd) while namespaces and a program were there.
  expect(t.namespacesAtKill, log).toBeGreaterThan(0);
  expect(t.programsAtKill, log).toBeGreaterThan(0);
  expect(t.hostChannelsAtKill, log).toBeGreaterThan(0);
  // Nothing left on the host (namespaces, links, nft, forwarding, records, processes) nor
  // in this sandbox, nor the killed provider's SSH control folder; 10 s after the kill, no
  // process of the run here and none on the host: the killed provider's master connection
  // ended with it (its watcher), and its sshd there.
  expectRecovered(t, log);
  expect(t.failures, log).toEqual([]);
});
