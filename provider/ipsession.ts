/**
 * Long-lived `ip -batch` processes, one per namespace (and address family), so that the
 * provider does not pay a process start for every `ip` command (bench/profile.js showed
 * spawning to be a third of the provider's CPU and most of the `ip` processes' own).
 *
 * A session is `[nsenter --net=/run/netns/NS --] ip [-6] -force -json -details -batch -`
 * with stderr merged into stdout, fed one command at a time. After each command a sentinel line is written that
 * ip rejects ("Object "nslab-sync" is unknown"); with -force it reports
 * "Command failed -:N" for it and goes on. Everything printed before that line belongs to
 * the command; the command failed when the stream also says "Command failed -:M" for the
 * command's own line M. So errors stay attributable to one command, and a batch stops at
 * its first failure exactly as `ip -batch` without -force does.
 *
 * Safety:
 * - ip caches interface name -> index lookups for its lifetime, so a long-lived ip can
 *   look up a name whose interface was since deleted or re-created by another process
 *   (another session: deleting a veth end deletes its peer in another namespace; or a
 *   person). Interface indexes are not reused within a namespace, so the kernel answers
 *   "No such device" and nothing is touched; ip then prints that, or for a show, just
 *   [{}]. Such a lookup failure, of a name the session may have cached, is retried
 *   with the rest of its sequence in a fresh session: a write the kernel refused did
 *   nothing, so retrying it is safe. nslab itself never renames or moves an interface
 *   (a new name or namespace replaces it), the one change after which a cached name
 *   would reach a live interface; against someone doing that by hand while nslab runs,
 *   sessions live at most MAX_AGE_MS.
 * - A session holds its namespace alive, and so does one that named it in a command
 *   (`link add ... netns NS`: ip keeps the namespace's file open). Those sessions are
 *   closed (and waited for) before nslab deletes a namespace. A session is used only
 *   while /run/netns/NS is still the namespace it entered (same nsfs inode): a
 *   namespace deleted or replaced by someone else gets a fresh session.
 * - Sessions close after IDLE_MS without work, at most MAX_SESSIONS stay open, and they
 *   end with the provider (their stdin closes).
 * - A command that makes ip exit (a parse error) or hang (TIMEOUT_MS) fails that command
 *   and discards the session.
 */
import { ChildProcessByStdio, spawn } from "node:child_process";
import * as fs from "node:fs";
import type { Readable, Writable } from "node:stream";

const SENTINEL = "nslab-sync";
const SENTINEL_ECHO = `Object "${SENTINEL}" is unknown, try "ip help".\n`;
const IDLE_MS = 10_000;
const MAX_AGE_MS = 60_000;
const MAX_SESSIONS = 512;
const TIMEOUT_MS = 30_000;
/** Where `ip netns` keeps named namespaces. */
export const NETNS_DIR = "/run/netns";

/** How a sequence of commands ended: the output of each command that ran. */
export interface SessionResult {
  outputs: string[];
  /** The first command that failed (the ones after it did not run). */
  failure?: {
    index: number;
    text: string;
    exitCode: number;
    timedOut?: boolean;
    /** A lookup failure of a name this session's ip may have cached. */
    stale?: boolean;
  };
}

type Chunk = { text: string; exited?: number; timedOut?: boolean };

/** What ip prints when a name it looked up (possibly from its cache) has no interface. */
const LOOKUP_FAILED = /^(RTNETLINK answers: No such device|Cannot send link request|Cannot find device|Error: .*Device not found|Device ".*" does not exist)/m;

/** The interface names a command looks up: the words after dev, master, link, name. */
function interfaceNames(command: string[]): string[] {
  return command.filter((_w, i) => i > 0 && ["dev", "master", "link", "name"].includes(command[i - 1]));
}

/** Identity of a named namespace: the inode of its nsfs file, or -1 when absent. */
function identity(netns: string | undefined): number {
  if (netns === undefined) return 0;
  try {
    return fs.statSync(`${NETNS_DIR}/${netns}`).ino;
  } catch {
    return -1;
  }
}

class IpSession {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private buffer = "";
  /** How far `buffer` has been searched for the waiting command's end (big dumps). */
  private searched = 0;
  private line = 0;
  private waiting?: { line: number; done: (chunk: Chunk) => void; timer: NodeJS.Timeout };
  private tail: Promise<unknown> = Promise.resolve();
  private busy = 0;
  private idleTimer?: NodeJS.Timeout;
  private exitCode?: number;
  readonly exited: Promise<void>;
  readonly born = Date.now();
  lastUsed = Date.now();
  /** Interface names this session's ip may have cached: looked up, or in a dump. */
  private readonly names = new Set<string>();
  private dumped = false;
  /** Namespaces named in `netns NAME` arguments: ip keeps them open (and alive). */
  readonly holds = new Set<string>();

  constructor(
    readonly key: string,
    readonly identity: number,
    argv: string[],
    private readonly onGone: (session: IpSession) => void,
  ) {
    // sh only merges stderr into stdout (so that output and errors arrive in order);
    // the arguments reach ip as an array, never through the shell's parser.
    this.child = spawn("sh", ["-c", 'exec "$0" "$@" 2>&1', ...argv], {
      stdio: ["pipe", "pipe", "ignore"],
      env: { ...process.env, LC_ALL: "C" },
    });
    this.exited = new Promise((resolve) => this.child.once("close", (code) => {
      this.exitCode = code ?? -1;
      this.finish({ text: this.buffer, exited: this.exitCode });
      this.onGone(this);
      resolve();
    }));
    this.child.once("error", () => undefined); // reported through "close"
    this.child.stdin.on("error", () => undefined); // EPIPE after ip exited: seen through "close"
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (data: string) => {
      this.buffer += data;
      this.pump();
    });
    this.setRef(false);
  }

  get dead(): boolean {
    return this.exitCode !== undefined;
  }

  get idle(): boolean {
    return this.busy === 0;
  }

  /** Runs the commands in order, one at a time, stopping at the first failure. */
  run(commands: string[][]): Promise<SessionResult> {
    this.busy++;
    clearTimeout(this.idleTimer);
    this.setRef(true);
    const result = this.tail.then(() => this.runNow(commands));
    this.tail = result.catch(() => undefined);
    return result.finally(() => {
      this.lastUsed = Date.now();
      if (--this.busy === 0) {
        this.setRef(false);
        this.idleTimer = setTimeout(() => this.close(), IDLE_MS);
        this.idleTimer.unref();
      }
    });
  }

  private async runNow(commands: string[][]): Promise<SessionResult> {
    const outputs: string[] = [];
    for (const [index, command] of commands.entries()) {
      const text = command.join(" ");
      if (/[\n#\\]/.test(text)) {
        // ip -batch reads '#' as a comment and '\' as a line continuation.
        return { outputs, failure: { index, text: `nslab: refusing to pass ${JSON.stringify(text)} to ip -batch (newline, '#' or '\\')`, exitCode: -1 } };
      }
      if (this.dead) return { outputs, failure: { index, text: this.buffer || "ip exited", exitCode: this.exitCode ?? -1 } };
      command.forEach((word, i) => {
        if (i > 0 && word === "netns" && command[i + 1]) this.holds.add(command[i + 1]);
      });
      const cachedBefore = this.mayHaveCached(command);
      for (const name of interfaceNames(command)) this.names.add(name);
      if (command[1] === "show" && !command.includes("dev")) this.dumped = true;
      const own = ++this.line;
      const sentinel = ++this.line;
      const chunk = await new Promise<Chunk>((done) => {
        const timer = setTimeout(() => {
          this.finish({ text: this.buffer, timedOut: true });
          this.child.kill("SIGKILL");
        }, TIMEOUT_MS);
        this.waiting = { line: sentinel, done, timer };
        this.child.stdin.write(`${text}\n${SENTINEL}\n`);
        this.pump();
      });
      if (process.env.NSLAB_DEBUG_IP) process.stderr.write(`[ip ${this.key.replace("\0", " ")}] ${own}: ${text}\n${chunk.text}${chunk.exited !== undefined ? `(exited ${chunk.exited})\n` : ""}`);
      if (chunk.exited !== undefined || chunk.timedOut) {
        const text = chunk.timedOut ? `timed out after ${TIMEOUT_MS} ms` : chunk.text.replace(SENTINEL_ECHO, "");
        return { outputs, failure: { index, text, exitCode: chunk.exited ?? -1, timedOut: chunk.timedOut } };
      }
      const failed = (text: string) => ({ outputs, failure: { index, text, exitCode: 1, stale: cachedBefore && LOOKUP_FAILED.test(text) } });
      const ownFailure = `Command failed -:${own}\n`;
      if (chunk.text.includes(ownFailure)) return failed(chunk.text.replace(ownFailure, ""));
      // A show of a cached name whose interface is gone does not count as failed: it
      // prints the kernel's error and an empty list, or just [{}]. Either is a failure.
      if (LOOKUP_FAILED.test(chunk.text)) return failed(chunk.text);
      const dev = command.indexOf("dev");
      if (command[1] === "show" && dev > 0 && chunk.text.trim() === "[{}]") return failed(`Device "${command[dev + 1]}" does not exist.\n`);
      outputs.push(chunk.text);
    }
    return { outputs };
  }

  /** Whether ip may hold a cached index for a name the command uses. */
  private mayHaveCached(command: string[]): boolean {
    return this.dumped || interfaceNames(command).some((name) => this.names.has(name));
  }

  /** Hands the waiting command everything up to its sentinel's "Command failed" line. */
  private pump(): void {
    if (!this.waiting) return;
    const marker = `Command failed -:${this.waiting.line}\n`;
    const at = this.buffer.indexOf(marker, Math.max(0, this.searched - marker.length));
    if (at < 0) {
      this.searched = this.buffer.length;
      return;
    }
    let text = this.buffer.slice(0, at);
    this.buffer = this.buffer.slice(at + marker.length);
    this.searched = 0;
    const echo = text.lastIndexOf(SENTINEL_ECHO);
    if (echo >= 0) text = text.slice(0, echo) + text.slice(echo + SENTINEL_ECHO.length);
    this.finish({ text });
  }

  private finish(chunk: Chunk): void {
    const waiting = this.waiting;
    if (!waiting) return;
    this.waiting = undefined;
    clearTimeout(waiting.timer);
    if (chunk.exited !== undefined || chunk.timedOut) this.buffer = "";
    this.searched = 0;
    waiting.done(chunk);
  }

  /** A session at rest must not keep the process alive; one at work must. */
  private setRef(on: boolean): void {
    for (const handle of [this.child, this.child.stdin, this.child.stdout] as { ref(): void; unref(): void }[]) {
      if (on) handle.ref();
      else handle.unref();
    }
  }

  /** Ends the session once queued work is done; resolves when ip has exited. */
  close(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.onGone(this);
    void this.tail.then(() => this.child.stdin.end());
    return this.exited;
  }
}

const sessions = new Map<string, IpSession>();

function forget(session: IpSession): void {
  if (sessions.get(session.key) === session) sessions.delete(session.key);
}

function session(netns: string | undefined, family: "-4" | "-6" | undefined): IpSession {
  const key = `${netns ?? ""}\0${family ?? ""}`;
  const id = identity(netns);
  let found = sessions.get(key);
  if (found && (found.dead || found.identity !== id || Date.now() - found.born > MAX_AGE_MS)) {
    void found.close();
    found = undefined;
  }
  if (!found) {
    if (sessions.size >= MAX_SESSIONS) {
      const idle = [...sessions.values()].filter((s) => s.idle).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (idle) void idle.close();
    }
    const ip = ["ip", ...(family ? [family] : []), "-force", "-json", "-details", "-batch", "-"];
    // nsenter rather than `ip -n`: ip -n also unshares a mount namespace (to remount
    // /sys), a copy of every mount including each /run/netns/* bind mount, to which
    // every later `ip netns add` and delete then propagates. With a hundred sessions
    // alive that made each namespace cost more than the one before (N=300 spent 4.5 s
    // in ip). nslab's ip commands use netlink only, not /sys.
    const argv = netns === undefined ? ip : ["nsenter", `--net=${NETNS_DIR}/${netns}`, "--", ...ip];
    found = new IpSession(key, id, argv, forget);
    sessions.set(key, found);
  }
  return found;
}

/**
 * Runs `ip [-n NS] [FAMILY] COMMAND` for each command, in order, in the namespace's
 * session, stopping at the first failure.
 */
export async function runIp(commands: string[][], netns: string | undefined, family?: "-4" | "-6"): Promise<SessionResult> {
  const first = session(netns, family);
  let result = await first.run(commands);
  if (result.failure?.stale) {
    // Perhaps a stale name in ip's cache: once more, from the failed command on, in a
    // fresh session.
    void first.close();
    const from = result.failure.index;
    const retry = await session(netns, family).run(commands.slice(from));
    result = {
      outputs: [...result.outputs, ...retry.outputs],
      failure: retry.failure && { ...retry.failure, index: retry.failure.index + from },
    };
  }
  return result;
}

/**
 * Closes the sessions inside `netns`, and those that named it in a command (ip keeps
 * such a namespace open), and waits until their processes have exited.
 */
export async function closeSessions(netns: string): Promise<void> {
  const prefix = `${netns}\0`;
  await Promise.all([...sessions.values()].filter((s) => s.key.startsWith(prefix) || s.holds.has(netns)).map((s) => s.close()));
}

/** How many sessions are open (for tests). */
export function openSessions(): number {
  return sessions.size;
}
