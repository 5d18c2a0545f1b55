#!/usr/bin/env node
/**
 * nslab-drift: compares the live lab with the program and says what differs.
 *
 *   nslab-drift [--cwd DIR] [--stack NAME] [other pulumi preview flags]
 *
 * Runs `pulumi preview --refresh --json` (the `pulumi` on PATH), prints a per-resource,
 * per-property report, and exits 0 when the lab matches, 7 when it drifted (Pulumi's
 * own code for "changes where none were expected"), or the engine's code when the
 * preview itself failed.
 */
import { spawn } from "node:child_process";
import { driftFromPreview, formatDrift } from "../drift";

/** Exit code for drift, the same as `pulumi preview --expect-no-changes`. */
export const DRIFT_EXIT_CODE = 7;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function main(): Promise<number> {
  const r = await run(["preview", "--refresh", "--json", "--non-interactive", ...process.argv.slice(2)]);
  let preview;
  try {
    preview = JSON.parse(r.stdout);
  } catch {
    process.stderr.write(r.stderr || r.stdout);
    return r.code || 1;
  }
  if (r.code !== 0) {
    process.stderr.write(r.stderr);
    for (const d of preview.diagnostics ?? []) if (d.severity === "error") process.stderr.write(`${d.message}\n`);
    return r.code;
  }
  const drift = driftFromPreview(preview);
  console.log(formatDrift(drift));
  return drift.length ? DRIFT_EXIT_CODE : 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    console.error(`nslab-drift: ${(err as Error).message}`);
    process.exitCode = 1;
  },
);
