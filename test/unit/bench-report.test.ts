import * as path from "node:path";
import { describe, expect, it } from "vitest";

// bench/report.js is plain CommonJS (the bench runs without a build step).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { median, summarize, report } = require(path.resolve(__dirname, "../../bench/report.js")) as {
  median: (xs: number[]) => number;
  summarize: (results: Record<string, unknown>[], sizes: number[]) => Record<string, number>[];
  report: (summary: Record<string, number>[], runs: number) => string[];
};

/** Raw runs of the four tools at size N: ms per op; the scripts have no refresh-only. */
function runs(n: number, times: Record<string, [number, number, number | undefined, number]>, residue = ""): Record<string, unknown>[] {
  return Object.entries(times).map(([tool, [up, refresh, refreshOnly, destroy]]) => ({
    n,
    run: 0,
    tool,
    up,
    refresh,
    ...(refreshOnly === undefined ? {} : { refreshOnly }),
    destroy,
    ...(tool === "nslab" ? { upPeakKiB: 100 * 1024, destroyPeakKiB: 120 * 1024, stateBytesPerResource: 1900 + n } : {}),
    residue: tool === "nslab" ? residue : "",
  }));
}

const line = (lines: string[], start: string) =>
  lines
    .join("\n")
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith(start));

describe("the benchmark's report (bench/report.js)", () => {
  it("medians", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("reports the goals at N=100 from the medians: met, not met, and where Pulumi's floor alone misses", () => {
    const results = [
      ...runs(10, { nslab: [1000, 1200, 600, 700], stock: [3000, 3200, 900, 1400], floor: [900, 1100, 500, 450], "ip-single": [150, 40, undefined, 80], "ip-batch": [40, 40, undefined, 80] }),
      ...runs(100, { nslab: [1700, 2800, 1300, 1400], stock: [2400, 3600, 1700, 2100], floor: [1700, 2200, 800, 700], "ip-single": [1500, 400, undefined, 250], "ip-batch": [300, 400, undefined, 80] }),
    ];
    const lines = report(summarize(results, [10, 100]), 1);
    expect(line(lines, "up at N=100, tuned")).toBe("up at N=100, tuned, within 1.2x of one ip process per operation: 1.13x -> met");
    expect(line(lines, "up at N=100, stock")).toBe("up at N=100, stock, within 1.5x of one ip process per operation: 1.60x -> NOT met (stock 2.40 s, tuned 1.70 s, script 1.50 s)");
    expect(line(lines, "Pulumi's floor (a provider")).toContain("alone is 1.1x that script; nslab adds 0.00 s to it (the script: 1.50 s)");
    expect(line(lines, "state per resource")).toBe("state per resource after up (pulumi stack export): N=10: 1910 B, N=100: 2000 B");
    expect(line(lines, "no-change refresh (pulumi preview --refresh)")).toContain("2.80 s vs 1.50 s -> NOT met");
    expect(line(lines, "no-change refresh (pulumi refresh --preview-only)")).toContain("1.30 s vs 1.50 s -> met");
    const floors = lines.filter((l) => l.includes("Pulumi's floor for it"));
    expect(floors[0]).toContain("2.20 s: no dynamic provider can meet this goal here; nslab adds 0.60 s");
    expect(floors[1].trim()).toBe("Pulumi's floor for it: 0.80 s; nslab adds 0.50 s");
    expect(line(lines, "linear growth")).toBe("linear growth: marginal cost per extra host 10->100: 7.8 ms");
    expect(line(lines, "left after destroy")).toBe("left after destroy: nothing, every run");
    expect(line(lines, "provider process peak memory")).toBe("provider process peak memory (max RSS): N=10: 120 MiB, N=100: 120 MiB");
    // The table: the scripts' refresh stands in for their refresh-only.
    expect(line(lines, "100 | refresh-only")).toMatch(/^100 \| refresh-only \|\s+1\.30 \|\s+1\.70 \|\s+0\.80 \|\s+0\.50 \|\s+0\.40 \|\s+0\.40 \|\s+3\.3x \|\s+4\.3x \|\s+3\.3x$/);
  });

  it("says NOT met over the goals, when the floor alone is over them, and counts runs that left objects", () => {
    const results = runs(100, { nslab: [4300, 4700, 1900, 1800], stock: [5000, 5500, 2500, 2600], floor: [3500, 3800, 1300, 1100], "ip-single": [1400, 470, undefined, 230], "ip-batch": [300, 470, undefined, 80] }, "netns b1");
    const lines = report(summarize(results, [100]), 1);
    expect(line(lines, "up at N=100, tuned")).toContain("3.07x -> NOT met");
    expect(line(lines, "up at N=100, stock")).toContain("3.57x -> NOT met");
    expect(line(lines, "Pulumi's floor (a provider")).toContain("alone is 2.5x that script: no dynamic provider can meet the tuned goal here");
    expect(line(lines, "left after destroy")).toBe("left after destroy: 1 runs left objects (see JSON)");
    expect(line(lines, "linear growth")).toBeUndefined(); // one size: nothing to compare
  });
});
