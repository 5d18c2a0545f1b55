/**
 * Per-test sandboxes inside the suite's sandbox: a network + mount namespace held open
 * by a sleeping process, with its own /run/netns. Commands enter it with nsenter.
 * Destroying it kills the holder, and the kernel frees every namespace, link, route
 * and nft table made inside: nothing can leak into the next test.
 */
import { ChildProcess, spawn } from "node:child_process";

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
}

/** Runs a command (argument array, no shell) and collects its output. */
export function sh(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    if (options.input !== undefined) child.stdin!.end(options.input);
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 300_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exitCode: code ?? (signal ? 128 : -1) });
    });
  });
}

/** Like sh, but throws with the command's output when it fails. */
export async function must(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  const r = await sh(command, args, options);
  if (r.exitCode !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/** Starts a long-running command here (a server), its stdout and stderr piped; kill it by pid. */
export function spawnHere(command: string, args: string[]): ChildProcess {
  return spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
}

export class Sandbox {
  private constructor(private readonly holder: ChildProcess) {}

  get pid(): number {
    return this.holder.pid!;
  }

  /** Starts a fresh network + mount namespace with lo up and an empty /run/netns. */
  static async create(): Promise<Sandbox> {
    const holder = spawn(
      "unshare",
      [
        "--net",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        "mount -t tmpfs -o mode=0755 nslab-test /run/netns && mkdir -p /run/nslab && mount -t tmpfs -o mode=0755 nslab-test-records /run/nslab && ip link set lo up && echo ready && exec sleep infinity",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      holder.once("error", reject);
      holder.once("exit", (code) => reject(new Error(`sandbox holder exited early (${code})`)));
      holder.stdout!.once("data", () => resolve());
    });
    holder.removeAllListeners("exit");
    return new Sandbox(holder);
  }

  /** The nsenter prefix that runs a command inside this sandbox. */
  private enter(command: string, args: string[], cwd?: string): [string, string[]] {
    // Entering a mount namespace resets the working directory: pass it along.
    return ["nsenter", ["-t", String(this.pid), "-n", "-m", `--wd=${cwd ?? process.cwd()}`, "--", command, ...args]];
  }

  run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    const [c, a] = this.enter(command, args, options.cwd);
    return sh(c, a, options);
  }

  must(command: string, args: string[], options: RunOptions = {}): Promise<string> {
    const [c, a] = this.enter(command, args, options.cwd);
    return must(c, a, options);
  }

  /** Starts a long-running command inside (a server); kill it before destroy. */
  spawn(command: string, args: string[]): ChildProcess {
    const [c, a] = this.enter(command, args);
    return spawn(c, a, { stdio: ["ignore", "pipe", "pipe"] });
  }

  /** Everything left inside: namespaces, non-lo links, nft tables. */
  async residue(): Promise<string[]> {
    const left: string[] = [];
    const ns = (await this.must("ip", ["netns", "list"])).trim();
    if (ns) left.push(`namespaces: ${ns.replace(/\n/g, ", ")}`);
    const links = (await this.must("ip", ["-o", "link", "show"]))
      .split("\n")
      .map((l) => l.split(": ")[1]?.split("@")[0])
      .filter((n) => n && n !== "lo");
    if (links.length) left.push(`links: ${links.join(", ")}`);
    const tables = (await this.run("nft", ["list", "tables"])).stdout.trim();
    if (tables) left.push(`nft tables: ${tables}`);
    return left;
  }

  async destroy(): Promise<void> {
    if (this.holder.exitCode !== null) return;
    // What nslab recorded in it (/run/nslab) is on the sandbox's own tmpfs and goes with it.
    const exited = new Promise((resolve) => this.holder.once("exit", resolve));
    this.holder.kill("SIGKILL");
    await exited;
  }
}
