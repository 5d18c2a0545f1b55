/**
 * The provider process ends with its engine. Pulumi starts the dynamic provider
 * (@pulumi/pulumi's cmd/dynamic-provider) with the engine's gRPC address as its first
 * argument and stops it when the run ends; when the CLI is killed (kill -9, a lost SSH
 * session) nobody stops it, and it went on creating namespaces for minutes. Pulumi's
 * own plugins health-check the engine and exit when it is gone; this does the same
 * from inside nslab's code, without patching @pulumi/pulumi. It starts as the process
 * starts when nslab/preload is loaded into it (the `plugins` entry of the README's
 * Pulumi.yaml, or NODE_OPTIONS), else with the provider module, loaded by the provider
 * text at the first call: without the preload, a CLI killed between the provider's start
 * and its first call (about a second) leaves it waiting forever, since no nslab code
 * runs in it yet.
 *
 *
 * - every ENGINE_POLL_MS it opens a TCP connection to the engine's address; the
 *   engine's listening socket dies with the CLI, so the connection is refused;
 * - and it checks its parent pid: the CLI is the parent (the plugin script execs
 *   node), and a dead parent makes the kernel re-parent this process.
 *
 * When either says the engine is gone, the provider lets operations already running
 * finish (at most DRAIN_MS: a create half-way between making and marking an object is
 * better completed, so the recovery can take it over), then exits. Its ip sessions go
 * with it: their launcher ends when this process's end closes its stdin.
 */
import * as net from "node:net";

/** How often the engine is checked. */
const ENGINE_POLL_MS = 1_000;
/** A connect attempt slower than this is given up, and counts for nothing (see engineAnswers). */
const CONNECT_TIMEOUT_MS = 2_000;
/** Consecutive failed connects that mean "gone" (one may be a hiccup). */
const FAILURES_TO_EXIT = 2;
/** Longest wait for running operations once the engine is gone. */
const DRAIN_MS = 5_000;

/**
 * The process's one watch: kept on the process (not this module), so that the preload
 * and the provider module share it even when they are two copies of nslab.
 */
const state: { running: number; started: boolean } = ((globalThis as Record<symbol, unknown>)[Symbol.for("nslab.health")] ??= { running: 0, started: false }) as never;

/** Counts an operation in flight, so that the exit waits for it (bounded by DRAIN_MS). */
export async function tracked<T>(work: () => Promise<T>): Promise<T> {
  state.running++;
  try {
    return await work();
  } finally {
    state.running--;
  }
}

/** The engine address when this process is Pulumi's dynamic provider, else undefined. */
export function engineAddress(argv: string[] = process.argv): { host: string; port: number } | undefined {
  if (!/dynamic-provider(?:[\\/]index\.js)?$/.test(argv[1] ?? "")) return undefined;
  const m = /^(.*):(\d+)$/.exec(argv[2] ?? "");
  if (!m) return undefined;
  return { host: m[1].replace(/^\[|\]$/g, "") || "127.0.0.1", port: Number(m[2]) };
}

/**
 * Whether a TCP connection to the engine can be opened now: true, false when it is
 * refused (the engine's listening socket is gone), undefined when no answer came within
 * CONNECT_TIMEOUT_MS. A timeout says nothing: the engine listens on this machine, so a
 * gone one refuses at once, while a provider whose event loop was busy for longer than
 * the timeout (a loaded machine) runs the timer before it sees the connection made, and
 * took a live engine for a gone one, leaving in the middle of a run.
 */
export function engineAnswers(address: { host: string; port: number }): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.host, port: address.port });
    const done = (ok: boolean | undefined) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => done(undefined));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Lets running operations finish (bounded), then exits. */
function leave(why: string): void {
  process.stderr.write(`nslab provider: ${why}; exiting\n`);
  const deadline = Date.now() + DRAIN_MS;
  const wait = setInterval(() => {
    if (state.running === 0 || Date.now() >= deadline) {
      clearInterval(wait);
      process.exit(1);
    }
  }, 50);
}

/**
 * Starts watching the engine when this process is the dynamic provider (once per
 * process; a no-op anywhere else, e.g. in tests that load the module directly).
 */
export function watchEngine(): void {
  const address = engineAddress();
  if (state.started || !address) return;
  state.started = true;
  const parent = process.ppid;
  let failures = 0;
  let checking = false;
  const timer = setInterval(async () => {
    if (checking) return;
    checking = true;
    try {
      if (process.ppid !== parent) {
        clearInterval(timer);
        return leave(`the engine (parent pid ${parent}) is gone`);
      }
      const answer = await engineAnswers(address);
      if (answer !== undefined) failures = answer ? 0 : failures + 1;
      if (failures >= FAILURES_TO_EXIT) {
        clearInterval(timer);
        leave(`the engine at ${address.host}:${address.port} does not answer`);
      }
    } finally {
      checking = false;
    }
  }, ENGINE_POLL_MS);
  // The watch alone must not keep the process alive.
  timer.unref();
}
