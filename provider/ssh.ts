/**
 * The SSH transport of the kernel door (kernel.ts): how a command reaches another host.
 * Every host gets one OpenSSH master connection per provider process (ControlMaster, a
 * socket in a private directory), and a few long-lived shells, each a channel
 * multiplexed over it: one key exchange and one authentication per host per run; then
 * each request (a command, or an exchange's ip commands together) is a line written to
 * a shell that is already there, and a fork per command on the host.
 *
 * Equivalent to:
 *   ssh -o ControlMaster=yes -o ControlPath=DIR/N -o ControlPersist=30 -N -f HOST   (once)
 *   ssh -o ControlMaster=auto -o ControlPath=DIR/N ... HOST -- 'env LC_ALL=C ip ...'
 *   ssh -o ControlPath=DIR/N -O exit HOST                                            (at exit)
 *
 * - Host keys are checked (StrictHostKeyChecking=yes, against `knownHostsFile` or
 *   ssh's default), never accepted on first sight; BatchMode=yes means no prompt ever
 *   waits for a password or a passphrase that nobody will type.
 * - ConnectTimeout bounds an unreachable host; the master is started once, before any
 *   command, so a refused key or a stopped sshd fails the first operation on that host
 *   at once, with ssh's own reason and the host in the message.
 * - The master ends with the provider process: an exit handler asks it to exit, and
 *   should the process be killed outright (no handler runs), a watcher does, at once: a
 *   shell whose stdin is a pipe from this process, which reads EOF when the process is
 *   gone, asks every master in the control directory to exit and removes the directory.
 *   ControlPersist (CONTROL_PERSIST_S idle) is the last resort, should the watcher be
 *   killed too.
 * - ssh hands the remote side one string, which the remote user's shell splits: every
 *   argument is quoted in one place (host.ts shellQuote).
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NslabError } from "./errors";
import { HostArgs, hostKey, hostLabel, remoteCommand } from "./host";
import { limit } from "./limits";

/** Longest wait for a TCP connection to a host's sshd (NSLAB_SSH_CONNECT_TIMEOUT_S, default 5). */
const CONNECT_TIMEOUT_S = limit("NSLAB_SSH_CONNECT_TIMEOUT_S", 5);
/** A master with no channel for this long exits (bounds one left by a killed provider). */
const CONTROL_PERSIST_S = 30;
/** Longest wait for a master to answer an exit request (the watcher's and closeMasters'). */
const EXIT_WAIT_S = 2;
/** Keepalives: a host that stops answering is given up after 3 x 5 s. */
const SERVER_ALIVE_S = 5;

/** This process's private directory for control sockets (0700, removed at exit). */
let controlDir: string | undefined;
/** The watcher that closes this process's masters and removes controlDir when it is gone. */
let watcher: ChildProcess | undefined;
/** Whether this process's exit and signal handlers are installed (once per process). */
let handlersInstalled = false;
/** Masters started by this process (names their log files). */
let masterStarts = 0;
/** Per host: its control socket, and its master's start, shared by every command that needs it. */
const masters = new Map<string, { host: HostArgs; socket: string; ready: Promise<void>; up?: boolean }>();
/**
 * Per host: the control socket's name in the directory (short: a socket's path has at
 * most 107 bytes, and a master first binds its ControlPath plus "." and 16 characters).
 */
const sockets = new Map<string, string>();

function socketOf(host: HostArgs): string {
  const key = hostKey(host);
  let socket = sockets.get(key);
  if (socket === undefined) sockets.set(key, (socket = `${dir()}/${sockets.size + 1}`));
  return socket;
}

/**
 * Where control directories go: the temp folder, unless its path is too long for the
 * sockets in it (FOLDER/nslab-ssh-PID-XXXXXX/N is at most FOLDER + 29 bytes, and the
 * master binds that plus 17 first: 107 at most), then /tmp.
 */
export function controlBase(): string {
  const tmp = os.tmpdir();
  return Buffer.byteLength(tmp) <= 60 ? tmp : "/tmp";
}

function dir(): string {
  if (controlDir === undefined) {
    sweepControlDirs();
    // mkdtemp makes it 0700: nobody else can reach the sockets (they are logged-in shells).
    // The pid in the name lets a later process tell a dead one's directory (sweepControlDirs).
    controlDir = fs.mkdtempSync(path.join(controlBase(), `nslab-ssh-${process.pid}-`));
    watcher = startWatcher(controlDir);
    if (!handlersInstalled) {
      handlersInstalled = true;
      process.once("exit", closeMasters);
      // The engine stops plugins with a signal: go through the exit handler then.
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => process.exit(128 + os.constants.signals[signal]));
    }
  }
  return controlDir;
}

/**
 * The watcher of a control directory: waits for EOF on its stdin (this process ended, or
 * closeMasters closed it), then renames the directory (DIR.closing: a master still
 * logging in then cannot put its socket there, and exits), asks each master whose socket
 * is in it to exit, and removes it. Its own process group, so that a Ctrl-C meant for the
 * program does not end it before it has done that; unreferenced, so that it never keeps
 * this process alive.
 * Equivalent to: sh -c 'read _; mv DIR DIR.closing || exit; for s in DIR.closing/*; do
 *   [ -S $s ] && timeout 2 ssh -F /dev/null -o BatchMode=yes -o ControlPath=$s -O exit nslab;
 *   done; rm -rf DIR.closing'
 */
function startWatcher(dir: string): ChildProcess | undefined {
  // A master that does not answer (stopped, or stuck) holds its request for 2 s at most
  // (timeout(1), where there is one), so the folder still goes at once.
  const script = `read _; mv "$1" "$1.closing" 2>/dev/null || exit 0; t=; command -v timeout >/dev/null 2>&1 && t="timeout ${EXIT_WAIT_S}"; for s in "$1.closing"/*; do if [ -S "$s" ]; then $t ssh -F /dev/null -o BatchMode=yes -o ControlPath="$s" -O exit nslab >/dev/null 2>&1; fi; done; rm -rf "$1.closing"`;
  try {
    const child = spawn("sh", ["-c", script, "nslab-ssh-watcher", dir], { stdio: ["pipe", "ignore", "ignore"], detached: true });
    child.on("error", () => undefined);
    child.stdin?.on("error", () => undefined);
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  } catch {
    // No watcher: the exit handler and ControlPersist still end the masters.
    return undefined;
  }
}

/** The options every ssh invocation for `host` takes (before the destination). */
function options(host: HostArgs, master: "auto" | "yes" | undefined): string[] {
  const o = (setting: string) => ["-o", setting];
  return [
    ...o("BatchMode=yes"),
    ...o("StrictHostKeyChecking=yes"),
    ...(host.knownHostsFile ? [...o(`UserKnownHostsFile=${host.knownHostsFile}`), ...o("GlobalKnownHostsFile=/dev/null")] : []),
    ...(host.identityFile ? ["-i", host.identityFile, ...o("IdentitiesOnly=yes")] : []),
    ...o(`ConnectTimeout=${CONNECT_TIMEOUT_S}`),
    ...o(`ServerAliveInterval=${SERVER_ALIVE_S}`),
    ...o("ServerAliveCountMax=3"),
    ...o(`ControlPath=${socketOf(host)}`),
    ...(master ? [...o(`ControlMaster=${master}`), ...o(`ControlPersist=${CONTROL_PERSIST_S}`)] : []),
    ...o("LogLevel=ERROR"),
    ...o("ClearAllForwardings=yes"),
    ...(host.port !== undefined ? ["-p", String(host.port)] : []),
    "-T",
  ];
}

/**
 * The ssh command that runs `argv` on `host` (with LC_ALL=C, as locally), through the
 * host's master connection (or, should it have gone, a new one).
 * Equivalent to: ssh OPTIONS -- HOST 'env LC_ALL=C ARGV...'
 */
export function sshCommand(host: HostArgs, argv: string[]): [string, string[]] {
  return ["ssh", [...options(host, "auto"), "--", host.ssh, remoteCommand(["env", "LC_ALL=C", ...argv])]];
}

/** What ssh says when it (not the remote command) failed: its exit status is 255. */
const SSH_FAILED = /^ssh: |Host key verification failed|Permission denied \(|Connection (?:refused|timed out|closed)|Connection to \S+ closed|No route to host|Could not resolve|kex_exchange_identification|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known|Control socket connect|Broken pipe|^mux(?:client|_client_\w+):/m;

/**
 * What the commands a remote shell was running or held get as their stderr when it ends
 * under them: what ssh said or, when it said nothing and exited 255 (its own failure:
 * sshd stopped mid-run), that the connection ended, in words sshFailed knows, so that
 * they fail as the commands sent after it do ("cannot reach HOST over SSH ... Check that
 * sshd runs"), not as a command's own failure.
 */
export function shellEnded(host: HostArgs, code: number, stderr: string): string {
  if (stderr.trim()) return stderr;
  return code === 255 ? `ssh: the connection to ${hostLabel(host)} ended (its sshd stopped, the machine restarted, or the network dropped)` : `the shell on ${hostLabel(host)} exited (${code})`;
}

/** True when a command run through ssh failed in ssh itself. */
export function sshFailed(exitCode: number | undefined, stderr: string): boolean {
  return exitCode === 255 && SSH_FAILED.test(stderr);
}

/** Why FILE cannot be read here ("no such file", "permission denied", ...), or "" when it can. */
function unreadable(file: string): string {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return "";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(code ?? err);
  }
}

/** FILE's mode in octal when it is this user's and group or others may access it (ssh refuses such a private key of its user's), or "". */
function tooOpen(file: string): string {
  try {
    const st = fs.statSync(file);
    const mode = st.mode & 0o777;
    return st.uid === process.getuid?.() && mode & 0o077 ? mode.toString(8).padStart(4, "0") : "";
  } catch {
    return "";
  }
}

/** The error for ssh's own failure: names the host, what ssh said, and what to check. */
export function sshError(host: HostArgs, subject: string, stderr: string): NslabError {
  const label = hostLabel(host);
  // ssh's talk with its own master connection ("muxclient: master hello exchange
  // failed", "mux_client_request_session: read from master failed") says only that the
  // connection went: said so in words, unless ssh said more.
  const lines = stderr.split("\n").map((line) => line.trim()).filter(Boolean);
  const plain = lines.filter((line) => !/^mux(?:client|_client_\w+):/.test(line));
  const said =
    (plain.length ? plain : lines.length ? [`the connection to ${label} ended (its sshd stopped, the machine restarted, or the network dropped)`] : [])
      .slice(-2)
      .map((line) => line.replace(/\.+$/, ""))
      .join("; ") || "ssh exited 255";
  let fix = `Check that sshd runs on ${label} and that this machine reaches it.`;
  if (/Host key verification failed|No .* host key is known|IDENTIFICATION HAS CHANGED/.test(stderr)) {
    fix = `Its host key is not in ${host.knownHostsFile ?? "~/.ssh/known_hosts"} (or differs): add the right key there (ssh-keyscan, checked by hand); nslab never accepts an unknown key.`;
  } else if (/Permission denied/.test(stderr)) {
    fix = `The key ${host.identityFile ?? "(ssh's default)"} was refused: add its public half to the user's authorized_keys on ${label}. (A refresh, destroy or drift check uses the key the stack's state recorded: if the program now names another one, authorise this one again until a plain pulumi up has recorded the new one.)`;
    const file = host.identityFile;
    // ssh goes on without a key it cannot read (saying so only below LogLevel=ERROR), or
    // will not use, and the host refuses: the file is what to fix.
    const cannot = file ? unreadable(file) : "";
    const open = file && !cannot ? tooOpen(file) || (/UNPROTECTED PRIVATE KEY FILE|are too open/.test(stderr) ? "too open" : "") : "";
    if (cannot) fix = `identityFile ${file} cannot be read on this machine (the one that runs the engine: ${cannot}): give the path of the private key there.`;
    else if (open) fix = `identityFile ${file} is open to group or others (mode ${open}), and ssh will not use its own private key like that: chmod 600 it.`;
  }
  const kind = /Permission denied|Host key verification failed/.test(stderr) ? "Permission" : "CommandFailed";
  const where = subject.includes(label) ? subject : `${subject} on ${label}`;
  return new NslabError(kind, `${where}: cannot reach ${label} over SSH: ${said}. ${fix}`, { stderr, exitCode: 255 });
}

/**
 * Removes the control directories that provider processes killed outright left in the
 * temp folder when their watcher could not remove them (it was killed too): a directory
 * named by nslab (nslab-ssh-PID-XXXXXX, or with the watcher's .closing) and this user's,
 * whose process is gone, unchanged for `quietMs` (default 2 x CONTROL_PERSIST_S: a
 * process in another pid namespace sharing this folder may be alive), and that holds
 * nothing but master logs (a master, which outlives its process by at most
 * CONTROL_PERSIST_S, removes its socket when it ends; while it is there the directory is
 * left for a later sweep). A directory whose pid was reused by a live process is left too.
 * Returns the directories removed.
 */
export function sweepControlDirs(tmp = controlBase(), quietMs = 2 * CONTROL_PERSIST_S * 1000): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = /^nslab-ssh-(\d+)-[A-Za-z0-9]{6}(?:\.closing)?$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    const d = path.join(tmp, name);
    try {
      const st = fs.lstatSync(d);
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue;
      if (Date.now() - st.mtimeMs < quietMs || pidExists(Number(m[1]))) continue;
      const entries = fs.readdirSync(d, { withFileTypes: true });
      if (entries.some((e) => !e.isFile() || !/^master-\d+\.log$/.test(e.name))) continue;
      fs.rmSync(d, { recursive: true, force: true });
      removed.push(d);
    } catch {
      // Gone meanwhile (another process's sweep), or not ours to read.
    }
  }
  return removed;
}

/** Whether a process with this pid exists on this machine (any user's: EPERM says it does; a zombie does). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Makes sure `host` has its master connection, starting it once (all callers share the
 * start). Fails fast, with ssh's reason, when the host cannot be reached or refuses us;
 * a later call tries again.
 * Equivalent to: ssh -o ControlMaster=yes -o ControlPersist=30 -N -f HOST
 */
export function ensureMaster(host: HostArgs, subject: string): Promise<void> {
  const key = hostKey(host);
  const known = masters.get(key);
  // A master removes its socket when it ends (the host went away, ControlPersist): then
  // it is started again, and fails fast again if the host is gone.
  // Each caller that waits for the same master gets the failure in its own name: the
  // resource that asked first is not the one that failed for everyone else.
  const failure = (err: unknown) => {
    throw err instanceof MasterFailure ? err.told(subject) : err;
  };
  if (known && (!known.up || fs.existsSync(known.socket))) return known.ready.catch(failure);
  const entry = { host, socket: socketOf(host), ready: startMaster(host), up: false };
  masters.set(key, entry);
  entry.ready.then(
    () => (entry.up = true),
    () => masters.get(key) === entry && masters.delete(key),
  );
  return entry.ready.catch(failure);
}

/** Why a master could not start, told in the name of whichever operation waited for it. */
class MasterFailure extends Error {
  constructor(readonly told: (subject: string) => NslabError) {
    super("the SSH master connection could not start");
  }
}

async function startMaster(host: HostArgs): Promise<void> {
  const log = path.join(dir(), `master-${++masterStarts}.log`);
  // -f: ssh goes to the background once authenticated (its exit status says whether it
  // was); its messages go to a file (-E), since the background master keeps whatever
  // stderr it was given open.
  const args = [...options(host, "yes"), "-E", log, "-N", "-f", "--", host.ssh];
  const code = await new Promise<number>((resolve) => {
    const child = spawn("ssh", args, { stdio: "ignore", env: { ...process.env, LC_ALL: "C" } });
    child.once("error", (err) => {
      fs.appendFileSync(log, `ssh: ${(err as Error).message}\n`);
      resolve(-1);
    });
    child.once("exit", (status) => resolve(status ?? -1));
  });
  if (code === 0) return;
  let said = "";
  try {
    said = fs.readFileSync(log, "utf8");
  } catch {
    // no log: ssh did not even start
  }
  if (code === -1 && /ENOENT/.test(said)) throw new MasterFailure((subject) => new NslabError("CommandFailed", `${subject}: ssh is not installed on this machine (Debian package openssh-client).`));
  throw new MasterFailure((subject) => sshError(host, subject, said || `ssh exited ${code}`));
}

/**
 * Asks every master of this process to exit and removes the socket directory. Runs at
 * process exit (synchronously: nothing asynchronous runs then).
 * Equivalent to: ssh -o ControlPath=DIR/N -O exit HOST
 */
export function closeMasters(): void {
  for (const { host } of masters.values()) {
    spawnSync("ssh", [...options(host, undefined), "-O", "exit", "--", host.ssh], { stdio: "ignore", timeout: EXIT_WAIT_S * 1000 });
  }
  masters.clear();
  sockets.clear();
  shells.clear();
  if (controlDir !== undefined) fs.rmSync(controlDir, { recursive: true, force: true });
  controlDir = undefined;
  // Its directory is gone: the watcher reads EOF and ends.
  watcher?.stdin?.end();
  watcher = undefined;
}

/** This process's control directory and its watcher's pid, while there is one (for tests). */
export function controlState(): { dir: string; watcher: number | undefined } | undefined {
  return controlDir === undefined ? undefined : { dir: controlDir, watcher: watcher?.pid };
}

/** Hosts whose master was started by this process (for tests). */
export function openMasters(): string[] {
  return [...masters.values()].map((m) => hostLabel(m.host));
}

// ---- shells: one-off commands without a channel each ---------------------------------------

/** How one command run in a host's shell ended. */
export interface RemoteOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Shells kept open per host: requests to one host run side by side in up to this many (NSLAB_SSH_SHELLS, default 8). */
const SHELL_LANES = limit("NSLAB_SSH_SHELLS", 8);
/**
 * The remote loop: one command a line, each run by eval; stderr goes to a file of its own
 * (nslab-sh.PID.XXXXXX in the host's temp folder), removed when the loop ends: at the end
 * of its input, and also when a signal ends it (its channel gone while it writes:
 * SIGPIPE; SIGHUP, SIGTERM), which would otherwise skip the EXIT trap and leave the file.
 */
const SHELL_LOOP = `e=$(mktemp "\${TMPDIR:-/tmp}/nslab-sh.$$.XXXXXX") || exit 1; trap 'rm -f "$e"' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM; while IFS= read -r line; do eval "$line"; done`;
/** A shell without work for this long closes. */
const SHELL_IDLE_MS = 10_000;

interface ShellRequest {
  /** Shell text whose stderr goes to "$e" (built by remoteRun or remoteSequence). */
  command: string;
  /** Ends the request's output; unique in this process (see newMark). */
  mark: string;
  timeoutMs: number;
  done: (outcome: RemoteOutcome) => void;
  timer?: NodeJS.Timeout;
}

/** Marks are unique in the process, so a request can run in any shell of its host. */
const MARK_BASE = `nslab-${process.pid}-${Math.random().toString(36).slice(2, 8)}-`;
let marks = 0;
const newMark = () => `${MARK_BASE}${marks++}`;

/**
 * A long-lived `sh` on a host, over one channel of the host's master: one-off commands
 * (stat, a record's cat, nft, sysctl, tc) are written to it one at a time, so that each
 * costs a fork on the host instead of a new ssh process here and a new session there
 * (about 70 ms each on the test machines). After each command it prints a line with a
 * mark of the request's own and the exit status, then the command's stderr (kept in a
 * temporary file) and the mark again; a command's stdin is /dev/null, or its input
 * given as a quoted argument of the shell's own printf (no length limit, no exec).
 * A request is written when it reaches the front of the shell's queue, and its timeout
 * counts from then: a command that hangs gives the shell up (it is killed) and fails
 * that request only; those queued behind it were never written and go to another shell.
 * Equivalent to: ssh HOST 'exec env LC_ALL=C sh'  <<< 'ARGV... </dev/null 2>"$e"; printf ...'
 */
class RemoteShell {
  private readonly child;
  private buffer = "";
  private readonly queue: ShellRequest[] = [];
  private idleTimer?: NodeJS.Timeout;
  private stderr = "";
  dead = false;

  constructor(
    readonly host: HostArgs,
    /** The shell is going: `unsent` are requests it never wrote, for another shell. */
    private readonly onGone: (shell: RemoteShell, unsent: ShellRequest[]) => void,
  ) {
    const [command, args] = sshCommand(host, ["sh", "-c", SHELL_LOOP]);
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
    this.child.stdout.setEncoding("utf8").on("data", (text: string) => {
      this.buffer += text;
      this.pump();
    });
    this.child.stderr.setEncoding("utf8").on("data", (text: string) => (this.stderr = (this.stderr + text).slice(-4000)));
    this.child.stdin.on("error", () => undefined);
    this.child.once("error", () => this.end(-1));
    this.child.once("close", (code) => this.end(code ?? -1));
    this.setRef(false);
  }

  get load(): number {
    return this.queue.length;
  }

  /** Queues a request; it is written once those before it have ended. */
  enqueue(request: ShellRequest): void {
    requests++;
    clearTimeout(this.idleTimer);
    this.setRef(true);
    this.queue.push(request);
    if (this.queue.length === 1) this.send(request);
  }

  /** Writes the request at the front, and starts its timeout. */
  private send(request: ShellRequest): void {
    const line = `${request.command}; printf '\\n%s %s\\n' ${request.mark} "$?"; cat "$e"; printf '\\n%s.\\n' ${request.mark}`;
    // The shell is stuck in this command: give it up.
    request.timer = setTimeout(() => this.kill(), request.timeoutMs);
    this.child.stdin.write(`${encodeLine(line)}\n`);
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const { mark } = this.queue[0];
      const status = new RegExp(`\\n${mark} (\\d+)\\n`).exec(this.buffer);
      const end = `\n${mark}.\n`;
      const endAt = this.buffer.indexOf(end);
      if (!status || endAt < 0) return;
      const request = this.queue.shift()!;
      clearTimeout(request.timer);
      const stdout = this.buffer.slice(0, status.index);
      const stderr = this.buffer.slice(status.index + status[0].length, endAt);
      this.buffer = this.buffer.slice(endAt + end.length);
      request.done({ exitCode: Number(status[1]), stdout, stderr, timedOut: false });
      if (this.queue.length > 0) this.send(this.queue[0]);
    }
    if (this.queue.length === 0) {
      this.setRef(false);
      this.idleTimer = setTimeout(() => this.close(), SHELL_IDLE_MS);
      this.idleTimer.unref();
    }
  }

  /** The shell ended: every waiting command fails with what ssh said (255: ssh's own failure). */
  private end(code: number): void {
    if (this.dead) return;
    this.dead = true;
    this.onGone(this, []);
    for (const request of this.queue.splice(0)) {
      clearTimeout(request.timer);
      request.done({ exitCode: code === 0 ? -1 : code, stdout: "", stderr: shellEnded(this.host, code, this.stderr), timedOut: false });
    }
  }

  private kill(): void {
    const [stuck, ...unsent] = this.queue.splice(0);
    this.dead = true;
    this.onGone(this, unsent);
    this.child.kill("SIGKILL");
    if (stuck) {
      clearTimeout(stuck.timer);
      stuck.done({ exitCode: -1, stdout: "", stderr: "", timedOut: true });
    }
  }

  private setRef(on: boolean): void {
    for (const handle of [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as unknown as { ref(): void; unref(): void }[]) {
      if (on) handle.ref();
      else handle.unref();
    }
  }

  close(): void {
    clearTimeout(this.idleTimer);
    this.onGone(this, []);
    this.child.stdin.end();
  }
}

/**
 * The line the remote loop reads: `read -r` takes one line, then eval runs it. A
 * command (an nft script as input, say) may hold newlines: each is written as the
 * two characters \n inside a quoted printf argument instead, decoded there by printf's
 * %b. Lines without newlines pass as they are.
 */
function encodeLine(line: string): string {
  if (!line.includes("\n")) return line;
  return `eval "$(printf '%b' ${remoteCommand([line.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")])})"`;
}

const shells = new Map<string, RemoteShell[]>();
/** Requests written to hosts' shells by this process: each is a round trip (for tests and benchmarks). */
let requests = 0;

/** How many requests this process has sent to other hosts (each one round trip). */
export function remoteRequests(): number {
  return requests;
}

/**
 * One of `host`'s shells (the first idle one, else a new one up to SHELL_LANES, else
 * the least busy), after making sure of its master.
 */
async function shellFor(host: HostArgs, subject: string): Promise<RemoteShell> {
  await ensureMaster(host, subject);
  const key = hostKey(host);
  let lanes = shells.get(key);
  if (!lanes) shells.set(key, (lanes = []));
  let shell = lanes.find((s) => s.load === 0);
  if (!shell && lanes.length < SHELL_LANES) {
    shell = new RemoteShell(host, (gone, unsent) => {
      const list = shells.get(key);
      if (list) shells.set(key, list.filter((s) => s !== gone));
      for (const request of unsent) {
        requests--; // counted again where it runs
        shellFor(host, subject).then(
          (other) => other.enqueue(request),
          (err: Error) => request.done({ exitCode: 255, stdout: "", stderr: err.message, timedOut: false }),
        );
      }
    });
    lanes.push(shell);
  }
  return shell ?? [...lanes].sort((a, b) => a.load - b.load)[0];
}

/** Runs `command` (shell text, stderr to "$e") in one of `host`'s shells; `mark` ends its output. */
async function runInShell(host: HostArgs, command: string, mark: string, options: { timeoutMs: number; subject: string }): Promise<RemoteOutcome> {
  const shell = await shellFor(host, options.subject);
  return new Promise((done) => shell.enqueue({ command, mark, timeoutMs: options.timeoutMs, done }));
}

/** Runs `argv` on `host` in one of its shells, with `input` on its stdin if given. */
export async function remoteRun(host: HostArgs, argv: string[], options: { input?: string; timeoutMs: number; subject: string }): Promise<RemoteOutcome> {
  const { input } = options;
  const feed = input === undefined ? "" : `printf '%s' ${remoteCommand([input])} | `;
  return runInShell(host, `${feed}${remoteCommand(argv)} ${input === undefined ? "</dev/null" : ""} 2>"$e"`, newMark(), options);
}

/** How a sequence of commands ended on a host: the output of each that ran. */
export interface RemoteSequence {
  outputs: string[];
  /** The first command that failed (the ones after it did not run). */
  failure?: { index: number; exitCode: number; stderr: string; timedOut: boolean };
}

/**
 * Runs commands in order on `host` in one request to one of its shells (one round
 * trip, a fork per command there), stopping at the first that fails; the output of
 * each is told from the next by a line with the request's mark and the command's index.
 * Equivalent to: ssh HOST 'A && printf MARK:0 && B && printf MARK:1 ...'
 */
export async function remoteSequence(host: HostArgs, argvs: string[][], options: { timeoutMs: number; subject: string }): Promise<RemoteSequence> {
  const mark = newMark();
  const chain = argvs.map((argv, i) => `${remoteCommand(argv)} </dev/null 2>"$e" && printf '\\n%s\\n' ${mark}:${i}`).join(" && ");
  const r = await runInShell(host, `{ ${chain}; }`, mark, options);
  const pieces = r.stdout.split(new RegExp(`\\n${mark}:\\d+\\n`));
  // Each command that succeeded ended with its mark line: the last piece is the output
  // of the one that failed (or nothing, when all succeeded).
  const outputs = pieces.slice(0, -1);
  if (!r.timedOut && r.exitCode === 0 && outputs.length === argvs.length) return { outputs };
  return { outputs, failure: { index: outputs.length, exitCode: r.exitCode === 0 ? -1 : r.exitCode, stderr: r.stderr || pieces[pieces.length - 1], timedOut: r.timedOut } };
}
