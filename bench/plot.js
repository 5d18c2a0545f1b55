#!/usr/bin/env node
/**
 * Plots `up` time against N from one or more bench/run.js result files (medians; a
 * size found in several files takes the last one) into a PNG, with gnuplot.
 *
 *   bench/plot.js --out docs/benchmark-up.png docs/benchmark-results-*.json
 */
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const argv = process.argv.slice(2);
const outAt = argv.indexOf("--out");
if (outAt < 0 || argv.length < 3) {
  console.error("usage: bench/plot.js --out FILE.png RESULT.json...");
  process.exit(2);
}
const out = path.resolve(argv[outAt + 1]);
const inputs = argv.filter((_, i) => i !== outAt && i !== outAt + 1);

const byN = new Map();
for (const file of inputs) for (const row of JSON.parse(fs.readFileSync(file, "utf8")).summary) byN.set(row.n, row);
const rows = [...byN.values()].sort((a, b) => a.n - b.n);
// Pulumi's floor (bench/floor) is drawn when every row has it (older result files do not).
const floor = rows.every((r) => r["floor.up"] !== undefined);
const data = rows.map((r) => `${r.n} ${r["nslab.up"] / 1000} ${r["ip-single.up"] / 1000} ${r["ip-batch.up"] / 1000} ${floor ? r["floor.up"] / 1000 : 0}`).join("\n");
const script = [
  "set terminal png size 800,500",
  `set output '${out}'`,
  "set title 'up: time against N (lab: N namespaces on a bridge; medians)'",
  "set xlabel 'N (namespaces)'",
  "set ylabel 'seconds'",
  "set key left top",
  "set grid",
  "$data << EOD",
  data,
  "EOD",
  "plot $data using 1:2 with linespoints lw 2 title 'nslab (pulumi up)', $data using 1:3 with linespoints lw 2 title 'ip, one process per operation', $data using 1:4 with linespoints lw 2 title 'ip -batch'" + (floor ? ", $data using 1:5 with linespoints lw 2 dt 2 title 'Pulumi floor (provider doing nothing)'" : ""),
].join("\n");
const r = spawnSync("gnuplot", [], { input: script, encoding: "utf8" });
if (r.error || r.status !== 0) {
  console.log("plot: skipped (gnuplot is not installed: apt-get install gnuplot-nox)");
} else {
  console.log(`plot: ${path.relative(process.cwd(), out)}`);
}
