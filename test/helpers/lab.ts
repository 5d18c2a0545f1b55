/**
 * E2E helper: a Pulumi program in its own folder (under test/.work, so that it
 * resolves `nslab` and `@pulumi/pulumi` from this checkout), a file backend of its own,
 * and the real CLI run inside a per-test Sandbox via scripts/pulumi.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach } from "vitest";
import { RunResult, Sandbox } from "./sandbox";

export const REPO = path.resolve(__dirname, "../..");
const WORK = path.join(REPO, "test/.work");
const PULUMI = path.join(REPO, "scripts/pulumi");

export interface LabOptions {
  /** Stack config values (`pulumi config set KEY VALUE`). */
  config?: Record<string, string>;
  /** Project name in Pulumi.yaml. */
  project?: string;
}

/** Labs opened during the current test, cleaned up after it. */
const opened: Lab[] = [];

/**
 * Gives every test of the calling suite a fresh Sandbox (handed to `use`), and after
 * each test removes the labs it opened and destroys the sandbox with all it holds.
 */
export function sandboxPerTest(use: (sandbox: Sandbox) => void): void {
  let current: Sandbox | undefined;
  beforeEach(async () => {
    current = await Sandbox.create();
    use(current);
  });
  afterEach(async () => {
    for (const lab of opened.splice(0)) lab.cleanup();
    await current?.destroy();
  });
}

export class Lab {
  readonly dir: string;
  readonly stack = "test";

  private constructor(
    readonly sandbox: Sandbox,
    dir: string,
  ) {
    this.dir = dir;
  }

  /** Writes the program (index.ts source) and initialises a stack on a fresh file backend. */
  static async create(sandbox: Sandbox, name: string, program: string, options: LabOptions = {}): Promise<Lab> {
    const dir = fs.mkdtempSync(path.join(WORK, `${name}-`));
    fs.writeFileSync(
      path.join(dir, "Pulumi.yaml"),
      `name: ${options.project ?? "nslab-test"}\nmain: index.ts\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n`,
    );
    fs.writeFileSync(path.join(dir, "index.ts"), program);
    return Lab.open(sandbox, dir, options);
  }

  /** Copies examples/NAME (program, its .py helpers and Pulumi.yaml) into a work folder and opens it. */
  static async fromExample(sandbox: Sandbox, example: string, options: LabOptions = {}): Promise<Lab> {
    fs.mkdirSync(WORK, { recursive: true });
    const dir = fs.mkdtempSync(path.join(WORK, `${example}-`));
    const src = path.join(REPO, "examples", example);
    for (const f of fs.readdirSync(src)) {
      if (f.endsWith(".ts") || f.endsWith(".py") || f === "Pulumi.yaml") fs.copyFileSync(path.join(src, f), path.join(dir, f));
    }
    return Lab.open(sandbox, dir, options);
  }

  /** Edits the program's index.ts in place. */
  edit(from: string | RegExp, to: string): void {
    const file = path.join(this.dir, "index.ts");
    const before = fs.readFileSync(file, "utf8");
    const after = before.replace(from, to);
    if (after === before) throw new Error(`edit: ${String(from)} not found in the program`);
    fs.writeFileSync(file, after);
  }

  /** Uses an existing program folder (e.g. one of examples/), copying nothing. */
  static async open(sandbox: Sandbox, dir: string, options: LabOptions = {}): Promise<Lab> {
    fs.mkdirSync(WORK, { recursive: true });
    const lab = new Lab(sandbox, dir);
    opened.push(lab);
    fs.mkdirSync(lab.stateDir, { recursive: true });
    await lab.ok(["stack", "init", lab.stack]);
    for (const [k, v] of Object.entries(options.config ?? {})) await lab.ok(["config", "set", k, v]);
    return lab;
  }

  get stateDir(): string {
    return path.join(WORK, "state", path.basename(this.dir));
  }

  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PULUMI_BACKEND_URL: `file://${this.stateDir}`,
      PULUMI_CONFIG_PASSPHRASE: "",
      PULUMI_NODEJS_TRANSPILE_ONLY: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      NO_COLOR: "1",
    };
  }

  /** Runs `pulumi ARGS` for this program and stack inside the sandbox (ENV added to {@link env}). */
  pulumi(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    return this.sandbox.run(PULUMI, [...args, "--cwd", this.dir, ...(args[0] === "stack" && args[1] === "init" ? [] : ["--stack", this.stack])], {
      env: { ...this.env(), ...env },
      timeoutMs: 600_000,
    });
  }

  /**
   * Starts `pulumi up` for this program and stack inside the sandbox without waiting for
   * it (a test that kills it half-way): the CLI's process, everything it printed so far,
   * and its end.
   */
  startUp(): { cli: ChildProcess; output: () => string; exited: Promise<void> } {
    const cli = spawn("nsenter", ["-t", String(this.sandbox.pid), "-n", "-m", `--wd=${this.dir}`, "--", PULUMI, "up", "--yes", "--skip-preview", "--non-interactive", "--cwd", this.dir, "--stack", this.stack], {
      env: this.env(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    cli.stdout!.on("data", (d) => (output += d));
    cli.stderr!.on("data", (d) => (output += d));
    const exited = new Promise<void>((r) => cli.on("close", () => r()));
    return { cli, output: () => output, exited };
  }

  /** Runs `pulumi ARGS` and throws (with the output) unless it exits 0. */
  async ok(args: string[]): Promise<RunResult> {
    const r = await this.pulumi(args);
    if (r.exitCode !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  up(extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    return this.pulumi(["up", "--yes", "--skip-preview", "--non-interactive", ...extra], env);
  }

  preview(extra: string[] = []): Promise<RunResult> {
    return this.pulumi(["preview", "--non-interactive", "--diff", ...extra]);
  }

  refresh(extra: string[] = []): Promise<RunResult> {
    return this.pulumi(["refresh", "--yes", "--skip-preview", "--non-interactive", ...extra]);
  }

  destroy(extra: string[] = []): Promise<RunResult> {
    return this.pulumi(["destroy", "--yes", "--skip-preview", "--non-interactive", ...extra]);
  }

  /** Drift check: exits 7 when the live lab differs from the program. */
  driftCheck(): Promise<RunResult> {
    return this.pulumi(["preview", "--refresh", "--expect-no-changes", "--non-interactive", "--diff"]);
  }

  async outputs(): Promise<Record<string, unknown>> {
    const r = await this.ok(["stack", "output", "--json"]);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  /** Resources in the stack's state, by type. */
  async resources(): Promise<{ type: string; urn: string; id?: string; outputs?: Record<string, unknown> }[]> {
    const r = await this.ok(["stack", "export"]);
    return JSON.parse(r.stdout).deployment.resources ?? [];
  }

  /** Rewrites the program. */
  write(program: string): void {
    fs.writeFileSync(path.join(this.dir, "index.ts"), program);
  }

  /** Removes the program folder and its state (after destroy). */
  cleanup(): void {
    fs.rmSync(this.stateDir, { recursive: true, force: true });
    if (this.dir.startsWith(WORK)) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Text for assertion messages. */
export function show(r: RunResult): string {
  return `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
