// The benchmark's arithmetic and its report, apart from the runs that feed them (so that
// they can be tested without running anything): medians per N, tool and operation, and
// the lines bench/run.js prints, goals included.
"use strict";

const TOOLS = ["nslab", "stock", "floor", "ip-single", "ip-batch"];
const OPS = ["up", "refresh", "refreshOnly", "destroy"];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * One row per N from the raw runs ({ n, run, tool, up, refresh, refreshOnly?, destroy,
 * *PeakKiB?, residue }): `tool.op` medians in ms (the scripts have no refresh-only: their
 * refresh stands in), nslab's peak memory, and how many runs of each tool left objects.
 */
function summarize(results, sizes) {
  return sizes.map((n) => {
    const row = { n };
    for (const tool of TOOLS) {
      const rs = results.filter((x) => x.n === n && x.tool === tool);
      for (const op of OPS) row[`${tool}.${op}`] = median(rs.map((x) => x[op] ?? x.refresh));
      if (tool === "nslab") row.peakKiB = Math.max(...rs.flatMap((x) => [x.upPeakKiB, x.refreshPeakKiB, x.refreshOnlyPeakKiB, x.destroyPeakKiB].filter(Boolean)));
      const state = rs.map((x) => x.stateBytesPerResource).filter(Boolean);
      if (state.length) row[`${tool}.stateBytesPerResource`] = median(state);
      row[`${tool}.leftovers`] = rs.filter((x) => x.residue).length;
    }
    return row;
  });
}

/** The lines bench/run.js prints for a summary: table, memory, leftovers, goals. */
function report(summary, runs) {
  const out = [];
  const f = (ms) => (ms / 1000).toFixed(2).padStart(7);
  const s = (ms) => f(ms).trim();
  out.push(`\nnslab benchmark: medians of ${runs} runs, seconds (lab: N namespaces on a bridge, veth, address, default route; forwarding; 1 NAT rule)\n`);
  out.push("refresh: pulumi preview --refresh (reads, then runs the program); refresh-only: pulumi refresh --preview-only (reads);");
  out.push("for the scripts both are one dump of links and routes per namespace plus the ruleset.");
  out.push("nslab: tuned (scripts/pulumi, PULUMI_SKIP_CHECKPOINTS, transpile-only); stock: the plain `pulumi` command in a default environment");
  out.push("(checkpoints after every step, default parallelism, CLI logs on), with the project files the README recommends");
  out.push("(bench/lab: tsconfig.json noCheck, so no type-checking; Pulumi.yaml nodeargs and plugins, nslab/preload in the program and the provider process).");
  out.push("floor: the same resources with a dynamic provider that does nothing (Pulumi's own cost, tuned); nslab-floor: what nslab adds.\n");
  out.push("    N | op           |   nslab |   stock |   floor | nslab-floor | ip/op   | ip-batch | nslab/ip-op | stock/ip-op | nslab/batch");
  out.push("------+--------------+---------+---------+---------+-------------+---------+----------+-------------+-------------+------------");
  const label = { up: "up", refresh: "refresh", refreshOnly: "refresh-only", destroy: "destroy" };
  for (const row of summary) {
    for (const op of OPS) {
      const a = row[`nslab.${op}`], b = row[`ip-single.${op}`], c = row[`ip-batch.${op}`], z = row[`floor.${op}`], st = row[`stock.${op}`];
      out.push(`${String(row.n).padStart(5)} | ${label[op].padEnd(12)} | ${f(a)} | ${f(st)} | ${f(z)} | ${f(a - z).padStart(11)} | ${f(b)} | ${f(c).padStart(8)} | ${(a / b).toFixed(1).padStart(10)}x | ${(st / b).toFixed(1).padStart(10)}x | ${(a / c).toFixed(1).padStart(9)}x`);
    }
  }
  out.push("\nprovider process peak memory (max RSS): " + summary.map((r) => `N=${r.n}: ${(r.peakKiB / 1024).toFixed(0)} MiB`).join(", "));
  out.push("state per resource after up (pulumi stack export): " + summary.map((r) => `N=${r.n}: ${r["nslab.stateBytesPerResource"] ?? "?"} B`).join(", "));
  out.push("per host, nslab up: " + summary.map((r) => `N=${r.n}: ${(r["nslab.up"] / r.n).toFixed(1)} ms`).join(", "));
  const leftovers = summary.reduce((sum, r) => sum + TOOLS.reduce((t, tool) => t + r[`${tool}.leftovers`], 0), 0);
  out.push(`left after destroy: ${leftovers === 0 ? "nothing, every run" : `${leftovers} runs left objects (see JSON)`}`);

  const at100 = summary.find((r) => r.n === 100);
  if (at100 || summary.length > 1) out.push("\ngoals (reported, not asserted):");
  if (at100) {
    const script = at100["ip-single.up"];
    const up = at100["nslab.up"];
    const stock = at100["stock.up"];
    out.push(`  up at N=100, tuned, within 1.2x of one ip process per operation: ${(up / script).toFixed(2)}x -> ${up <= 1.2 * script ? "met" : "NOT met"}`);
    out.push(`  up at N=100, stock, within 1.5x of one ip process per operation: ${(stock / script).toFixed(2)}x -> ${stock <= 1.5 * script ? "met" : "NOT met"} (stock ${s(stock)} s, tuned ${s(up)} s, script ${s(script)} s)`);
    const floorRatio = at100["floor.up"] / script;
    out.push(`    Pulumi's floor (a provider that does nothing) alone is ${floorRatio.toFixed(1)}x that script${floorRatio > 1.2 ? ": no dynamic provider can meet the tuned goal here" : ""}; nslab adds ${s(up - at100["floor.up"])} s to it (the script: ${s(script)} s)`);
    for (const [op, what] of [["refresh", "pulumi preview --refresh"], ["refreshOnly", "pulumi refresh --preview-only"]]) {
      const nslab = at100[`nslab.${op}`];
      const floor = at100[`floor.${op}`];
      out.push(`  no-change refresh (${what}) faster than the one-process-per-operation script's up: ${s(nslab)} s vs ${s(script)} s -> ${nslab < script ? "met" : "NOT met"}`);
      out.push(`    Pulumi's floor for it: ${s(floor)} s${floor >= script ? ": no dynamic provider can meet this goal here" : ""}; nslab adds ${s(nslab - floor)} s`);
    }
  }
  if (summary.length > 1) {
    const first = summary[0];
    const perHost = (r) => (r["nslab.up"] - first["nslab.up"]) / (r.n - first.n || 1);
    out.push(`  linear growth: marginal cost per extra host ${summary.slice(1).map((r) => `${first.n}->${r.n}: ${perHost(r).toFixed(1)} ms`).join(", ")}`);
  }
  return out;
}

module.exports = { median, summarize, report };
