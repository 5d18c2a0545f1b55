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
 *   and discards the session; commands queued behind it in that session never ran, and
 *   run in a fresh one.
 *
 * Starting: sessions are not spawned by this process but by a small shell, the
 * launcher (one per provider process). Node.js spawns by fork(), whose cost grows with
 * the parent's memory: the provider, with @pulumi/pulumi loaded, spent 3 to 4 ms of its
 * only thread per session (page tables copied, then its own pages faulted back in). The
 * launcher forks from a process of a few hundred KiB instead. Each session gets two
 * FIFOs, which both sides open (this process opens them non-blocking, so it never
 * waits) and this process then unlinks; the launcher reports ip's pid and exit status.
 * The FIFOs live in a private directory that the launcher removes when it ends, which it
 * does when this process closes its stdin (or dies).
 *
 * Sessions are on this machine only: on another host, kernel.ts sends the commands of
 * an exchange as one request to the host's long-lived shells instead (ssh.ts).
 */
import { ChildProcessByStdio, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import type { Readable, Writable } from "node:stream";
import { limit } from "./limits";

const SENTINEL = "nslab-sync";
const SENTINEL_ECHO = `Object "${SENTINEL}" is unknown, try "ip help".\n`;

/** A session without work for this long closes (NSLAB_IP_IDLE_MS, default 10 s). */
const IDLE_MS = limit("NSLAB_IP_IDLE_MS", 10_000);
/** A session this old is replaced at its next use (NSLAB_IP_MAX_AGE_MS, default 60 s). */
const MAX_AGE_MS = limit("NSLAB_IP_MAX_AGE_MS", 60_000);
/** What an open session costs: `ip` (about 258 KiB private) and the subshell waiting for it. */
export const SESSION_KIB = 340;

/**
 * The default cap on open sessions, from what the machine has when the provider starts:
 * as many as 5 % of the available memory holds (SESSION_KIB each) and a quarter of the
 * open-file limit allows (the provider holds two FIFOs per session), between 64 and
 * 4096. Recycling sessions is what makes big labs slow (a lab of N namespaces touches
 * each of them in several waves of the engine, so a cap below N restarts most sessions
 * in every wave): 1000 namespaces came up in 29.7 s with a cap of 512, in 18.6 s without
 * recycling. On a 24 GiB machine the cap is about 3400.
 */
export function defaultMaxSessions(availableBytes: number, openFiles: number): number {
  const byMemory = Math.floor((availableBytes * 0.05) / (SESSION_KIB * 1024));
  const byFiles = Math.floor(openFiles / 4);
  return Math.max(64, Math.min(4096, byMemory, byFiles));
}

/** The soft limit on open files of this process (/proc/self/limits), or 1024. */
function openFileLimit(): number {
  try {
    const line = fs.readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
    if (soft === "unlimited") return Number.MAX_SAFE_INTEGER;
    return soft && /^[0-9]+$/.test(soft) ? Number(soft) : 1024;
  } catch {
    return 1024;
  }
}

/** At most this many sessions stay open (NSLAB_IP_MAX_SESSIONS, default {@link defaultMaxSessions}). */
const MAX_SESSIONS = limit("NSLAB_IP_MAX_SESSIONS", defaultMaxSessions(os.freemem(), openFileLimit()));
/** A command that takes longer fails and its ip is killed (NSLAB_IP_TIMEOUT_MS, default 30 s). */
const TIMEOUT_MS = limit("NSLAB_IP_TIMEOUT_MS", 30_000);
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
    /** None of the commands was written: the session had ended, or been discarded after
     * a timeout, while they waited for their turn in it. */
    unsent?: boolean;
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

/**
 * The launcher's script (dash or any POSIX sh). Reads "ID NETNS FAMILY" lines ("-" for
 * none) and answers, one line each, "made ID N SUBSHELL" (FIFOs N.i and N.o are ready, and the
 * subshell that will start ip is waiting for their other ends), "open ID PID" (ip runs
 * with them as stdin and stdout+stderr), "exit ID STATUS", or "fail ID".
 * Answers from the background subshells share one pipe; each is a single short write,
 * so lines stay whole.
 *
 * Per session it forks twice (a subshell, which waits for ip to report its exit status,
 * 127 meaning not installed; and ip's own process) and executes nsenter and ip: FIFOs
 * are made 16 pairs per mkfifo, and the subshell is no new shell. The subshell holds no
 * end of the FIFOs once ip has them, so ip's exit is also seen as the end of its output.
 * Subshells do not run the EXIT trap.
 *
 * The directory is named after the launcher's pid. The launcher removes it when it ends
 * (its stdin closed, or a signal it can trap); one killed outright (SIGKILL) leaves it
 * behind, and the next launcher removes every such directory whose launcher is gone.
 *
 * The launcher leads a process group of its own (spawned detached), which its sessions
 * (subshells, nsenter, ip) are in: when it ends it stops that whole group, so no ip
 * outlives it, not even one stuck in a command that never reads its stdin again. Its
 * stdin closes when this process ends, however it ends (a stop of this process's own
 * group, as the engine may do, does not reach it).
 */
const LAUNCHER_SCRIPT = `
tmp=\${TMPDIR:-/tmp}
for old in "$tmp"/nslab-ip.*.*; do
  pid=\${old#"$tmp"/nslab-ip.}; pid=\${pid%%.*}
  case $pid in ''|*[!0-9]*) continue ;; esac
  [ -d "$old" ] && [ ! -d "/proc/$pid" ] && rm -rf "$old"
done
dir=$(mktemp -d "$tmp/nslab-ip.$$.XXXXXX") || { echo "nodir $tmp"; exit 1; }
trap 'rm -rf "$dir"; trap "" TERM; kill -TERM 0 2>/dev/null' EXIT
trap 'exit 1' HUP INT TERM PIPE
echo "dir $dir"
made=0 used=0
while read -r id ns fam; do
  if [ "$used" -ge "$made" ]; then
    set --; j=$made
    while [ "$j" -lt $((made + 16)) ]; do j=$((j + 1)); set -- "$@" "$dir/$j.i" "$dir/$j.o"; done
    if ! mkfifo "$@"; then rm -f "$@"; echo "fail $id"; continue; fi
    made=$j
  fi
  used=$((used + 1)); f=$dir/$used
  if [ "$ns" = - ]; then set -- ip; else set -- nsenter "--net=${NETNS_DIR}/$ns" -- ip; fi
  if [ "$fam" != - ]; then set -- "$@" "$fam"; fi
  (
    exec 4<"$f.i" 5>"$f.o"
    "$@" -force -json -details -batch - <&4 >&5 2>&5 4<&- 5>&- &
    exec 4<&- 5>&-
    echo "open $id $!"
    wait $!
    echo "exit $id $?"
  ) &
  echo "made $id $used $!"
done
`;

interface Started {
  input: net.Socket;
  output: net.Socket;
  pid: number;
  /** Where its FIFOs were (DIR/N.i, DIR/N.o: unlinked once open). */
  fifo: string;
}

/** A promise with its settlers. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: Error) => void } {
  let resolve!: (value: T) => void, reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined); // rejections are seen where it is awaited
  return { promise, resolve, reject };
}

interface Launch {
  opened?: boolean;
  /** The FIFOs' number (DIR/N.i and DIR/N.o) and the pid of the subshell that opens them. */
  made: ReturnType<typeof deferred<{ fifo: string; subshell: number }>>;
  open: ReturnType<typeof deferred<number>>;
  onExit: (status: number) => void;
}

class Launcher {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly dir = deferred<string>();
  private readonly launches = new Map<string, Launch>();
  private buffer = "";
  private next = 0;
  private pending = 0;
  dead = false;

  constructor() {
    this.child = spawn("sh", ["-c", LAUNCHER_SCRIPT], { stdio: ["pipe", "pipe", "ignore"], env: { ...process.env, LC_ALL: "C" }, detached: true });
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (data: string) => {
      this.buffer += data;
      let end: number;
      while ((end = this.buffer.indexOf("\n")) >= 0) {
        this.answer(this.buffer.slice(0, end).split(" "));
        this.buffer = this.buffer.slice(end + 1);
      }
    });
    this.child.stdin.on("error", () => undefined); // seen through "close"
    this.child.once("error", () => undefined);
    // The launcher may go before the sessions it started: those keep its stdout open
    // and still report their exit there.
    this.child.once("exit", () => {
      this.gone();
      const gone = new LauncherGone();
      this.dir.reject(gone);
      for (const [id, launch] of this.launches) if (!launch.opened) this.fail(id, launch, gone);
    });
    this.child.stdout.once("close", () => {
      this.gone();
      for (const [id, launch] of this.launches) this.fail(id, launch, new LauncherGone());
    });
    this.setRef();
  }

  /** The FIFO directory, once the launcher has made it. */
  dirName?: string;

  get pid(): number | undefined {
    return this.child.pid;
  }

  private answer([word, id, value, extra]: string[]): void {
    if (word === "dir") {
      this.dirName = id;
      return this.dir.resolve(id);
    }
    if (word === "nodir") return this.dir.reject(new Error(`the ip launcher could not make a directory for its FIFOs in ${id}`));
    const launch = this.launches.get(id);
    if (!launch) return;
    if (word === "made") launch.made.resolve({ fifo: value, subshell: Number(extra) });
    else if (word === "open") {
      launch.opened = true;
      launch.open.resolve(Number(value));
    } else if (word === "exit") {
      this.launches.delete(id);
      launch.onExit(Number(value));
    } else if (word === "fail") this.fail(id, launch, new Error("the ip launcher could not make its FIFOs"));
  }

  /** No more sessions from this one: the next start gets a new launcher. */
  private gone(): void {
    this.dead = true;
    if (launcher === this) launcher = undefined;
  }

  private fail(id: string, launch: Launch, err: Error): void {
    this.launches.delete(id);
    launch.made.reject(err);
    launch.open.reject(err);
    // A session that never opened hears of it from start(), which rejects.
    if (launch.opened) launch.onExit(-1);
  }

  /**
   * Gives up a session whose FIFOs the provider could not open: stops the subshell
   * waiting for them (only if it still is the launcher's child) and removes the pair.
   */
  private abandon(id: string, path: string, subshell: number): void {
    this.launches.delete(id);
    try {
      const stat = fs.readFileSync(`/proc/${subshell}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent === this.child.pid) process.kill(subshell, "SIGKILL");
    } catch {
      // gone already
    }
    fs.rmSync(`${path}.i`, { force: true });
    fs.rmSync(`${path}.o`, { force: true });
  }

  /** Keeps this process alive while a session is being started, not otherwise. */
  private setRef(): void {
    for (const handle of [this.child, this.child.stdin, this.child.stdout] as { ref(): void; unref(): void }[]) {
      if (this.pending > 0) handle.ref();
      else handle.unref();
    }
  }

  /**
   * Starts `[nsenter --net=NETNS_DIR/NETNS --] ip [FAMILY] -force -json -details -batch -`.
   * `onExit` gets ip's exit status (-1 when it cannot be known), once.
   */
  async start(netns: string | undefined, family: string | undefined, onExit: (status: number) => void): Promise<Started> {
    const id = String(++this.next);
    const launch: Launch = { made: deferred(), open: deferred(), onExit };
    this.launches.set(id, launch);
    this.pending++;
    this.setRef();
    const fds: number[] = [];
    let made: { path: string; subshell: number } | undefined;
    try {
      const dir = await this.dir.promise;
      this.child.stdin.write(`${id} ${netns ?? "-"} ${family ?? "-"}\n`);
      const { fifo, subshell } = await launch.made.promise;
      // Non-blocking opens never wait for the other side. ip's stdin is opened read-write
      // here: a FIFO opened for writing alone fails until its reader has it open.
      const path = `${dir}/${fifo}`;
      made = { path, subshell };
      fds.push(fs.openSync(`${path}.i`, fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
      fds.push(fs.openSync(`${path}.o`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
      made = undefined; // the subshell can go on now
      const pid = await launch.open.promise;
      fs.rmSync(`${path}.i`, { force: true });
      fs.rmSync(`${path}.o`, { force: true });
      const input = new net.Socket({ fd: fds[0], readable: false, writable: true });
      const output = new net.Socket({ fd: fds[1], readable: true, writable: false });
      return { input, output, pid, fifo: path };
    } catch (err) {
      for (const fd of fds) fs.closeSync(fd);
      if (made) {
        // The FIFOs could not be opened (too many open files, say): the subshell would
        // wait for their other ends forever, and nobody else will use the pair.
        this.abandon(id, made.path, made.subshell);
        throw new Error(`could not open the FIFOs of an ip session: ${(err as Error).message}`);
      }
      throw err;
    } finally {
      this.pending--;
      if (!this.dead) this.setRef();
    }
  }
}

/** The launcher went (killed, say) before the session it was asked for had started. */
class LauncherGone extends Error {
  constructor() {
    super("the ip launcher (sh) exited");
  }
}

let launcher: Launcher | undefined;

function theLauncher(): Launcher {
  if (!launcher || launcher.dead) launcher = new Launcher();
  return launcher;
}

/**
 * Starts a session through the launcher, and once more through a new launcher should
 * that one go before the session had started (nothing was run for it yet, so trying
 * again is safe: a launcher killed just before it was asked is only noticed then).
 */
async function startSession(netns: string | undefined, family: string | undefined, onExit: (status: number) => void): Promise<Started> {
  try {
    return await theLauncher().start(netns, family, onExit);
  } catch (err) {
    if (!(err instanceof LauncherGone)) throw err;
    return theLauncher().start(netns, family, onExit);
  }
}

class IpSession {
  started?: Started;
  private readonly ready: Promise<void>;
  private buffer = "";
  /** How far `buffer` has been searched for the waiting command's end (big dumps). */
  private searched = 0;
  private line = 0;
  private waiting?: { line: number; done: (chunk: Chunk) => void; timer: NodeJS.Timeout };
  private tail: Promise<unknown> = Promise.resolve();
  private busy = 0;
  private idleTimer?: NodeJS.Timeout;
  private exitCode?: number;
  /** ip's exit status and the end of its output arrive on different pipes: both count. */
  private status?: number;
  private outputEnded = false;
  /** Timed out: its ip is being killed, nothing more is written to it. */
  private discarded = false;
  private readonly gone = deferred<void>();
  readonly exited = this.gone.promise;
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
    readonly netns: string | undefined,
    readonly family: string | undefined,
    /** 0, or the lane of a session that runs link deletes (see DELETE_LANES). */
    readonly lane: number,
    private readonly onGone: (session: IpSession) => void,
  ) {
    this.ready = startSession(netns, family, (status) => {
      this.status = status;
      this.settle();
    }).then(
      (started) => {
        this.started = started;
        started.input.on("error", () => undefined); // ip gone: seen through its exit
        started.output.setEncoding("utf8");
        started.output.on("data", (data: string) => {
          this.buffer += data;
          this.pump();
        });
        started.output.once("close", () => {
          this.outputEnded = true;
          this.settle();
          // Its status comes from the shell that waits for ip: should that shell be gone
          // too, do not wait for it forever.
          setTimeout(() => {
            this.status ??= -1;
            this.settle();
          }, 1000).unref();
        });
        this.setRef(this.busy > 0);
      },
      (err: Error) => {
        this.buffer = `nslab: could not start ip: ${err.message}\n`;
        this.outputEnded = true;
        this.status ??= -1;
        this.settle();
      },
    );
  }

  /** ip has exited once its status is known and its output is all read. */
  private settle(): void {
    if (this.exitCode !== undefined || this.status === undefined || !this.outputEnded) return;
    this.exitCode = this.status;
    this.finish({ text: this.buffer, exited: this.exitCode });
    this.onGone(this);
    this.started?.input.destroy();
    this.gone.resolve();
  }

  get dead(): boolean {
    return this.exitCode !== undefined;
  }

  get idle(): boolean {
    return this.busy === 0;
  }

  /** How many runs are queued here or running. */
  get load(): number {
    return this.busy;
  }

  /** Runs the commands in order, one at a time, stopping at the first failure. */
  run(commands: string[][]): Promise<SessionResult> {
    this.busy++;
    clearTimeout(this.idleTimer);
    this.setRef(true);
    const result = this.tail.then(() => this.ready).then(() => this.runNow(commands));
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
      if (this.dead || this.discarded) {
        return { outputs, failure: { index, text: this.buffer || "ip exited", exitCode: this.exitCode ?? -1, unsent: index === 0 } };
      }
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
          // Discarded now, not once ip's exit is reported: the next command must not
          // be written to the ip being killed.
          this.discarded = true;
          this.onGone(this);
          this.finish({ text: this.buffer, timedOut: true });
          try {
            if (this.started) process.kill(this.started.pid, "SIGKILL");
          } catch {
            // exited meanwhile
          }
        }, TIMEOUT_MS);
        this.waiting = { line: sentinel, done, timer };
        this.started?.input.write(`${text}\n${SENTINEL}\n`);
        this.pump();
      });
      if (process.env.NSLAB_DEBUG_IP) process.stderr.write(`[ip ${this.netns ?? "-"} ${this.family ?? ""}] ${own}: ${text}\n${chunk.text}${chunk.exited !== undefined ? `(exited ${chunk.exited})\n` : ""}`);
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
    if (!this.started) return; // while starting, the launcher keeps the process alive
    for (const handle of [this.started.input, this.started.output]) {
      if (on) handle.ref();
      else handle.unref();
    }
  }

  /** Ends the session once queued work is done; resolves when ip has exited. */
  close(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.onGone(this);
    // Queued work is done, so nothing is left to write: closing ip's stdin ends it. (A
    // FIFO has no half-close: end() would try shutdown(2), which only sockets have.)
    void this.tail.then(() => this.ready).then(() => this.started?.input.destroy());
    return this.exited;
  }
}

const sessions = new Map<string, IpSession>();

function forget(session: IpSession): void {
  if (sessions.get(session.key) === session) sessions.delete(session.key);
}

/**
 * Deleting a link makes the kernel wait for RCU grace periods before it answers (about
 * 16 ms for a veth, 37 ms for a bridge, in the sandbox), and the session can do nothing
 * else meanwhile: 100 veth deletes took 1.6 s through one ip and 0.14 s from 100 ip
 * processes at once, the kernel sharing grace periods among concurrent deletes. So link
 * deletes in one namespace (many veths whose `a` end is in the bridge's namespace, say)
 * run side by side in up to DELETE_LANES sessions of that namespace: the first idle one,
 * else a new one, else the least busy. Every other command keeps to lane 0, the
 * namespace's own session. Destroying the bench lab declared with each veth's `a` end on
 * the bridge (bench/profile.js --program lab-root-ends), N=300: 8.2 s in one session, 2.8 s in 16 (the lab
 * declared the other way round, whose deletes are spread anyway: 2.5 s). With 100 hosts
 * the veths went in 2.24 s in one session, 0.95 s in 4, 0.53 s in 8, 0.32 s in 16 and
 * 0.28 s in 32 (more than the engine runs at once, 32 in scripts/pulumi, cannot help).
 */
const DELETE_LANES = 16;

function isLinkDelete(commands: string[][]): boolean {
  return commands.length === 1 && commands[0][0] === "link" && commands[0][1] === "del";
}

const sessionKey = (netns: string | undefined, family: string | undefined, lane: number) => `${netns ?? ""}\0${family ?? ""}\0${lane}`;

/** The lane for a link delete in this namespace (see DELETE_LANES). */
function deleteLane(netns: string | undefined, family: "-4" | "-6" | undefined): number {
  let free: number | undefined;
  let leastBusy = { lane: 0, load: Infinity };
  for (let lane = 0; lane < DELETE_LANES; lane++) {
    const found = sessions.get(sessionKey(netns, family, lane));
    if (!found || found.dead) free ??= lane;
    else if (found.idle) return lane;
    else if (found.load < leastBusy.load) leastBusy = { lane, load: found.load };
  }
  return free ?? leastBusy.lane;
}

function session(netns: string | undefined, family: "-4" | "-6" | undefined, lane: number): IpSession {
  const key = sessionKey(netns, family, lane);
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
    // The launcher runs nsenter rather than `ip -n`: ip -n also unshares a mount
    // namespace (to remount /sys), a copy of every mount including each /run/netns/*
    // bind mount, to which every later `ip netns add` and delete then propagates. With a
    // hundred sessions alive that made each namespace cost more than the one before
    // (N=300 spent 4.5 s in ip). nslab's ip commands use netlink only, not /sys.
    found = new IpSession(key, id, netns, family, lane, forget);
    sessions.set(key, found);
  }
  return found;
}

/**
 * Runs `ip [-n NS] [FAMILY] COMMAND` for each command, in order, in the namespace's
 * session, stopping at the first failure.
 */
export async function runIp(commands: string[][], netns: string | undefined, family?: "-4" | "-6"): Promise<SessionResult> {
  if (netns !== undefined && !/^[^\s/]+$/.test(netns)) {
    // The launcher reads the name as one word of a line.
    return { outputs: [], failure: { index: 0, text: `nslab: refusing namespace name ${JSON.stringify(netns)} (empty, or has '/' or white space)`, exitCode: -1 } };
  }
  const lane = isLinkDelete(commands) ? deleteLane(netns, family) : 0;
  let current = session(netns, family, lane);
  let result = await current.run(commands);
  if (result.failure?.unsent) {
    // Queued behind a command that ended or hung this session's ip: none of these ran,
    // so they all run, once, in a fresh session.
    current = session(netns, family, lane);
    result = await current.run(commands);
  }
  if (result.failure?.stale) {
    // Perhaps a stale name in ip's cache: once more, from the failed command on, in a
    // fresh session.
    void current.close();
    const from = result.failure.index;
    const retry = await session(netns, family, lane).run(commands.slice(from));
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
  await Promise.all([...sessions.values()].filter((s) => s.netns === netns || s.holds.has(netns)).map((s) => s.close()));
}

/** How many sessions are open (for tests). */
export function openSessions(): number {
  return sessions.size;
}

/** The launcher's pid and FIFO directory, and each open session's lane and ip pid (for tests). */
export function inspectSessions(): { launcher?: { pid?: number; dir?: string }; sessions: { netns?: string; family?: string; lane: number; pid?: number; fifo?: string }[] } {
  return {
    launcher: launcher && { pid: launcher.pid, dir: launcher.dirName },
    sessions: [...sessions.values()].map((s) => ({ netns: s.netns, family: s.family, lane: s.lane, pid: s.started?.pid, fifo: s.started?.fifo })),
  };
}
