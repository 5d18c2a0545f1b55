#!/usr/bin/env node
/**
 * nslab-drift: compares the live lab with the program and says what differs.
 *
 *   nslab-drift [--against-state] [--cwd DIR] [--stack NAME] [other pulumi flags]
 *   nslab-drift --help
 *
 * Runs `pulumi preview --refresh --json` (the `pulumi` on PATH), prints a per-resource,
 * per-property report, and exits 0 when the lab matches, 7 when it drifted (Pulumi's
 * own code for "changes where none were expected"), or the engine's code when the
 * preview itself failed.
 *
 * With --against-state it compares the live lab with the stack's state (what the last
 * `pulumi up` made) instead: `pulumi refresh --preview-only`, which reads every object
 * without running the program, and is two to three times faster. It does not see
 * changes made to the program since.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { explainsFailure, projectDirOf, pulumiErrorHint, pulumiSpawnError, unprintedErrors } from "./hints";
import { driftFromPreview, driftFromRefreshEvents, EngineEvent, formatDrift, refreshedResources } from "../drift";

/** Exit code for drift, the same as `pulumi preview --expect-no-changes`. */
export const DRIFT_EXIT_CODE = 7;

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", args, { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", (err) => reject(new Error(pulumiSpawnError("nslab-drift", err))));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/**
 * The engine's diagnostics that say why the command failed, each once, but those the CLI
 * already printed; when nothing at all says why, that it failed, and how to see more.
 */
function writeErrors(command: string, code: number, printed: string, messages: string[]): void {
  const unprinted = unprintedErrors(printed, messages);
  for (const text of unprinted) process.stderr.write(`${text}\n`);
  if (unprinted.length === 0 && printed.trim() === "") {
    process.stderr.write(`nslab-drift: pulumi ${command} failed (exit ${code}) without saying why; run it yourself (same --cwd and --stack) to see its output.\n`);
  }
}

async function againstProgram(args: string[]): Promise<number> {
  const r = await run(["preview", "--refresh", "--json", "--non-interactive", ...args]);
  let preview;
  try {
    preview = JSON.parse(r.stdout);
  } catch {
    process.stderr.write(r.stderr || r.stdout);
    process.stderr.write(pulumiErrorHint(r.stderr || r.stdout, projectDirOf(args)));
    return r.code || 1;
  }
  if (r.code !== 0) {
    process.stderr.write(r.stderr);
    process.stderr.write(pulumiErrorHint(r.stderr, projectDirOf(args)));
    writeErrors("preview --refresh", r.code, r.stderr, (preview.diagnostics ?? []).filter((d: { severity?: string }) => explainsFailure(d.severity)).map((d: { message: string }) => d.message));
    return r.code;
  }
  const drift = driftFromPreview(preview);
  console.log(formatDrift(drift));
  return drift.length ? DRIFT_EXIT_CODE : 0;
}

async function againstState(args: string[]): Promise<number> {
  // The engine's events, one JSON object per line: the CLI writes them with --event-log,
  // a flag it offers when PULUMI_DEBUG_COMMANDS is set (as Pulumi's Automation API does).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-drift-"));
  try {
    const log = path.join(dir, "events.jsonl");
    // PULUMI_SKIP_CONFIRMATIONS (common in CI) would make the CLI refuse --preview-only
    // ("--yes and --preview-only cannot be used together"); a preview asks nothing anyway.
    const env: NodeJS.ProcessEnv = { ...process.env, PULUMI_DEBUG_COMMANDS: "true" };
    delete env.PULUMI_SKIP_CONFIRMATIONS;
    const r = await run(["refresh", "--preview-only", "--non-interactive", "--event-log", log, ...args], env);
    const events: EngineEvent[] = fs.existsSync(log)
      ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line) as EngineEvent)
      : [];
    if (r.code !== 0) {
      process.stderr.write(r.stderr || r.stdout);
      process.stderr.write(pulumiErrorHint(r.stderr || r.stdout, projectDirOf(args)));
      writeErrors("refresh --preview-only", r.code, r.stderr || r.stdout, events.flatMap((e) => (explainsFailure(e.diagnosticEvent?.severity) ? [e.diagnosticEvent!.message] : [])));
      return r.code;
    }
    if (refreshedResources(events) === 0) {
      // Nothing to compare is no proof the lab is as recorded: a stack never deployed, or
      // destroyed, or the wrong --stack. The check against the program reports such a
      // stack's resources as missing; so this says so, and fails alike.
      console.log("drift: the stack's state records no nslab resource, so there is no lab to compare (never deployed with pulumi up, destroyed, or another stack than meant: check --stack)");
      return DRIFT_EXIT_CODE;
    }
    const drift = driftFromRefreshEvents(events);
    console.log(formatDrift(drift, "state"));
    return drift.length ? DRIFT_EXIT_CODE : 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What `nslab-drift --help` prints. */
export const USAGE = `Usage: nslab-drift [--against-state] [--cwd DIR] [--stack NAME] [other pulumi preview/refresh flags]

Compares the live lab with its Pulumi program and reports, per resource and property,
what differs. Runs the \`pulumi\` on PATH (scripts/drift-check runs it with the
project's CLI and offline defaults).

  (default)         pulumi preview --refresh: the live lab against the program
  --against-state   pulumi refresh --preview-only: the live lab against what the last
                    \`pulumi up\` recorded, without running the program (faster; does not
                    see changes made to the program since)
  -h, --help        this text

Exit codes:
  0   no drift: the live lab matches
  ${DRIFT_EXIT_CODE}   drift (the same code as \`pulumi preview --expect-no-changes\`), or, with
      --against-state, a state that records no nslab resource (nothing to compare)
  other  the preview or refresh itself failed: the engine's exit code, its error on stderr
`;

function main(): Promise<number> {
  const args = process.argv.slice(2);
  // Ours, not pulumi's: \`pulumi preview --help\` would describe flags nslab-drift does not take.
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(USAGE);
    return Promise.resolve(0);
  }
  const state = args.includes("--against-state");
  const rest = args.filter((a) => a !== "--against-state");
  return state ? againstState(rest) : againstProgram(rest);
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    console.error(`nslab-drift: ${(err as Error).message}`);
    process.exitCode = 1;
  },
);
