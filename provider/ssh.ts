/**
 * The SSH transport of the kernel door (kernel.ts, ipsession.ts): how a command reaches
 * another host. Every host gets one OpenSSH master connection per provider process
 * (ControlMaster, a socket in a private directory), and every command, including the
 * long-lived `ip -batch` sessions, is a channel multiplexed over it: one key exchange
 * and one authentication per host per run, then a few milliseconds per command.
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
 * - The master ends with the provider process (an exit handler asks it to exit); should
 *   the process be killed outright, ControlPersist ends it after CONTROL_PERSIST_S idle.
 * - ssh hands the remote side one string, which the remote user's shell splits: every
 *   argument is quoted in one place (host.ts shellQuote).
 */
import { spawn, spawnSync } from "node:child_process";
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
/** Keepalives: a host that stops answering is given up after 3 x 5 s. */
const SERVER_ALIVE_S = 5;

/** This process's private directory for control sockets (0700, removed at exit). */
let controlDir: string | undefined;
/** Masters started by this process (names their log files). */
let masterStarts = 0;
/** Per host: its control socket, and its master's start, shared by every command that needs it. */
const masters = new Map<string, { host: HostArgs; socket: string; ready: Promise<void>; up?: boolean }>();
/** Per host: the control socket's name in the directory (short: sockets' paths are limited to 107 bytes). */
const sockets = new Map<string, string>();

function socketOf(host: HostArgs): string {
  const key = hostKey(host);
  let socket = sockets.get(key);
  if (socket === undefined) sockets.set(key, (socket = `${dir()}/${sockets.size + 1}`));
  return socket;
}

function dir(): string {
  if (controlDir === undefined) {
    // mkdtemp makes it 0700: nobody else can reach the sockets (they are logged-in shells).
    controlDir = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-ssh-"));
    process.once("exit", closeMasters);
    // The engine stops plugins with a signal: go through the exit handler then.
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => process.exit(128 + os.constants.signals[signal]));
  }
  return controlDir;
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

/** Like sshCommand, with the remote command's stderr merged into its stdout (ip sessions read one stream). */
export function sshCommandMerged(host: HostArgs, argv: string[]): [string, string[]] {
  return ["ssh", [...options(host, "auto"), "--", host.ssh, `exec ${remoteCommand(["env", "LC_ALL=C", ...argv])} 2>&1`]];
}

/** What ssh says when it (not the remote command) failed: its exit status is 255. */
const SSH_FAILED = /^ssh: |Host key verification failed|Permission denied \(|Connection (?:refused|timed out|closed)|No route to host|Could not resolve|kex_exchange_identification|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known|Control socket connect|Broken pipe/m;

/** True when a command run through ssh failed in ssh itself. */
export function sshFailed(exitCode: number | undefined, stderr: string): boolean {
  return exitCode === 255 && SSH_FAILED.test(stderr);
}

/** The error for ssh's own failure: names the host, what ssh said, and what to check. */
export function sshError(host: HostArgs, subject: string, stderr: string): NslabError {
  const label = hostLabel(host);
  const said = stderr.trim().split("\n").filter(Boolean).slice(-2).map((line) => line.trim().replace(/\.+$/, "")).join("; ") || "ssh exited 255";
  let fix = `Check that sshd runs on ${label} and that this machine reaches it.`;
  if (/Host key verification failed|No .* host key is known|IDENTIFICATION HAS CHANGED/.test(stderr)) {
    fix = `Its host key is not in ${host.knownHostsFile ?? "~/.ssh/known_hosts"} (or differs): add the right key there (ssh-keyscan, checked by hand); nslab never accepts an unknown key.`;
  } else if (/Permission denied/.test(stderr)) {
    fix = `The key ${host.identityFile ?? "(ssh's default)"} was refused: add its public half to the user's authorized_keys on ${label}.`;
  }
  const kind = /Permission denied|Host key verification failed/.test(stderr) ? "Permission" : "CommandFailed";
  const where = subject.includes(label) ? subject : `${subject} on ${label}`;
  return new NslabError(kind, `${where}: cannot reach ${label} over SSH: ${said}. ${fix}`, { stderr, exitCode: 255 });
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
  if (known && (!known.up || fs.existsSync(known.socket))) return known.ready;
  const entry = { host, socket: socketOf(host), ready: startMaster(host, subject), up: false };
  masters.set(key, entry);
  entry.ready.then(
    () => (entry.up = true),
    () => masters.get(key) === entry && masters.delete(key),
  );
  return entry.ready;
}

async function startMaster(host: HostArgs, subject: string): Promise<void> {
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
  if (code === -1 && /ENOENT/.test(said)) throw new NslabError("CommandFailed", `${subject}: ssh is not installed on this machine (Debian package openssh-client).`);
  throw sshError(host, subject, said || `ssh exited ${code}`);
}

/**
 * Asks every master of this process to exit and removes the socket directory. Runs at
 * process exit (synchronously: nothing asynchronous runs then).
 * Equivalent to: ssh -o ControlPath=DIR/N -O exit HOST
 */
export function closeMasters(): void {
  for (const { host } of masters.values()) {
    spawnSync("ssh", [...options(host, undefined), "-O", "exit", "--", host.ssh], { stdio: "ignore", timeout: 2_000 });
  }
  masters.clear();
  sockets.clear();
  if (controlDir !== undefined) fs.rmSync(controlDir, { recursive: true, force: true });
  controlDir = undefined;
}

/** Hosts whose master was started by this process (for tests). */
export function openMasters(): string[] {
  return [...masters.values()].map((m) => hostLabel(m.host));
}
