/**
 * The one door to the kernel. Every `ip`, `nft`, `sysctl`, `tc` and `nsenter` call nslab
 * makes goes through this module: argument arrays (never a shell), a timeout, and errors
 * built in one place (errors.ts). `ip` commands go to a long-lived `ip -batch` process
 * per namespace (ipsession.ts); `nft` and `sysctl` are run with execa, which nothing
 * else imports. execa (ESM, with its dependencies) takes about 40 ms to load, so it is
 * loaded when the first of those runs, not with the provider.
 *
 * `tc` runs like nft: one process per call (or one `tc -batch -` for several), inside
 * the namespace with nsenter.
 *
 * It also holds the per-process snapshot cache: one `ip -details -json addr show`, one
 * `ip -json route show table all` and one `nft -j list table` per namespace, shared by
 * every resource read in the same run and dropped whenever nslab itself writes.
 *
 * Every operation runs on the host of the resource being worked on (withHost, set by
 * the dispatcher in index.ts): this machine, or another one reached over SSH (ssh.ts),
 * where the same commands run with the same arguments, quoted for the remote shell in
 * one place, and the files nslab keeps (/run/netns, /run/nslab) are the remote ones.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import { commandError, NslabError } from "./errors";
import { HostArgs, hostKey, hostLabel, onHost } from "./host";
import { closeSessions, NETNS_DIR, runIp, SessionResult } from "./ipsession";
import { ensureMaster, remoteRun, remoteSequence, sshCommand, sshError, sshFailed } from "./ssh";

/** Upper bound for one command; a hung `ip` must not hang `pulumi up`. */
const COMMAND_TIMEOUT_MS = 30_000;
export { NETNS_DIR };

/** A namespace name, or undefined for the namespace the program (provider) runs in. */
export type Netns = string | undefined;

// ---- the host ---------------------------------------------------------------------------

/**
 * The host of the operation under way, carried through its awaits: each resource
 * operation is one async call tree (index.ts dispatch), and passing the host by hand
 * through every kernel call of every resource kind would change them all for no gain.
 */
const hostContext = new AsyncLocalStorage<HostArgs | undefined>();

/** Runs `work` with every kernel operation inside it on `host` (undefined: this machine). */
export function withHost<T>(host: HostArgs | undefined, work: () => Promise<T>): Promise<T> {
  return hostContext.run(host, work);
}

/** Runs `work` (synchronous) on this machine, whatever host the operation under way is on. */
export function onThisMachine<T>(work: () => T): T {
  return hostContext.run(undefined, work);
}

/** The host of the operation under way; undefined for this machine. */
export function currentHost(): HostArgs | undefined {
  return hostContext.getStore();
}

/** `" on root@192.0.2.2"` while working on another host, else "" (for messages). */
export function where(): string {
  return onHost(currentHost());
}

/**
 * The command that runs `command args` on the current host: itself here, or ssh
 * through the host's master connection (started first, failing fast when it cannot be).
 */
async function placed(command: string, args: string[], subject: string): Promise<[string, string[]]> {
  const host = currentHost();
  if (host === undefined) return [command, args];
  await ensureMaster(host, subject);
  return sshCommand(host, [command, ...args]);
}

/** How an object is named in messages: `veth "a" in namespace "ns1"` (`... on root@192.0.2.2`). */
export function describe(what: string, name: string, netns: Netns): string {
  return `${what} "${name}" in ${netns ? `namespace "${netns}"` : "the program's namespace"}${where()}`;
}

interface RunOptions {
  /** Names the object for error messages. */
  subject: string;
  /** Fed on stdin (for `-batch -` and `nft -f -`); stdin is closed otherwise. */
  input?: string;
}

/** Runs `command args` and returns stdout; throws NslabError on a non-zero exit. */
async function run(command: string, args: string[], options: RunOptions): Promise<string> {
  const printable = [command, ...args].join(" ");
  const host = currentHost();
  if (host !== undefined) {
    const r = await remoteRun(host, [command, ...args], { input: options.input, timeoutMs: COMMAND_TIMEOUT_MS, subject: options.subject });
    if (r.timedOut) throw new NslabError("CommandFailed", `${options.subject}: ${printable} timed out after ${COMMAND_TIMEOUT_MS} ms`);
    if (sshFailed(r.exitCode, r.stderr)) throw sshError(host, options.subject, r.stderr);
    if (r.exitCode !== 0) throw commandError(options.subject, printable, r.stderr, r.exitCode);
    return r.stdout;
  }
  let result;
  try {
    const { execa } = await import("execa");
    result = await execa(command, args, {
      input: options.input,
      stdin: options.input === undefined ? "ignore" : undefined,
      reject: false,
      timeout: COMMAND_TIMEOUT_MS,
      env: { LC_ALL: "C" },
      stripFinalNewline: false,
    });
  } catch (err) {
    throw new NslabError("CommandFailed", `${options.subject}: cannot run ${command}: ${(err as Error).message}`);
  }
  if (result.timedOut) {
    throw new NslabError("CommandFailed", `${options.subject}: ${printable} timed out after ${COMMAND_TIMEOUT_MS} ms`);
  }
  if (result.exitCode !== 0) {
    const stderr = String(result.stderr ?? "");
    if (result.exitCode === undefined && /ENOENT/.test(String(result.message))) {
      throw new NslabError("CommandFailed", `${options.subject}: ${command} is not installed (run scripts/setup)`);
    }
    throw commandError(options.subject, printable, stderr, result.exitCode ?? -1);
  }
  return String(result.stdout ?? "");
}

// ---- snapshots ------------------------------------------------------------------------

/** Per namespace, per kind of dump ("links", "routes", "nft"): the pending or done read. */
const snapshots = new Map<string, Map<string, Promise<unknown>>>();
/** Snapshots and probe processes are per host and namespace. */
const key = (netns: Netns) => `${hostKey(currentHost())}\0${netns ?? ""}`;

/**
 * Called on every write. A write in one namespace can change another (a veth made
 * into two namespaces, a namespace deleted), so every snapshot goes. Refresh runs make
 * no writes, so they still read each namespace once; create/update runs verify with
 * fresh reads of single objects and need no snapshot.
 */
export function invalidate(_netns: Netns): void {
  snapshots.clear();
}

/** Drops every cached snapshot. */
export function resetSnapshots(): void {
  snapshots.clear();
}

/** Reads `what` of `netns` once and shares the result until the next write there. */
function snapshot<T>(netns: Netns, what: string, read: () => Promise<T>): Promise<T> {
  let perNs = snapshots.get(key(netns));
  if (!perNs) snapshots.set(key(netns), (perNs = new Map()));
  let pending = perNs.get(what) as Promise<T> | undefined;
  if (!pending) {
    pending = read();
    perNs.set(what, pending);
    pending.catch(() => snapshots.get(key(netns))?.delete(what));
  }
  return pending;
}

/** One interface as `ip -details -json addr show` prints it (the fields nslab reads). */
export interface LinkJson {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate?: string;
  address?: string;
  master?: string;
  ifalias?: string;
  /** The peer's (or lower device's) name, when it is in the same namespace. */
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
  addr_info?: { family: string; local: string; prefixlen: number; scope?: string; tentative?: boolean }[];
}

/**
 * Every interface of `netns` with details and addresses, from one cached snapshot.
 * Equivalent to: ip [-n NS] -details -json addr show
 */
export function links(netns: Netns): Promise<LinkJson[]> {
  return snapshot(netns, "links", () => ipJson<LinkJson[]>(["addr", "show"], netns, describe("links", "*", netns)));
}

/** One route as `ip -json route show table all` prints it (the fields nslab reads). */
export interface RouteJson {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  metric?: number;
  prefsrc?: string;
  /** Added by nslab from the dump it came from (routes()), never guessed from the text. */
  family?: "ipv4" | "ipv6";
}

/**
 * Every route of `netns`, IPv4 and IPv6, all tables, from one cached snapshot, each
 * with its family as the kernel dumped it: `ip route` prints an IPv6 `default` like an
 * IPv4 one, so the family is never guessed from the text. One exchange with the
 * namespace's session (a prefix selects the family without `-6`).
 * Equivalent to: ip [-n NS] -json route show table all root 0.0.0.0/0; ip [-n NS] -json route show table all root ::/0
 */
export function routes(netns: Netns): Promise<RouteJson[]> {
  return snapshot(netns, "routes", async () => {
    const families = [["ipv4", "0.0.0.0/0"], ["ipv6", "::/0"]] as const;
    const outputs = await ipRun(families.map(([, all]) => ["route", "show", "table", "all", "root", all]), netns, describe("routes", "*", netns));
    return families.flatMap(([family], i) => parseJson<RouteJson[]>(outputs[i]).map((route) => ({ ...route, family })));
  });
}

/**
 * One interface, read fresh (used to verify after writing); undefined when absent.
 * Equivalent to: ip [-n NS] -details -json addr show dev NAME
 */
export async function link(name: string, netns: Netns): Promise<LinkJson | undefined> {
  if (netns !== undefined && !(await hostNetnsExists(netns))) return undefined;
  try {
    const found = await ipJson<LinkJson[]>(["addr", "show", "dev", name], netns, describe("link", name, netns));
    return found[0];
  } catch (err) {
    if (err instanceof NslabError && err.kind === "NotFound") return undefined;
    throw err;
  }
}

// ---- ip ---------------------------------------------------------------------------------

/** How a command is shown in messages: `ip -n ns1 -6 route add ...`. */
function printable(command: string[], netns: Netns, family?: "-4" | "-6"): string {
  return ["ip", ...(netns === undefined ? [] : ["-n", netns]), ...(family ? [family] : []), ...command].join(" ");
}

/**
 * Runs ip commands in order in the namespace's long-lived `ip -batch` session
 * (ipsession.ts), stopping at the first failure, and returns each command's output.
 * The error names the failed command and is built like any other (commandError).
 */
async function ipRun(commands: string[][], netns: Netns, subject: string, family?: "-4" | "-6", around: Around = {}): Promise<string[]> {
  const host = currentHost();
  let result: SessionResult;
  if (host !== undefined) {
    result = await runIpRemote(host, commands, netns, family, subject, around);
  } else {
    if (around.dropRecordsOf !== undefined) removeRecordsHere(around.dropRecordsOf);
    if (around.before) await intend(around.before.netns, around.before.object, around.before.owner, subject, around.before.by);
    result = await runIp(commands, netns, family);
    if (around.after && !result.failure) await intentDone(around.after.netns, around.after.object);
  }
  const { outputs, failure } = result;
  if (failure) {
    const command = printable(commands[failure.index], netns, family);
    if (host !== undefined && sshFailed(failure.exitCode, failure.text)) {
      const err = sshError(host, subject, failure.text);
      err.details.mayHaveRun = true;
      throw err;
    }
    if (failure.timedOut) {
      // Over SSH a request's commands go together: which of them hung is not known.
      const which = host !== undefined && commands.length > 1 ? `one of ${commands.map((c) => printable(c, netns, family)).join("; ")}` : command;
      throw new NslabError("CommandFailed", `${subject}: ${which} ${failure.text}${host !== undefined ? ` (it may have run${where()})` : ""}`, { command, mayHaveRun: true });
    }
    if (failure.exitCode === 127) throw new NslabError("CommandFailed", `${subject}: ip is not installed (run scripts/setup)`);
    throw commandError(subject, command, failure.text, failure.exitCode);
  }
  return outputs;
}

/**
 * Runs ip commands in order on another host, `[nsenter --net=/run/netns/NS --] ip
 * [-4|-6] -json -details CMD` each, in one request, stopping at the first failure, with
 * the same result as a session's (runIp). Why not sessions there: a long-lived
 * `ip -batch` session per namespace (ipsession.ts) costs an SSH channel each, an ssh
 * process here and a session with the user's shell there, about 70 ms under load, for
 * every namespace of every run; the commands of one exchange go instead as one request
 * to one of the host's long-lived shells (ssh.ts remoteSequence): one round trip, an
 * `ip` process per command there (docs/benchmark.md has the figures).
 */
async function runIpRemote(host: HostArgs, commands: string[][], netns: Netns, family: "-4" | "-6" | undefined, subject: string, around: Around): Promise<SessionResult> {
  const enter = netns === undefined ? [] : ["nsenter", `--net=${NETNS_DIR}/${netns}`, "--"];
  const argvs = commands.map((command) => [...enter, "ip", ...(family ? [family] : []), "-json", "-details", ...command]);
  // The intent records go in the same request: written before, removed after (only when
  // every command succeeded: the sequence stops at the first failure).
  const before = [
    ...(around.dropRecordsOf !== undefined ? [recordsDropArgv(around.dropRecordsOf)] : []),
    ...(around.before ? [recordWriteArgv(around.before.netns, `intent-${around.before.object}`, { owner: around.before.owner, by: around.before.by })] : []),
  ];
  const after = around.after ? [recordRemoveArgv(around.after.netns, `intent-${around.after.object}`)] : [];
  const r = await remoteSequence(host, [...before, ...argvs, ...after], { timeoutMs: COMMAND_TIMEOUT_MS, subject });
  const outputs = r.outputs.slice(before.length, before.length + argvs.length);
  const failure = r.failure;
  if (!failure || failure.index >= before.length + argvs.length) return { outputs };
  // The request's end not seen (a timeout, the shell or connection gone): which command
  // it was is not known, nor whether it ran; ipRun says so.
  if (failure.timedOut) return { outputs, failure: { index: 0, text: `timed out after ${COMMAND_TIMEOUT_MS} ms`, exitCode: -1, timedOut: true } };
  if (sshFailed(failure.exitCode, failure.stderr)) return { outputs, failure: { index: 0, text: failure.stderr, exitCode: failure.exitCode } };
  // (Dropping records never fails: a failure before the commands is the intent's write.)
  if (failure.index < before.length) throw recordWriteError(failure.exitCode, failure.stderr, `intent-${around.before?.object}`, subject);
  return { outputs, failure: { index: failure.index - before.length, text: failure.stderr, exitCode: failure.exitCode } };
}

/**
 * An intent record to write before ip commands, or to remove after them once all
 * succeeded (see intend): on another host in the same request as the commands.
 */
export interface Around {
  before?: { netns: Netns; object: string; owner: string; by?: string };
  after?: { netns: Netns; object: string };
  /** A namespace whose records all go before the commands (it is about to be deleted). */
  dropRecordsOf?: string;
}

/** The JSON a show command printed (one line; an empty list when it printed none). */
const parseJson = <T>(text: string): T => {
  const line = text.split("\n").find((l) => l.startsWith("[") || l.startsWith("{"));
  return (line === undefined ? [] : JSON.parse(line)) as T;
};

/**
 * Runs `ip [-n NS] [-4|-6] ARGS` (a write: the namespace's snapshot is dropped), with an
 * intent record written before it if `around` says so (the record stays: the caller
 * removes it once the object is marked, or the write failed).
 */
export async function ip(args: string[], netns: Netns, subject: string, family?: "-4" | "-6", around: Around = {}): Promise<string> {
  invalidate(netns);
  try {
    return (await ipRun([args], netns, subject, family, around))[0];
  } finally {
    invalidate(netns);
  }
}

/** Runs `ip [-n NS] -json -details ARGS` and parses the output (a read). */
export async function ipJson<T>(args: string[], netns: Netns, subject: string): Promise<T> {
  return parseJson<T>((await ipRun([args], netns, subject))[0]);
}

/**
 * Runs write commands and then show commands, in order, stopping at the first failure,
 * and returns the JSON each show printed: `ip [-n NS] [-4|-6] -json -details CMD` for
 * each. Used to apply and verify an object in one exchange with the namespace's ip
 * session. Show commands are those whose second word is "show". `around`: intent
 * records written before, or removed after (see Around).
 */
export async function ipBatchRead<T = unknown>(commands: string[][], netns: Netns, subject: string, family?: "-4" | "-6", around: Around = {}): Promise<T[]> {
  invalidate(netns);
  try {
    const outputs = await ipRun(commands, netns, subject, family, around);
    return outputs.filter((_out, i) => commands[i][1] === "show").map((out) => parseJson<T>(out));
  } finally {
    invalidate(netns);
  }
}

/**
 * Deletes a named namespace: ip netns delete NAME. nslab's own ip sessions inside it
 * are closed first, so that nothing of nslab's keeps the namespace alive.
 */
export async function netnsDelete(name: string, subject: string): Promise<void> {
  await Promise.all([currentHost() === undefined ? closeSessions(name) : undefined, closeProbers(name)]);
  // Records kept for it die with it (its inode number may be reused by a later one):
  // removed first, in the same request as the delete on another host.
  await ip(["netns", "delete", name], undefined, subject, undefined, { dropRecordsOf: name });
}

// ---- namespaces -------------------------------------------------------------------------

/**
 * The functions that read this machine's files directly (netnsExists, readRecord...)
 * serve nslab's own bookkeeping here; while working on another host, resource code must
 * use their host* forms. Called there by mistake, they would answer about the wrong
 * machine: this makes that loud.
 */
function localOnly(what: string): void {
  const host = currentHost();
  if (host !== undefined) throw new NslabError("CommandFailed", `nslab bug: ${what}() looks at this machine's files while working on ${hostLabel(host)}; use its host* form`);
}

/** True when /run/netns/NAME exists (on this machine: see hostNetnsExists). */
export function netnsExists(name: string): boolean {
  localOnly("netnsExists");
  return fs.existsSync(`${NETNS_DIR}/${name}`);
}

/**
 * A namespace file's identity on this machine, as `stat -L -c %d:%i FILE` prints it;
 * undefined when there is no such file.
 */
function nsfsId(file: string): string | undefined {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  return st && `${st.dev}:${st.ino}`;
}

/**
 * Which machine the current host is, as its kernel sees it: the boot, and the network and
 * mount namespaces its commands run in (the mount namespace's /run/netns holds the
 * namespaces). Spellings of one machine ("root@h", "h", an address of it; "localhost"
 * for this one, from the namespaces nslab runs in) give the same; two sshds on one kernel
 * in namespaces of their own do not. undefined when it cannot be read.
 * Equivalent to: cat /proc/sys/kernel/random/boot_id; stat -L -c '%d:%i' /proc/self/ns/net /proc/self/ns/mnt
 */
export async function machineIdentity(subject: string): Promise<string | undefined> {
  if (currentHost() === undefined) {
    try {
      const ns = ["net", "mnt"].map((n) => nsfsId(`/proc/self/ns/${n}`));
      return ns.includes(undefined) ? undefined : [fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(), ...ns].join(" ");
    } catch {
      return undefined;
    }
  }
  const r = await remoteOutcome(["sh", "-c", "cat /proc/sys/kernel/random/boot_id && stat -L -c %d:%i /proc/self/ns/net /proc/self/ns/mnt"], subject);
  const words = r.stdout.split(/\s+/).filter(Boolean);
  return r.exitCode === 0 && words.length === 3 ? words.join(" ") : undefined;
}

/**
 * What /run/netns/NAME is on the current host: absent, a namespace, or the plain file
 * of an interrupted `ip netns add` (see netnsHalfMade); with the namespace's inode.
 * Here, two stat(2) calls; on another host, one command.
 * Equivalent to: stat -L -c '%d %i' /proc/self/ns/net /run/netns/NAME
 */
async function netnsFileState(name: string, subject: string): Promise<"absent" | "namespace" | "half"> {
  if (currentHost() === undefined) return !netnsExists(name) ? "absent" : netnsHalfMade(name) ? "half" : "namespace";
  const r = await remoteOutcome(["stat", "-L", "-c", "%d %i", "/proc/self/ns/net", `${NETNS_DIR}/${name}`], subject);
  return stateFromStat(r.stdout);
}

/**
 * What `stat -L -c '%d %i' /proc/self/ns/net /run/netns/NAME` printed says: no second
 * line, absent; the same device as the host's own namespace (nsfs), a namespace; else
 * the plain file of an interrupted `ip netns add`.
 */
function stateFromStat(text: string): "absent" | "namespace" | "half" {
  const [own, file] = text.trim().split("\n").map((line) => line.split(" ")[0]);
  if (file === undefined) return "absent";
  return file === own ? "namespace" : "half";
}

/**
 * What /run/netns/NAME is on the current host, and the intent record `object` of the
 * host's own namespace (intended()): one request on another host.
 * Equivalent to: stat -L -c '%d %i' /proc/self/ns/net /run/netns/NAME; cat /run/nslab/netns-INODE/intent-OBJECT.json
 */
export async function netnsLook(name: string, object: string, subject: string): Promise<{ state: "absent" | "namespace" | "half"; intended?: string }> {
  if (currentHost() === undefined) return { state: await netnsFileState(name, subject), intended: await intended(undefined, object) };
  // $1: the host's own namespace, whose records hold the intent; $3: the file looked at.
  const script = `stat -L -c '%d %i' /proc/self/ns/net "$3" 2>/dev/null; echo --; ${REMOTE_RECORD_DIR}; cat -- "$d/intent-$2.json" 2>/dev/null; exit 0`;
  const r = await remoteOutcome(["sh", "-c", script, "sh", netnsFile(undefined), object, `${NETNS_DIR}/${name}`], subject);
  if (r.exitCode !== 0) throw new NslabError("CommandFailed", `${subject}: cannot look at ${NETNS_DIR}/${name}${where()}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  const [stats, record = ""] = r.stdout.split("--\n");
  const state = stateFromStat(stats);
  try {
    return { state, intended: (JSON.parse(record) as { owner?: string }).owner };
  } catch {
    return { state };
  }
}

/**
 * What /run/netns/NAME is on the current host and, when it is a namespace, the alias
 * of its `lo` (nslab's mark; "" when it has none): here, two stat(2) calls and the
 * namespace's links snapshot (`fresh`: lo read anew); on another host, one request.
 * Equivalent to: stat -L -c '%d %i' /proc/self/ns/net /run/netns/NAME; ip -n NAME -json -details addr show dev lo
 */
export async function netnsLoMark(name: string, subject: string, fresh = false): Promise<{ state: "absent" | "namespace" | "half"; mark?: string }> {
  const fromLinks = async () => (fresh ? await link("lo", name) : (await links(name)).find((l) => l.ifname === "lo"))?.ifalias ?? "";
  if (currentHost() === undefined) {
    const state = await netnsFileState(name, subject);
    return state === "namespace" ? { state, mark: await fromLinks() } : { state };
  }
  // $1: the namespace's file. nsenter fails on an absent file or the plain file of an
  // interrupted ip netns add: then only the stat lines count.
  const script = `stat -L -c '%d %i' /proc/self/ns/net "$1" 2>/dev/null; echo --; nsenter --net="$1" -- ip -json -details addr show dev lo 2>/dev/null; exit 0`;
  const r = await remoteOutcome(["sh", "-c", script, "sh", `${NETNS_DIR}/${name}`], subject);
  if (r.exitCode !== 0) throw new NslabError("CommandFailed", `${subject}: cannot look at ${NETNS_DIR}/${name}${where()}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  const [stats, shown = ""] = r.stdout.split("--\n");
  const state = stateFromStat(stats);
  if (state !== "namespace") return { state };
  try {
    const [lo] = JSON.parse(shown) as LinkJson[];
    if (lo) return { state, mark: lo.ifalias ?? "" };
  } catch {
    // not JSON: asked again below, where a failure is named
  }
  // A namespace whose lo could not be read that way (ip missing there, say): the usual
  // read, whose error says why.
  return { state, mark: await fromLinks() };
}

/** True when /run/netns/NAME exists on the current host (netnsExists, there). */
export async function hostNetnsExists(name: string, subject = describe("namespace", name, undefined)): Promise<boolean> {
  return (await netnsFileState(name, subject)) !== "absent";
}

/**
 * Fails when the namespace an object lives in is missing (on the current host).
 * `recorded`: the object is in the stack's state already (an update), so the namespace
 * was there once: a reboot (or a hand) removed it, and `pulumi up --refresh` recreates
 * what is gone.
 */
export async function requireNetns(netns: Netns, subject: string, property = "", recorded = false): Promise<void> {
  if (netns === undefined || (await hostNetnsExists(netns, subject))) return;
  const fix = recorded
    ? `It is in the stack's state but not in the kernel (after a reboot /run/netns is empty, or it was deleted by hand): run \`pulumi up --refresh\` to recreate what is gone.`
    : `Create it first (nslab.Namespace) and pass its .name, so Pulumi orders the two; if the stack made it before a reboot, run \`pulumi up --refresh\`.`;
  throw new NslabError("NotFound", `${subject}: ${property}namespace "${netns}" does not exist${where()}. ${fix}`);
}

/**
 * True when /run/netns/NAME exists but is not a namespace: `ip netns add` creates the
 * file, then bind-mounts the new namespace on it (and `ip netns delete` unmounts, then
 * unlinks), so an `ip` killed in between leaves a plain empty file. Told apart by its
 * device: a namespace file is on nsfs, like /proc/self/ns/net.
 */
export function netnsHalfMade(name: string): boolean {
  localOnly("netnsHalfMade");
  try {
    return fs.statSync(`${NETNS_DIR}/${name}`).dev !== fs.statSync("/proc/self/ns/net").dev;
  } catch {
    return false;
  }
}

/** Names of the namespaces in /run/netns. */
export function netnsList(): string[] {
  localOnly("netnsList");
  try {
    return fs.readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/** Runs `command args` inside a namespace: nsenter --net=/run/netns/NS command args. */
function inNetns(command: string, args: string[], netns: Netns): [string, string[]] {
  return netns === undefined ? [command, args] : ["nsenter", [`--net=${NETNS_DIR}/${netns}`, "--", command, ...args]];
}

// ---- nft --------------------------------------------------------------------------------

/** Applies an nft script atomically: [nsenter --net=NS] nft -f - */
export async function nftScript(script: string, netns: Netns, subject: string): Promise<void> {
  const [command, args] = inNetns("nft", ["-f", "-"], netns);
  invalidate(netns);
  try {
    await run(command, args, { subject, input: script });
  } finally {
    invalidate(netns);
  }
}

/** Reads `nft -j ARGS` once per namespace per run (until nslab writes there). */
export function nftSnapshot<T>(args: string[], netns: Netns, subject: string): Promise<T> {
  return snapshot(netns, `nft ${args.join(" ")}`, () => nftJson<T>(args, netns, subject));
}

/** Runs [nsenter --net=NS] nft -j ARGS and parses the output. */
export async function nftJson<T>(args: string[], netns: Netns, subject: string): Promise<T> {
  const [command, argv] = inNetns("nft", ["-j", ...args], netns);
  return JSON.parse(await run(command, argv, { subject })) as T;
}

/**
 * Sets an interface's alias to any text, or removes it (""): one `ip` process with the
 * text as one argument, not a line of the namespace's `ip -batch` session, which splits
 * at blanks and refuses '#' and '\'. On another host the words are argv there already.
 * Equivalent to: [nsenter --net=NS] ip link set dev NAME alias TEXT
 */
export async function ipSetAlias(name: string, alias: string, netns: Netns, subject: string): Promise<void> {
  const args = ["link", "set", "dev", name, "alias", alias];
  await (currentHost() !== undefined ? ip(args, netns, subject) : write("ip", args, netns, subject));
}

/** Runs a write: [nsenter --net=NS] TOOL ARGS (the namespace's snapshots are dropped, before and after). */
async function write(tool: string, args: string[], netns: Netns, subject: string): Promise<string> {
  const [command, argv] = inNetns(tool, args, netns);
  invalidate(netns);
  try {
    return await run(command, argv, { subject });
  } finally {
    invalidate(netns);
  }
}

// ---- conntrack ----------------------------------------------------------------------------

/**
 * Deletes the connection-tracking entries ARGS select: [nsenter --net=NS] conntrack -D
 * ARGS. None selected is success (conntrack exits 1 saying "0 flow entries have been
 * deleted"); a missing conntrack is an error naming it.
 */
export async function conntrackDelete(args: string[], netns: Netns, subject: string): Promise<void> {
  const [command, argv] = inNetns("conntrack", ["-D", ...args], netns);
  await run(command, argv, { subject }).catch((err) => {
    if (err instanceof NslabError && /\b0 flow entries have been deleted/.test(`${err.details.stderr ?? ""}${err.message}`)) return;
    throw err;
  });
}

// ---- sysctl -----------------------------------------------------------------------------

/** Reads a sysctl: [nsenter --net=NS] sysctl -n KEY */
/**
 * The namespace ids `netns` gives other namespaces, with their /run/netns names, from an
 * `ip` of its own: a long-lived `ip -batch` session keeps a cache of id-to-name that
 * goes stale when namespaces come and go.
 * Equivalent to: [nsenter --net=/run/netns/NS] ip -json netns list-id
 */
export async function netnsIds(netns: Netns, subject: string): Promise<{ nsid: number; name?: string }[]> {
  const [command, args] = inNetns("ip", ["-json", "netns", "list-id"], netns);
  return parseJson<{ nsid: number; name?: string }[]>(await run(command, args, { subject }));
}

export async function sysctlRead(name: string, netns: Netns, subject: string): Promise<string> {
  const [command, args] = inNetns("sysctl", ["-n", name], netns);
  return (await run(command, args, { subject })).trim();
}

/** br_netfilter's switches that pass bridged IPv4 and IPv6 traffic to iptables/nftables. */
export const BRIDGE_NF_CALLS = ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"] as const;

/**
 * Whether br_netfilter is loaded in `netns` (its keys exist), and those of
 * BRIDGE_NF_CALLS that are on (1) there. One process.
 * Equivalent to: [nsenter --net=NS] sysctl -n -e net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
 */
export async function bridgeNf(netns: Netns, subject: string): Promise<{ loaded: boolean; on: string[] }> {
  const [command, args] = inNetns("sysctl", ["-n", "-e", ...BRIDGE_NF_CALLS], netns);
  const values = (await run(command, args, { subject })).split("\n").map((l) => l.trim()).filter(Boolean);
  // -e prints nothing for a key that does not exist; both come and go with the module.
  const loaded = values.length === BRIDGE_NF_CALLS.length;
  return { loaded, on: loaded ? BRIDGE_NF_CALLS.filter((_, n) => values[n] === "1") : [] };
}

/** Writes a sysctl: [nsenter --net=NS] sysctl -w KEY=VALUE */
export function sysctlWrite(name: string, value: string, netns: Netns, subject: string): Promise<void> {
  return sysctlWriteAll([[name, value]], netns, subject);
}

/** Writes several sysctls in one process: [nsenter --net=NS] sysctl -w KEY=VALUE ... */
export async function sysctlWriteAll(settings: [string, string][], netns: Netns, subject: string): Promise<void> {
  const [command, args] = inNetns("sysctl", ["-q", "-w", ...settings.map(([name, value]) => `${name}=${value}`)], netns);
  invalidate(netns);
  await run(command, args, { subject });
}

// ---- bridge fdb -------------------------------------------------------------------------

/** The MAC of a VXLAN device's default forwarding entries: frames for unknown MACs. */
const ANY_MAC = "00:00:00:00:00:00";

/** A VXLAN device's own all-zeros forwarding entry: where it sends frames for unknown MACs. */
export interface FdbDefault {
  dst: string;
  /** The underlay device it leaves by, when pinned. */
  via?: string;
  /** Set only when they differ from the device's own (bridge prints them then). */
  port?: number;
  vni?: number;
}

/**
 * A VXLAN device's own all-zeros forwarding entries, which the kernel adds for `remote`
 * or `group` at create and `bridge fdb del` takes away while the device keeps showing
 * them (a read).
 * Equivalent to: [nsenter --net=NS] bridge -json fdb show dev NAME
 */
export async function fdbDefaults(dev: string, netns: Netns, subject: string): Promise<FdbDefault[]> {
  const [command, args] = inNetns("bridge", ["-json", "fdb", "show", "dev", dev], netns);
  const entries = parseJson<{ mac?: string; dst?: string; master?: string; viaIf?: string; port?: number; vni?: number }[]>(await run(command, args, { subject }));
  return entries.filter((e) => e.mac === ANY_MAC && e.master === undefined && typeof e.dst === "string").map((e) => ({ dst: e.dst!, via: e.viaIf, port: e.port, vni: e.vni }));
}

/**
 * Puts back a VXLAN device's default forwarding entry for its remote or group, as the
 * kernel makes it at create (`via` its underlay device, when it has one).
 * Equivalent to: [nsenter --net=NS] bridge fdb append 00:00:00:00:00:00 dev NAME dst ADDR [via DEV] self permanent
 */
export async function fdbAppendDefault(dev: string, dst: string, via: string | undefined, netns: Netns, subject: string): Promise<void> {
  const [command, args] = inNetns("bridge", ["fdb", "append", ANY_MAC, "dev", dev, "dst", dst, ...(via ? ["via", via] : []), "self", "permanent"], netns);
  invalidate(netns);
  await run(command, args, { subject });
}

/**
 * Removes the forwarding entries a VXLAN device learned from the packets it received
 * (neither permanent nor static, not its bridge's): after its remote, group or underlay
 * device changed they still send to the peer they were learned from (an address that
 * may be gone) until they age out, 300 s. They are learned again from the next packets.
 * Entry by entry rather than `bridge fdb flush`, which kernels before 6.6 refuse for
 * VXLAN devices. Returns how many there were.
 * Equivalent to: [nsenter --net=NS] bridge -json fdb show dev NAME; bridge -force -batch - (fdb del MAC dev NAME dst D self, each)
 */
export async function fdbForgetLearned(dev: string, netns: Netns, subject: string): Promise<number> {
  const learned = async () => {
    const [show, showArgs] = inNetns("bridge", ["-json", "fdb", "show", "dev", dev], netns);
    const entries = parseJson<{ mac?: string; dst?: string; master?: string; state?: string; flags?: string[] }[]>(await run(show, showArgs, { subject }));
    // A controller's entries (extern_learn, offload) are not the device's learning.
    const own = (e: { flags?: string[] }) => (e.flags ?? []).includes("self") && !(e.flags ?? []).some((f) => f === "extern_learn" || f === "offload");
    return entries.filter((e) => e.mac && e.mac !== ANY_MAC && typeof e.dst === "string" && e.master === undefined && !e.state && own(e));
  };
  const found = await learned();
  if (found.length === 0) return 0;
  const [command, args] = inNetns("bridge", ["-force", "-batch", "-"], netns);
  invalidate(netns);
  await run(command, args, { subject, input: found.map((e) => `fdb del ${e.mac} dev ${dev} dst ${e.dst} self`).join("\n") + "\n" }).catch(async (err) => {
    // One that aged out between the look and the delete is gone all the same (and one
    // learned again since, from the new way, may stay).
    const left = await learned();
    if (found.some((e) => left.some((l) => l.mac === e.mac && l.dst === e.dst))) throw err;
  });
  return found.length;
}

/** Whether `ip -V`'s version has `ip neigh ... use` (iproute2 5.16 and later). */
export function neighUseIn(version: string): boolean {
  const m = /iproute2-v?(\d+)\.(\d+)/.exec(version);
  return !!m && (Number(m[1]) > 5 || (Number(m[1]) === 5 && Number(m[2]) >= 16));
}

/** Per machine (this one, or a host's), whether its `ip` has `neigh ... use`: asked once per provider process. */
const neighUse = new Map<string, Promise<boolean>>();

/**
 * Whether the current machine's `ip` takes `ip neigh replace A dev D use` (iproute2 5.16
 * and later). An older one exits at that word, ending its whole batch session. One
 * `ip -V` per machine and provider process. Equivalent to: ip -V
 */
export function ipNeighUse(subject: string): Promise<boolean> {
  const machine = hostKey(currentHost());
  let known = neighUse.get(machine);
  if (known === undefined) {
    known = run("ip", ["-V"], { subject }).then(neighUseIn);
    neighUse.set(machine, known);
    // A failed look (a connection that dropped) is asked again next time.
    known.catch(() => neighUse.delete(machine));
  }
  return known.catch(() => false);
}

// ---- tc ---------------------------------------------------------------------------------

/** Runs a write: [nsenter --net=NS] tc ARGS (the namespace's snapshots are dropped). */
export function tc(args: string[], netns: Netns, subject: string): Promise<string> {
  return write("tc", args, netns, subject);
}

/**
 * Runs tc commands in order in one process, stopping at the first failure:
 * [nsenter --net=NS] tc -batch - (one command a line on stdin). The error names the
 * command that failed (tc reports its line: "Command failed -:N").
 */
export async function tcBatch(commands: string[][], netns: Netns, subject: string): Promise<void> {
  if (commands.length === 0) return;
  const [command, argv] = inNetns("tc", ["-batch", "-"], netns);
  invalidate(netns);
  try {
    await run(command, argv, { subject, input: commands.map((c) => c.join(" ")).join("\n") + "\n" });
  } catch (err) {
    const line = err instanceof NslabError ? /Command failed -:(\d+)/.exec(err.details.stderr ?? "") : null;
    const failed = line ? commands[Number(line[1]) - 1] : undefined;
    if (!failed || !(err instanceof NslabError)) throw err;
    const stderr = (err.details.stderr ?? "").replace(/Command failed -:\d+\n?/, "");
    throw commandError(subject, ["tc", ...(netns === undefined ? [] : ["-n", netns]), ...failed].join(" "), stderr, err.details.exitCode ?? -1);
  } finally {
    invalidate(netns);
  }
}

/** Runs [nsenter --net=NS] tc -json ARGS (a read) and parses the output; [] when empty. */
export async function tcJson<T>(args: string[], netns: Netns, subject: string): Promise<T> {
  const [command, argv] = inNetns("tc", ["-json", ...args], netns);
  const out = (await run(command, argv, { subject })).trim();
  return (out === "" ? [] : JSON.parse(out)) as T;
}

// ---- probes (Reachability) ------------------------------------------------------------

/** What one probe saw: whether the far end answered, and in words what came back. */
export interface ProbeResult {
  reachable: boolean;
  /** What came back: ping's reply or summary line, "connection refused", "timed out after 2000 ms". */
  detail: string;
}

/** One TCP or UDP probe, as the probe program (probe.ts) takes it on stdin (with an id). */
export interface TransportProbe {
  protocol: "tcp" | "udp";
  to: string;
  port: number;
  timeoutMs: number;
}

/** How long past a probe's own timeout its process may run before it is killed. */
const PROBE_KILL_MARGIN_MS = 1_000;

interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command that may fail (a probe): its exit code and output, never a throw for a non-zero exit. */
async function runOutcome(command: string, args: string[], timeoutMs: number, subject: string, input?: string): Promise<Outcome> {
  const host = currentHost();
  if (host !== undefined) {
    const r = await remoteRun(host, [command, ...args], { input, timeoutMs, subject });
    if (sshFailed(r.exitCode, r.stderr)) throw sshError(host, subject, r.stderr);
    if (r.exitCode === 127) {
      // nsenter or timeout may have been found, and the program they run not: name that one.
      const missing = /failed to (?:execute|run command) '?([^':\s]+)'?|([^\s:]+): not found/.exec(r.stderr);
      throw new NslabError("CommandFailed", `${subject}: ${missing?.[1] ?? missing?.[2] ?? command} is not installed${where()} (${r.stderr.trim()})`);
    }
    return r;
  }
  let result;
  try {
    const { execa } = await import("execa");
    result = await execa(command, args, {
      input,
      stdin: input === undefined ? "ignore" : undefined,
      reject: false,
      timeout: timeoutMs,
      killSignal: "SIGKILL",
      env: { LC_ALL: "C" },
    });
  } catch (err) {
    throw new NslabError("CommandFailed", `${subject}: cannot run ${command}: ${(err as Error).message}`);
  }
  if (result.exitCode === undefined && !result.timedOut && /ENOENT/.test(String(result.message))) {
    throw new NslabError("CommandFailed", `${subject}: ${command} is not installed (run scripts/setup)`);
  }
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? ""), stderr: String(result.stderr ?? ""), timedOut: result.timedOut };
}

/**
 * The numeric id of a user or group name on the current host, as that host's name
 * service knows it (`ip -d` looked the id up there to print the name); undefined when
 * it knows none. Never this machine's /etc files while working on another host.
 * Equivalent to: getent passwd|group -- NAME
 */
export async function accountId(database: "passwd" | "group", name: string, subject: string): Promise<number | undefined> {
  const r = await runOutcome("getent", [database, "--", name], COMMAND_TIMEOUT_MS, subject);
  if (r.exitCode !== 0) return undefined;
  const id = r.stdout.split("\n")[0].split(":")[2];
  return id !== undefined && /^\d+$/.test(id) ? Number(id) : undefined;
}

/** A command on the current (remote) host whose exit status is an answer, not a failure. */
function remoteOutcome(argv: string[], subject: string, input?: string): Promise<Outcome> {
  return runOutcome(argv[0], argv.slice(1), COMMAND_TIMEOUT_MS, subject, input);
}

/**
 * One ICMP echo from inside a namespace, bounded in time.
 * Equivalent to: [nsenter --net=/run/netns/NS --] ping -n -c 1 -W SECONDS TO
 */
export async function ping(to: string, netns: Netns, timeoutMs: number, subject: string): Promise<ProbeResult> {
  const seconds = (timeoutMs / 1000).toFixed(3);
  const [command, args] = inNetns("ping", ["-n", "-c", "1", "-W", seconds, to], netns);
  const r = await runOutcome(command, args, timeoutMs + PROBE_KILL_MARGIN_MS, subject);
  const lines = `${r.stdout}\n${r.stderr}`.split("\n").map((l) => l.trim()).filter(Boolean);
  if (r.timedOut) return { reachable: false, detail: `ping timed out after ${timeoutMs} ms` };
  if (r.exitCode === 0) return { reachable: true, detail: lines.find((l) => /bytes from/.test(l)) ?? "echo reply" };
  if (r.exitCode === 127 || /not found|No such file/.test(r.stderr) && !lines.some((l) => /transmitted/.test(l))) {
    throw new NslabError("CommandFailed", `${subject}: ping is not installed (Debian package iputils-ping; run scripts/setup)`);
  }
  // Exit 1: no reply (the summary line says so); 2: an error (its message says which).
  const said = lines.filter((l) => !/^PING |^--- |^rtt /.test(l));
  const summary = said.join("; ") || `ping exited ${r.exitCode}`;
  // ping's own errors start with "ping: " already ("ping: connect: Network is unreachable").
  const named = /^ping: /.test(summary) ? summary : `ping: ${summary}`;
  return { reachable: false, detail: r.exitCode === 1 && !said.some((l) => /From |ping:/.test(l)) ? `no reply within ${timeoutMs} ms (${named})` : named };
}

/** The probe program, run by the provider's own node inside the namespace. */
function probeProgram(): string {
  // Compiled beside this file; when run from the TypeScript sources (tests), from dist/.
  const beside = `${__dirname}/probe.js`;
  return fs.existsSync(beside) ? beside : `${__dirname}/../dist/provider/probe.js`;
}

/** How long a namespace's probe process stays after its last probe (then it exits). */
const PROBER_IDLE_MS = 2_000;

/**
 * A long-lived probe process inside one namespace: probes go in as JSON lines on its
 * stdin, results come back as JSON lines with the same id, in any order. One per
 * namespace per provider process, so a run with many probes starts node once per
 * namespace, not once per probe. It exits when its stdin closes: when idle, when its
 * namespace is deleted (closeProbers), or with the provider.
 */
class Prober {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (r: ProbeResult) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }>();
  private nextId = 0;
  private buffer = "";
  private stderr = "";
  private idleTimer?: NodeJS.Timeout;
  readonly exited: Promise<void>;

  constructor(
    readonly netns: Netns,
    private readonly onGone: (p: Prober) => void,
  ) {
    const [command, args] = inNetns(process.execPath, [probeProgram()], netns);
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: { LC_ALL: "C" } });
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => this.receive(chunk));
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-2000)));
    this.child.stdin!.on("error", () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once("error", (err) => this.fail(err.message));
      this.child.once("close", (code, signal) => {
        this.fail(`exited (${signal ?? `status ${code}`})`);
        resolve();
      });
    });
    this.setRef(false);
  }

  /** Runs one probe; `subject` names it in errors. */
  probe(probe: TransportProbe, subject: string): Promise<ProbeResult> {
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // Bounded even if the probe process hangs: its own timeout plus a margin.
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new NslabError("CommandFailed", `${subject}: the probe process gave no answer within ${probe.timeoutMs + PROBE_KILL_MARGIN_MS} ms`));
        this.close();
      }, probe.timeoutMs + PROBE_KILL_MARGIN_MS);
      this.waiting.set(id, {
        resolve,
        reject: (err) => reject(err instanceof NslabError ? err : new NslabError("CommandFailed", `${subject}: the probe process ${String(err)}${this.stderr ? `: ${this.stderr.trim().split("\n").slice(-3).join("; ")}` : ""}`)),
        timer,
      });
      this.setRef(true);
      this.child.stdin!.write(`${JSON.stringify({ id, ...probe })}\n`);
    });
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let newline;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      const { id, reachable, detail } = JSON.parse(line) as { id: number } & ProbeResult;
      const waiter = this.waiting.get(id);
      if (!waiter) continue;
      this.waiting.delete(id);
      clearTimeout(waiter.timer);
      waiter.resolve({ reachable, detail });
    }
    if (this.waiting.size === 0) {
      this.setRef(false);
      this.idleTimer = setTimeout(() => this.close(), PROBER_IDLE_MS);
      this.idleTimer.unref();
    }
  }

  private fail(why: string): void {
    this.onGone(this);
    for (const [id, waiter] of this.waiting) {
      this.waiting.delete(id);
      clearTimeout(waiter.timer);
      waiter.reject(why);
    }
  }

  /** A prober at rest must not keep the provider process alive; one at work must. */
  private setRef(on: boolean): void {
    for (const handle of [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as unknown as { ref(): void; unref(): void }[]) {
      if (on) handle.ref();
      else handle.unref();
    }
  }

  /** Closes its stdin (it exits once its probes are answered); resolves when it has exited. */
  close(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.onGone(this);
    this.child.stdin!.end();
    return this.exited;
  }
}

const probers = new Map<string, Prober>();

/**
 * A TCP connect or a UDP exchange from inside a namespace, bounded in time. Every probe
 * of one namespace goes to that namespace's one probe process (Prober), so many probes
 * cost one process per namespace. On another host (no node needed there), bash:
 * remoteTcpProbe, remoteUdpProbe.
 * Equivalent to: [nsenter --net=/run/netns/NS --] node probe.js  (probes as JSON lines on stdin)
 */
export function transportProbe(probe: TransportProbe, netns: Netns, subject: string): Promise<ProbeResult> {
  // The probe program is this machine's node: another host need not have one. There,
  // bash opens the socket (its /dev/tcp and /dev/udp redirections) instead.
  if (currentHost() !== undefined) return probe.protocol === "tcp" ? remoteTcpProbe(probe, netns, subject) : remoteUdpProbe(probe, netns, subject);
  localOnly("transportProbe");
  const k = key(netns);
  let prober = probers.get(k);
  if (!prober) {
    prober = new Prober(netns, (gone) => {
      if (probers.get(k) === gone) probers.delete(k);
    });
    probers.set(k, prober);
  }
  return prober.probe(probe, subject);
}

/** What bash says when its /dev/tcp connect fails, in the probe program's words. */
const CONNECT_ERRORS: [RegExp, string][] = [
  [/Connection refused/, "connection refused"],
  [/No route to host/, "no route to host (EHOSTUNREACH)"],
  [/Network is unreachable/, "network is unreachable (ENETUNREACH)"],
  [/Operation not permitted|Permission denied/, "refused by a local firewall rule (EPERM)"],
];

/**
 * A TCP connect from inside a namespace of another host, which needs no node there:
 * bash opens the connection (its /dev/tcp redirection) and closes it at once; coreutils
 * timeout bounds it (exit 124). The results read like the probe program's (probe.ts).
 * `--norc`: bash run under sshd (SSH_CLIENT set) reads the user's ~/.bashrc even for
 * `-c` (Debian builds it so), which can take most of the probe's time (a pyenv init:
 * 1.2 to 1.8 s of a 2 s probe).
 * Equivalent to: [nsenter --net=/run/netns/NS --] timeout -k 1 SECONDS bash --norc -c 'exec 3<>"/dev/tcp/$1/$2"' bash TO PORT
 */
async function remoteTcpProbe(probe: TransportProbe, netns: Netns, subject: string): Promise<ProbeResult> {
  const seconds = (probe.timeoutMs / 1000).toFixed(3);
  const [command, args] = inNetns("timeout", ["-k", "1", seconds, "bash", "--norc", "-c", 'exec 3<>"/dev/tcp/$1/$2"', "bash", probe.to, String(probe.port)], netns);
  const r = await runOutcome(command, args, probe.timeoutMs + PROBE_KILL_MARGIN_MS + 1_000, subject);
  if (r.exitCode === 0) return { reachable: true, detail: "connection established" };
  if (r.timedOut || r.exitCode === 124 || r.exitCode === 137) return { reachable: false, detail: `timed out after ${probe.timeoutMs} ms` };
  if (r.exitCode === 125 || r.exitCode === 126 || r.exitCode === 127) {
    throw new NslabError("CommandFailed", `${subject}: the tcp probe${where()} needs bash and timeout (coreutils) there: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  }
  const said = r.stderr.trim().split("\n").pop() ?? "";
  return { reachable: false, detail: CONNECT_ERRORS.find(([pattern]) => pattern.test(r.stderr))?.[1] ?? (said.replace(/^bash: (?:line \d+: )?/, "") || `bash exited ${r.exitCode}`) };
}

/**
 * The udp probe on another host: bash connects a UDP socket (/dev/udp), sends one
 * datagram, and dd reads one datagram back (one read(2) of up to 64 KiB, so it says
 * how many bytes the reply had). A connected socket hears an ICMP port unreachable:
 * dd's read fails "Connection refused". No reply within the timeout: timeout ends it.
 */
const REMOTE_UDP_PROBE = 'exec 3<>"/dev/udp/$1/$2" || exit 3; printf "nslab probe\\n" >&3 || exit 4; exec dd bs=65536 count=1 of=/dev/null <&3';

/**
 * A UDP exchange from inside a namespace of another host, which needs no node there;
 * any reply counts, as in the probe program (probe.ts), and the results read like its.
 * Equivalent to: [nsenter --net=/run/netns/NS --] timeout -k 1 SECONDS bash --norc -c 'exec 3<>"/dev/udp/$1/$2"; printf "nslab probe\n" >&3; exec dd bs=65536 count=1 of=/dev/null <&3' bash TO PORT
 */
async function remoteUdpProbe(probe: TransportProbe, netns: Netns, subject: string): Promise<ProbeResult> {
  const seconds = (probe.timeoutMs / 1000).toFixed(3);
  const [command, args] = inNetns("timeout", ["-k", "1", seconds, "bash", "--norc", "-c", REMOTE_UDP_PROBE, "bash", probe.to, String(probe.port)], netns);
  const r = await runOutcome(command, args, probe.timeoutMs + PROBE_KILL_MARGIN_MS + 1_000, subject);
  const copied = /(\d+) bytes? .*copied/.exec(r.stderr);
  if (r.exitCode === 0 && copied) return { reachable: true, detail: `a reply of ${copied[1]} bytes` };
  if (r.timedOut || r.exitCode === 124 || r.exitCode === 137) return { reachable: false, detail: `no reply within ${probe.timeoutMs} ms` };
  if (r.exitCode === 125 || r.exitCode === 126 || r.exitCode === 127 || (r.exitCode === 0 && !copied)) {
    throw new NslabError("CommandFailed", `${subject}: the udp probe${where()} needs bash, timeout and dd (coreutils) there: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  }
  const said = r.stderr.trim().split("\n").find((line) => /^(?:bash|dd): /.test(line)) ?? "";
  return { reachable: false, detail: CONNECT_ERRORS.find(([pattern]) => pattern.test(r.stderr))?.[1] ?? (said.replace(/^bash: (?:line \d+: )?|^dd: /, "") || `bash exited ${r.exitCode}`) };
}

/** Ends the probe process inside `netns` (before the namespace is deleted). */
export async function closeProbers(netns: string): Promise<void> {
  await probers.get(key(netns))?.close();
}

// ---- processes (Process) --------------------------------------------------------------

/** A process as /proc/PID/stat shows it: its state letter and start time (clock ticks after boot). */
export interface ProcessStat {
  state: string;
  startTime: string;
  /** The process group id. */
  group: string;
  /** The session id: a program nslab started leads its own (setsid). */
  session: string;
}

/** Whether STAT is of a process that has not exited (neither a zombie nor dead). */
export const running = (stat: ProcessStat | undefined): stat is ProcessStat => stat !== undefined && stat.state !== "Z" && stat.state !== "X";

/** The fields of a /proc/PID/stat line that nslab needs. */
function parseStat(text: string): ProcessStat | undefined {
  // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses; fields count from the last ')'.
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).trim().split(" ");
  return fields[19] === undefined ? undefined : { state: fields[0], startTime: fields[19], group: fields[2], session: fields[3] };
}

/**
 * /proc/PID/stat of a process on the current host, or undefined when there is none.
 * Equivalent to: cat /proc/PID/stat
 */
export async function processStat(pid: number): Promise<ProcessStat | undefined> {
  if (currentHost() === undefined) {
    try {
      return parseStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return undefined;
    }
  }
  const r = await remoteOutcome(["cat", "--", `/proc/${pid}/stat`], `process ${pid}${where()}`);
  return r.exitCode === 0 ? parseStat(r.stdout) : undefined;
}

/**
 * Whether PID runs in the namespace now named NAME (on the current host): "other" when
 * that namespace was deleted (and perhaps made anew) while the program kept the old one
 * alive; "unknown" when the program's own namespace cannot be read (it ended meanwhile).
 * Equivalent to: [ "$(stat -L -c %d:%i /proc/PID/ns/net)" = "$(stat -L -c %d:%i /run/netns/NAME)" ]
 */
export async function processNetns(pid: number, name: string): Promise<"same" | "other" | "unknown"> {
  let mine: string | undefined;
  let named: string | undefined;
  if (currentHost() === undefined) {
    try {
      [mine, named] = [nsfsId(`/proc/${pid}/ns/net`), nsfsId(`${NETNS_DIR}/${name}`)];
    } catch {
      return "unknown";
    }
  } else {
    // One line per file that stat could read, in order (and an error for the other).
    const r = await remoteOutcome(["sh", "-c", 'stat -L -c %d:%i "$1" 2>/dev/null || echo -; stat -L -c %d:%i "$2" 2>/dev/null || echo -', "sh", `/proc/${pid}/ns/net`, `${NETNS_DIR}/${name}`], `process ${pid}${where()}`);
    if (r.exitCode !== 0) return "unknown";
    [mine, named] = r.stdout.trim().split("\n").map((l) => (l === "-" ? undefined : l));
  }
  if (mine === undefined) return "unknown";
  return mine === named ? "same" : "other";
}

/** True when PID is the process that started at `startTime` and has not exited (a zombie has), on the current host. */
export async function processAlive(pid: number, startTime: string): Promise<boolean> {
  const stat = await processStat(pid);
  return running(stat) && stat.startTime === startTime;
}

/**
 * The environment variable that marks a program nslab started (Process): its value is
 * the resource's owner string (PROJECT/STACK@BACKEND/Process/NAME). A program keeps it
 * from its first instruction on, so even a program whose create was killed before its
 * pid was returned can be found, and told from anyone else's.
 */
export const PROCESS_MARK = "NSLAB_OWNER";
/**
 * Beside PROCESS_MARK: the Process's stopTimeoutMs, so that a program found by its mark
 * alone (no record: `nslab-orphans --delete`, or a create taking over an earlier one's
 * program) is given the time to stop its resource asked for.
 */
export const PROCESS_STOP_MARK = "NSLAB_STOP_TIMEOUT_MS";

/** A live program found by its PROCESS_MARK. */
export interface MarkedProcess {
  pid: number;
  /** Its start time (/proc/PID/stat field 22): with the pid, its identity. */
  startTime: string;
  /** The owner string its NSLAB_OWNER holds. */
  owner: string;
  /** Its resource's stopTimeoutMs (NSLAB_STOP_TIMEOUT_MS); undefined for a program started without it. */
  stopTimeoutMs?: number;
}

/**
 * On another host, two scripts. The first prints, NUL-separated, each environ file with
 * an NSLAB_OWNER or NSLAB_STOP_TIMEOUT_MS entry and that entry, once per entry (grep -Z:
 * a value holding a newline cannot pass for another file). The second prints the stat
 * of each pid given that belongs to the SSH user (a mark set by anyone else is not
 * nslab's), each followed by a NUL.
 */
const REMOTE_MARKED = `grep -azoHZ -e '^${PROCESS_MARK}=.*' -e '^${PROCESS_STOP_MARK}=[0-9]*$' /proc/[0-9]*/environ 2>/dev/null; exit 0`;
const REMOTE_STATS = `me=$(id -u); for p; do [ "$(stat -c %u "/proc/$p" 2>/dev/null)" = "$me" ] && cat "/proc/$p/stat" 2>/dev/null && printf '\\0'; done; exit 0`;

/**
 * The live (not exited) programs on the current host that nslab started, found by
 * their NSLAB_OWNER (PROCESS_MARK), running as this user (here: the provider's; on
 * another host: the SSH user) and leading their own session (setsid: the children they
 * start inherit the variable, and are not listed while their leader runs; once it has
 * ended, they are), with their owner strings and stop timeouts (NSLAB_STOP_TIMEOUT_MS,
 * when they were started with one).
 * Equivalent to: grep -azoHZ -e '^NSLAB_OWNER=.*' -e '^NSLAB_STOP_TIMEOUT_MS=[0-9]*$' /proc/[0-9]*\/environ, and each one's /proc/PID/stat
 */
export async function markedProcesses(): Promise<MarkedProcess[]> {
  const owners = new Map<number, string>();
  const stopTimeouts = new Map<number, number>();
  const stats: string[] = [];
  const prefix = `${PROCESS_MARK}=`;
  const stopPrefix = `${PROCESS_STOP_MARK}=`;
  const noteStop = (pid: number, entry: string | undefined) => {
    const ms = entry?.startsWith(stopPrefix) ? /^\d{1,9}$/.exec(entry.slice(stopPrefix.length))?.[0] : undefined;
    if (ms !== undefined) stopTimeouts.set(pid, Number(ms));
  };
  if (currentHost() !== undefined) {
    const subject = `processes${where()}`;
    const r = await remoteOutcome(["sh", "-c", REMOTE_MARKED], subject);
    if (r.exitCode !== 0) throw new NslabError("CommandFailed", `cannot list the processes${where()}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    // FILE \0 MATCH \0 FILE \0 MATCH \0 ...
    const parts = r.stdout.split("\0");
    for (let i = 0; i + 1 < parts.length; i += 2) {
      const pid = /^\/proc\/(\d+)\/environ$/.exec(parts[i])?.[1];
      if (pid && parts[i + 1].startsWith(prefix)) owners.set(Number(pid), parts[i + 1].slice(prefix.length));
      else if (pid) noteStop(Number(pid), parts[i + 1]);
    }
    if (owners.size) {
      const s = await remoteOutcome(["sh", "-c", REMOTE_STATS, "sh", ...[...owners.keys()].map(String)], subject);
      stats.push(...s.stdout.split("\0"));
    }
  } else {
    const me = process.getuid?.();
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (fs.statSync(`/proc/${entry}`).uid !== me) continue;
        const environ = fs.readFileSync(`/proc/${entry}/environ`, "latin1").split("\0");
        const mark = environ.find((v) => v.startsWith(prefix));
        if (!mark) continue;
        owners.set(Number(entry), Buffer.from(mark.slice(prefix.length), "latin1").toString("utf8"));
        noteStop(Number(entry), environ.find((v) => v.startsWith(stopPrefix)));
        stats.push(fs.readFileSync(`/proc/${entry}/stat`, "utf8"));
      } catch {
        // gone meanwhile
      }
    }
  }
  const live = stats
    .map((line) => ({ pid: Number(/^(\d+) \(/.exec(line)?.[1]), stat: parseStat(line) }))
    .filter((p): p is { pid: number; stat: ProcessStat } => owners.has(p.pid) && running(p.stat));
  // The program itself, which leads the session setsid gave it; and what it started and
  // left running when it ended (its session's leader gone), which nothing else would stop.
  const leaders = new Set(live.filter((p) => p.stat.session === String(p.pid)).map((p) => p.stat.session));
  // Here a leader is looked at directly (it may have lost its mark: a process title
  // written over its environment); on another host, only the marked ones are known.
  const leaderLives = (sid: string) => {
    if (leaders.has(sid)) return true;
    if (currentHost() !== undefined) return false;
    try {
      const stat = parseStat(fs.readFileSync(`/proc/${sid}/stat`, "utf8"));
      return running(stat) && stat.session === sid;
    } catch {
      return false;
    }
  };
  return live
    .filter((p) => p.stat.session === String(p.pid) || !leaderLives(p.stat.session))
    .map(({ pid, stat }) => ({ pid, startTime: stat.startTime, owner: owners.get(pid)!, ...(stopTimeouts.has(pid) ? { stopTimeoutMs: stopTimeouts.get(pid) } : {}) }));
}

/** How a program is started: where, its log, its marks (PROCESS_MARK, PROCESS_STOP_MARK), and the subject of errors. */
export interface SpawnOptions {
  cwd: string;
  logFile: string;
  subject: string;
  owner: string;
  stopTimeoutMs: number;
}

/** A started process: its identity, and how long its log was before it started (its own output comes after). */
export interface Started {
  pid: number;
  startTime: string;
  logStart: number;
}

/**
 * On another host, one script: the cwd entered, the log opened for appending (and its
 * size printed), the program started detached, its pid and /proc/PID/stat printed. A
 * background command of a shell without job control is not a process group leader, so
 * setsid(1) calls setsid(2) and execs, without forking: $! is the program's pid (nsenter
 * execs it too). The stat is read by the shell itself (read, no fork: a shell reaps
 * children, the background one too, when it waits for a command it forked), so a
 * program that exited at once is still there as a zombie (processAlive: exited).
 */
const REMOTE_SPAWN = `cd -- "$1" || exit 3; log=$2; owner=$3; stop=$4; shift 4; true >>"$log" || exit 4; wc -c <"$log"; ${PROCESS_MARK}=$owner ${PROCESS_STOP_MARK}=$stop setsid "$@" </dev/null >>"$log" 2>&1 & p=$!; echo "$p"; read -r s <"/proc/$p/stat" && printf '%s\\n' "$s"; exit 0`;

/**
 * Starts a long-running program inside a namespace of the current host, detached (its
 * own session, so it outlives the provider process and the SSH shell that started it),
 * stdin from /dev/null and stdout/stderr appended to `logFile`. nsenter enters the
 * namespace and execs the program, so the pid returned is the program's. Returns its
 * pid and start time, which together identify it.
 * Equivalent to: cd CWD && setsid [nsenter --net=/run/netns/NS --] ARGV... </dev/null >>LOG 2>&1 &
 */
export async function spawnDetached(argv: string[], netns: Netns, options: SpawnOptions): Promise<Started> {
  const [command, args] = inNetns(argv[0], argv.slice(1), netns);
  if (currentHost() !== undefined) return spawnRemote([command, ...args], options);
  // Said as on another host: a missing cwd made spawn fail with "nsenter ENOENT".
  if (!fs.statSync(options.cwd, { throwIfNoEntry: false })?.isDirectory()) {
    throw new NslabError("NotFound", `${options.subject}: cwd "${options.cwd}" is not a folder it can enter. Create it, or give another cwd.`);
  }
  const logStart = fs.existsSync(options.logFile) ? fs.statSync(options.logFile).size : 0;
  let log: number;
  try {
    log = fs.openSync(options.logFile, "a");
  } catch (err) {
    throw new NslabError("CommandFailed", `${options.subject}: cannot append to log file "${options.logFile}" (${(err as Error).message}). Give a logFile in a folder that exists.`);
  }
  try {
    const child = spawn(command, args, { cwd: options.cwd, detached: true, stdio: ["ignore", log, log], env: { ...process.env, [PROCESS_MARK]: options.owner, [PROCESS_STOP_MARK]: String(options.stopTimeoutMs) } });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once("error", (err) => reject(new NslabError("CommandFailed", `${options.subject}: cannot start ${[command, ...args].join(" ")}: ${err.message}`)));
      child.once("spawn", () => resolve(child.pid!));
    });
    child.unref();
    const stat = await processStat(pid);
    if (!stat) throw new NslabError("CommandFailed", `${options.subject}: ${argv.join(" ")} exited at once; see ${options.logFile}`);
    return { pid, startTime: stat.startTime, logStart };
  } finally {
    fs.closeSync(log);
  }
}

async function spawnRemote(argv: string[], options: SpawnOptions): Promise<Started> {
  const r = await remoteScript(REMOTE_SPAWN, [options.cwd, options.logFile, options.owner, String(options.stopTimeoutMs), ...argv], options.subject);
  const said = r.stderr.trim().split("\n").pop() || `exit ${r.exitCode}`;
  if (r.exitCode === 3) throw new NslabError("NotFound", `${options.subject}: cwd "${options.cwd}" is not a folder it can enter${where()} (${said}). Create it there, or give another cwd.`);
  if (r.exitCode === 4) throw new NslabError("CommandFailed", `${options.subject}: cannot append to log file "${options.logFile}"${where()} (${said}). Give a logFile in a folder that exists there.`);
  const [size, pid, statLine] = r.stdout.split("\n");
  if (r.exitCode !== 0 || !/^\d+$/.test(pid ?? "")) {
    throw new NslabError("CommandFailed", `${options.subject}: cannot start ${argv.join(" ")}${where()}: ${said}; see ${options.logFile} there`);
  }
  // No stat: it exited, and was reaped, before the script looked (a shell other than
  // dash may reap in the background). Its start time is then none that a live process
  // has: it reads as exited, and is never signalled; create reports its log.
  const stat = statLine ? parseStat(statLine) : undefined;
  return { pid: Number(pid), startTime: stat?.startTime ?? "exited", logStart: Number(size.trim()) || 0 };
}

/**
 * On another host: the start time is compared and the signal sent in one script (the
 * stat's fields after COMM: $4 is the state, ${23} the start time, field 22).
 */
const REMOTE_SIGNAL = `set -f; g=$4; s=$(cat "/proc/$1/stat" 2>/dev/null) || exit 1; set -- "$1" "$2" "$3" \${s##*") "}; [ "$4" != Z ] && [ "$4" != X ] && [ "\${23}" = "$2" ] || exit 1; kill -s "$3" -- "$g$1"`;

/**
 * Sends `signal` to PID on the current host only while it is still the process that
 * started at `startTime`; false when it is not (gone, or the pid is another's now).
 * With GROUP, to its whole process group (PID leads it: setsid), the programs it
 * started with it.
 * Equivalent to: [ START = $(field 22 of /proc/PID/stat) ] && kill -s SIGNAL -- [-]PID
 */
export async function signalProcess(pid: number, startTime: string, signal: NodeJS.Signals, group = false): Promise<boolean> {
  if (currentHost() !== undefined) {
    const r = await remoteScript(REMOTE_SIGNAL, [String(pid), startTime, signal.replace(/^SIG/, ""), group ? "-" : ""], `process ${pid}${where()}`);
    return r.exitCode === 0;
  }
  if (!(await processAlive(pid, startTime))) return false;
  try {
    process.kill(group ? -pid : pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * On another host: each process of session $1 (whose environment holds NSLAB_OWNER=$2,
 * when $2 is not empty), as "PID START PGRP" (the stat's fields after COMM: $4 is the
 * session, $3 the process group, \${20} the start time). No process per entry but grep's.
 */
const REMOTE_SESSION = `s=$1; m=$2; for d in /proc/[0-9]*; do read -r st 2>/dev/null <"$d/stat" || continue; set -- \${st##*") "}; [ "$4" = "$s" ] && [ "$1" != Z ] || continue; if [ -n "$m" ]; then tr '\\0' '\\n' 2>/dev/null <"$d/environ" | grep -qxF -e "${PROCESS_MARK}=$m" || continue; fi; echo "\${d#/proc/} \${20} $3"; done; exit 0`;

/** A live member of a session: its identity and its process group. */
export interface SessionMember {
  pid: number;
  startTime: string;
  pgrp: number;
}

/**
 * The live processes of session SID on the current host (the session a program nslab
 * started leads, setsid: the programs it started, in its process group or in groups of
 * their own), with OWNER only those carrying that mark (PROCESS_MARK), which they
 * inherit. A session id is no new process's while a member lives.
 * Equivalent to: for each /proc/PID with field 6 of its stat = SID [and NSLAB_OWNER=OWNER in its environ]: PID, field 22, field 5
 */
export async function sessionMembers(sid: number, owner?: string): Promise<SessionMember[]> {
  if (currentHost() !== undefined) {
    const subject = `processes of session ${sid}${where()}`;
    const r = await remoteOutcome(["sh", "-c", REMOTE_SESSION, "sh", String(sid), owner ?? ""], subject);
    if (r.exitCode !== 0) throw new NslabError("CommandFailed", `cannot list the ${subject}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return r.stdout
      .split("\n")
      .map((l) => /^(\d+) (\d+) (\d+)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), startTime: m[2], pgrp: Number(m[3]) }));
  }
  const mark = owner === undefined ? undefined : `${PROCESS_MARK}=${owner}`;
  const found: SessionMember[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = parseStat(fs.readFileSync(`/proc/${entry}/stat`, "utf8"));
      if (!running(stat) || stat.session !== String(sid)) continue;
      if (mark !== undefined && !fs.readFileSync(`/proc/${entry}/environ`).toString("utf8").split("\0").includes(mark)) continue;
      found.push({ pid: Number(entry), startTime: stat.startTime, pgrp: Number(stat.group) });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * A file's content from byte `from` on (a process's log), on the current host;
 * undefined when there is no such file. `subject` names the resource that reads it in
 * an error (the host not reached).
 * Equivalent to: tail -c +FROM+1 -- FILE
 */
export async function readFileFrom(file: string, from: number, subject = `file ${file}${where()}`): Promise<string | undefined> {
  if (currentHost() === undefined) {
    try {
      return fs.readFileSync(file).subarray(from).toString("utf8");
    } catch {
      return undefined;
    }
  }
  const r = await remoteOutcome(["tail", "-c", `+${from + 1}`, "--", file], subject);
  return r.exitCode === 0 ? r.stdout : undefined;
}

// ---- cross-process lock per namespace ---------------------------------------------------

/** Longest wait for another process's lock on a namespace before giving up. */
const LOCK_WAIT_S = 60;

/** The namespace's nsfs file: /run/netns/NS, or /proc/self/ns/net for the program's. */
function netnsFile(netns: Netns): string {
  return netns === undefined ? "/proc/self/ns/net" : `${NETNS_DIR}/${netns}`;
}

/**
 * Runs `work` holding an exclusive lock on the namespace, shared by every nslab
 * process on the machine: flock(2) on the namespace's own nsfs file, so the lock is
 * keyed by the namespace itself (two sandboxes with equal names never meet), needs no
 * file on disk, and is released by the kernel when its holder dies. Node has no
 * flock(), so a child holds it (`sh` opening the file, `flock` on that descriptor, then
 * `cat`): it echoes a line once locked and exits when its stdin closes, which also
 * happens when this process is killed. A missing namespace is an error, never a file made.
 * Equivalent to: sh -c 'exec 3</run/netns/NS; flock -w 60 3; <work>' 
 */
export async function withNetnsLock<T>(netns: Netns, subject: string, work: () => Promise<T>): Promise<T> {
  const { execa } = await import("execa");
  // On another host the lock is taken there (the namespace's file is there), over ssh.
  // The file is opened without O_CREAT (`flock FILE` would make a missing namespace's
  // /run/netns/NAME as a plain file, which then blocks `ip netns add NAME`): sh opens it
  // as fd 3 (`command`: a failed open returns instead of ending the shell), flock locks
  // that descriptor, and cat, inheriting it, holds the lock.
  const [program, argv] = await placed("sh", ["-c", `command exec 3<"$1" || exit 66; flock -w ${LOCK_WAIT_S} 3 || exit $?; exec cat`, "sh", netnsFile(netns)], subject);
  const holder = execa(program, argv, {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    reject: false,
    env: { LC_ALL: "C" },
  });
  const locked = new Promise<void>((resolve, reject) => {
    holder.stdout!.once("data", () => resolve());
    holder.then((r) => {
      const stderr = String(r.stderr).trim();
      const why =
        r.exitCode === 66 ? `it does not exist (${stderr || netnsFile(netns)})`
        : r.exitCode === 127 ? `flock is not installed (util-linux)${stderr ? `: ${stderr}` : ""}`
        : `flock exited ${r.exitCode}: ${stderr || `no lock within ${LOCK_WAIT_S} s`}`;
      reject(new NslabError("CommandFailed", `${subject}: cannot lock ${netns === undefined ? "the program's namespace" : `namespace "${netns}"`}${where()}: ${why}`));
    });
  });
  holder.stdin!.write("locked\n");
  try {
    await locked;
    return await work();
  } finally {
    holder.stdin!.end();
    await holder;
  }
}

// ---- records kept beside the kernel's state ----------------------------------------------

/** Where nslab keeps what it must restore later (a tmpfs: gone at reboot, like sysctls). */
export const RECORD_DIR = "/run/nslab";

/**
 * The namespace's identity for records: its nsfs inode number, which is unique among
 * live namespaces (names are not: two sandboxes both have a "ns1"); undefined when the
 * namespace does not exist.
 */
function netnsInode(netns: Netns): string | undefined {
  try {
    return String(fs.statSync(netnsFile(netns)).ino);
  } catch {
    return undefined;
  }
}

const recordPath = (inode: string, name: string) => `${RECORD_DIR}/netns-${inode}/${name}.json`;

/** Reads a record kept for the namespace (see writeRecord); undefined when there is none. */
export function readRecord<T>(netns: Netns, name: string): T | undefined {
  localOnly("readRecord");
  const inode = netnsInode(netns);
  if (inode === undefined) return undefined;
  try {
    return JSON.parse(fs.readFileSync(recordPath(inode, name), "utf8")) as T;
  } catch {
    return undefined;
  }
}

/**
 * Keeps a small JSON record for the namespace under /run/nslab/netns-INODE/NAME.json,
 * written atomically (temporary file, then rename), so that it survives the loss of
 * Pulumi's state (a killed run) but not a reboot.
 */
export function writeRecord(netns: Netns, name: string, value: unknown, subject: string): void {
  localOnly("writeRecord");
  const inode = netnsInode(netns);
  if (inode === undefined) throw new NslabError("NotFound", `${subject}: the namespace is gone, nothing to record`);
  const file = recordPath(inode, name);
  try {
    fs.mkdirSync(`${RECORD_DIR}/netns-${inode}`, { recursive: true, mode: 0o755 });
    fs.writeFileSync(`${file}.${process.pid}`, JSON.stringify(value) + "\n");
    fs.renameSync(`${file}.${process.pid}`, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM") throw new NslabError("Permission", `${subject}: cannot write ${file}: ${(err as Error).message}. ${RECORDS_NEED}`);
    throw new NslabError("CommandFailed", `${subject}: cannot write ${file}: ${(err as Error).message}`);
  }
}

/** Removes a record (and its folder when empty); absent is fine. */
export function removeRecord(netns: Netns, name: string): void {
  localOnly("removeRecord");
  const inode = netnsInode(netns);
  if (inode === undefined) return;
  fs.rmSync(recordPath(inode, name), { force: true });
  // A writer killed between its temporary file and the rename (writeRecord: NAME.json.PID)
  // left that file: it goes with the record once its process is gone (else the folder
  // stayed after destroy).
  const dir = `${RECORD_DIR}/netns-${inode}`;
  const temporary = `${name}.json.`;
  const files = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  for (const file of files.filter((f) => f.startsWith(temporary))) {
    const pid = file.slice(temporary.length);
    if (/^\d+$/.test(pid) && !fs.existsSync(`/proc/${pid}`)) fs.rmSync(`${dir}/${file}`, { force: true });
  }
  try {
    fs.rmdirSync(dir);
  } catch {
    // Not empty (another record) or already gone.
  }
}

/**
 * Records that the resource tagged `owner` is about to create `object` ("netns-NAME",
 * "link-NAME") in `netns`, before the command that makes it: the kernel cannot mark an
 * object in the same step that creates it (an alias is set after `ip link add`, a
 * namespace's lo after `ip netns add`), so a run killed in between leaves an unmarked
 * object. The next create of the same resource finds this record (intended()) and takes
 * the object over instead of refusing it. Removed by intentDone() once marked. `by` is
 * the resource's owner string (PROJECT/STACK@BACKEND/KIND/NAME), for nslab-orphans.
 */
export async function intend(netns: Netns, object: string, owner: string, subject: string, by?: string): Promise<void> {
  await hostWriteRecord(netns, `intent-${object}`, { owner, by }, subject);
}

/** The owner tag of a pending intent() for `object`, if any. */
export async function intended(netns: Netns, object: string): Promise<string | undefined> {
  return (await intentRecord(netns, object))?.owner;
}

/** A pending intent() for `object`: the owner tag, and the owner string of the resource that wrote it. */
export interface IntentRecord {
  owner?: string;
  by?: string;
}

/** The pending intent() for `object`, if any, whole (see intentRestore). */
export function intentRecord(netns: Netns, object: string): Promise<IntentRecord | undefined> {
  return hostReadRecord<IntentRecord>(netns, `intent-${object}`);
}

/**
 * Undoes a refused create's intent(): puts back the record it overwrote when that was
 * another resource's (left by its killed create, which takes its object over with it),
 * else removes it.
 */
export async function intentRestore(netns: Netns, object: string, earlier: IntentRecord | undefined, tag: string, subject: string): Promise<void> {
  if (earlier?.owner && earlier.owner !== tag) await intend(netns, object, earlier.owner, subject, earlier.by);
  else await intentDone(netns, object);
}

/** Drops the intent() for `object`: it is marked now, or was not made. */
export async function intentDone(netns: Netns, object: string): Promise<void> {
  await hostRemoveRecord(netns, `intent-${object}`);
}

/** Names (without .json) of the namespace's records that start with `prefix`. */
export function listRecordNames(netns: Netns, prefix: string): string[] {
  const inode = netnsInode(netns);
  if (inode === undefined) return [];
  try {
    return fs.readdirSync(`${RECORD_DIR}/netns-${inode}`).filter((n) => n.startsWith(prefix) && n.endsWith(".json")).map((n) => n.slice(0, -".json".length));
  } catch {
    return [];
  }
}

/** Every record of the namespace whose name starts with `prefix`. */
export function listRecords<T>(netns: Netns, prefix: string): T[] {
  const inode = netnsInode(netns);
  if (inode === undefined) return [];
  let names: string[];
  try {
    names = fs.readdirSync(`${RECORD_DIR}/netns-${inode}`);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(prefix) && n.endsWith(".json")).flatMap((n) => {
    const record = readRecord<T>(netns, n.slice(0, -".json".length));
    return record === undefined ? [] : [record];
  });
}

// ---- records on the current host ----------------------------------------------------------
//
// The functions above work on this machine's /run/nslab (the stack's own bookkeeping,
// owned.ts, stays here). Records about objects on a host (intents, the values a switch
// had) are kept on that host, next to the objects, keyed by its namespaces' inodes: the
// same layout there, written by one small script each over the host's SSH master.

/** The folder of a namespace's records on the remote host, from its file ("$1"). */
const REMOTE_RECORD_DIR = `ino=$(stat -L -c %i -- "$1" 2>/dev/null) || exit 3; d=${RECORD_DIR}/netns-$ino`;

/** runs `sh -c SCRIPT sh ARGS...` on the current (remote) host. */
function remoteScript(script: string, args: string[], subject: string): Promise<Outcome> {
  return remoteOutcome(["sh", "-c", script, "sh", ...args], subject);
}

/** readRecord, on the current host. */
export async function hostReadRecord<T>(netns: Netns, name: string): Promise<T | undefined> {
  if (currentHost() === undefined) return readRecord<T>(netns, name);
  const r = await remoteScript(`${REMOTE_RECORD_DIR}; cat -- "$d/$2.json"`, [netnsFile(netns), name], `record ${name}${where()}`);
  if (r.exitCode !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    return undefined;
  }
}

/**
 * The command that writes a record on another host (a temporary file, then rename, as
 * here). Another lane may remove the folder (its last record went) between mkdir and
 * the write: then the write is tried again, as the folder is made again. Exits 3 when
 * the namespace is gone.
 */
function recordWriteArgv(netns: Netns, name: string, value: unknown): string[] {
  const script = `${REMOTE_RECORD_DIR}; for try in 1 2 3 4 5; do mkdir -p -m 755 -- "$d" && printf '%s\\n' "$3" 2>/dev/null > "$d/$2.json.$$" && mv -f -- "$d/$2.json.$$" "$d/$2.json" && exit 0; done; echo "cannot write $d/$2.json" >&2; exit 1`;
  return ["sh", "-c", script, "sh", netnsFile(netns), name, JSON.stringify(value)];
}

/** The command that removes a namespace's records folder on another host; never fails (nothing to remove when the namespace is gone). */
function recordsDropArgv(name: string): string[] {
  return ["sh", "-c", `( ${REMOTE_RECORD_DIR}; rm -rf -- "$d" ); exit 0`, "sh", netnsFile(name)];
}

/** The command that removes a record on another host (and its folder, once empty); never fails. */
function recordRemoveArgv(netns: Netns, name: string): string[] {
  // As here: a killed writer's temporary file (NAME.json.PID) goes once its process is gone.
  return ["sh", "-c", `${REMOTE_RECORD_DIR}; rm -f -- "$d/$2.json"; for t in "$d/$2.json."*; do [ -e "$t" ] && ! [ -e "/proc/\${t##*.}" ] && rm -f -- "$t"; done; rmdir -- "$d" 2>/dev/null; exit 0`, "sh", netnsFile(netns), name];
}

/** writeRecord, on the current host. */
export async function hostWriteRecord(netns: Netns, name: string, value: unknown, subject: string): Promise<void> {
  if (currentHost() === undefined) return writeRecord(netns, name, value, subject);
  const r = await remoteOutcome(recordWriteArgv(netns, name, value), subject);
  if (r.exitCode !== 0) throw recordWriteError(r.exitCode, r.stderr, name, subject);
}

/** Why recordWriteArgv's command failed (exit 3: the namespace is gone); exported for tests. */
export function recordWriteError(exitCode: number, stderr: string, name: string, subject: string): NslabError {
  if (exitCode === 3) return new NslabError("NotFound", `${subject}: the namespace is gone${where()}, nothing to record`);
  // The write is tried five times: each try's words once.
  const said = [...new Set(stderr.trim().split("\n").filter(Boolean))].join("; ");
  if (/Permission denied|Operation not permitted/.test(said)) {
    return new NslabError("Permission", `${subject}: cannot write ${RECORD_DIR}/.../${name}.json${where()}: ${said}. ${RECORDS_NEED}`);
  }
  return new NslabError("CommandFailed", `${subject}: cannot write ${RECORD_DIR}/.../${name}.json${where()}: ${said || `exit ${exitCode}`}`);
}

/** What a user who cannot write nslab's records is told. */
const RECORDS_NEED = `nslab keeps small records of what it makes under ${RECORD_DIR} and makes namespaces under ${NETNS_DIR}, which only root may write by default: run it as root (on another host: log in as root there), or give the user write access to both folders and the CAP_NET_ADMIN and CAP_SYS_ADMIN capabilities.`;

/** removeRecord, on the current host. */
export async function hostRemoveRecord(netns: Netns, name: string): Promise<void> {
  if (currentHost() === undefined) return removeRecord(netns, name);
  await remoteOutcome(recordRemoveArgv(netns, name), `record ${name}${where()}`);
}

/** A record found by hostListRecords: the namespace it is about, its name (without .json) and content. */
export interface FoundRecord<T> {
  netns: Netns;
  name: string;
  record: T;
}

/**
 * Every record whose name starts with one of `prefixes`, of every namespace on the
 * current host (the host's own namespace first). On another host, one script.
 * Equivalent to: for each /run/netns/NS: cat /run/nslab/netns-$(stat -L -c %i NS)/PREFIX*.json
 */
export async function hostListRecords<T>(prefixes: string[]): Promise<FoundRecord<T>[]> {
  const found: FoundRecord<T>[] = [];
  if (currentHost() === undefined) {
    for (const netns of [undefined, ...netnsList()]) {
      for (const prefix of prefixes) {
        for (const name of listRecordNames(netns, prefix)) {
          const record = readRecord<T>(netns, name);
          if (record !== undefined) found.push({ netns, name, record });
        }
      }
    }
    return found;
  }
  // One line per record: the namespace's file, the record's name, its JSON (one line).
  const script = `for f in /proc/self/ns/net ${NETNS_DIR}/*; do ino=$(stat -L -c %i -- "$f" 2>/dev/null) || continue; for p in "$@"; do for r in ${RECORD_DIR}/netns-$ino/"$p"*.json; do [ -f "$r" ] || continue; n=\${r##*/}; printf '%s\\t%s\\t' "$f" "\${n%.json}"; tr -d '\\n' < "$r"; echo; done; done; done`;
  const r = await remoteScript(script, prefixes, `records${where()}`);
  if (r.exitCode !== 0) throw new NslabError("CommandFailed", `records${where()}: cannot list ${RECORD_DIR}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  for (const line of r.stdout.split("\n")) {
    const [file, name, json] = line.split("\t");
    if (json === undefined) continue;
    try {
      found.push({ netns: file === "/proc/self/ns/net" ? undefined : file.slice(NETNS_DIR.length + 1), name, record: JSON.parse(json) as T });
    } catch {
      // a record being written: not one yet
    }
  }
  return found;
}

/** Removes every record of a namespace (it is being deleted), on this machine (another host's: recordsDropArgv). */
function removeRecordsHere(name: string): void {
  const inode = netnsInode(name);
  if (inode !== undefined) fs.rmSync(`${RECORD_DIR}/netns-${inode}`, { recursive: true, force: true });
}
