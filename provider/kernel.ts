/**
 * The one door to the kernel. Every `ip`, `nft`, `sysctl` and `nsenter` call nslab
 * makes goes through this module: argument arrays (never a shell), a timeout, and errors
 * built in one place (errors.ts). `ip` commands go to a long-lived `ip -batch` process
 * per namespace (ipsession.ts); `nft` and `sysctl` are run with execa, which nothing
 * else imports. execa (ESM, with its dependencies) takes about 40 ms to load, so it is
 * loaded when the first of those runs, not with the provider.
 *
 * It also holds the per-process snapshot cache: one `ip -details -json addr show`, one
 * `ip -json route show table all` and one `nft -j list table` per namespace, shared by
 * every resource read in the same run and dropped whenever nslab itself writes.
 */
import * as fs from "node:fs";
import { commandError, NslabError } from "./errors";
import { closeSessions, NETNS_DIR, runIp } from "./ipsession";

/** Upper bound for one command; a hung `ip` must not hang `pulumi up`. */
const COMMAND_TIMEOUT_MS = 30_000;
export { NETNS_DIR };

/** A namespace name, or undefined for the namespace the program (provider) runs in. */
export type Netns = string | undefined;

/** How an object is named in messages: `veth "a" in namespace "ns1"`. */
export function describe(what: string, name: string, netns: Netns): string {
  return `${what} "${name}" in ${netns ? `namespace "${netns}"` : "the program's namespace"}`;
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
const key = (netns: Netns) => netns ?? "";

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
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
  addr_info?: { family: string; local: string; prefixlen: number; scope?: string }[];
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
}

/**
 * Every route of `netns`, IPv4 and IPv6, all tables, from one cached snapshot.
 * Equivalent to: ip [-n NS] -json route show table all
 */
export function routes(netns: Netns): Promise<RouteJson[]> {
  return snapshot(netns, "routes", () => ipJson<RouteJson[]>(["route", "show", "table", "all"], netns, describe("routes", "*", netns)));
}

/**
 * One interface, read fresh (used to verify after writing); undefined when absent.
 * Equivalent to: ip [-n NS] -details -json addr show dev NAME
 */
export async function link(name: string, netns: Netns): Promise<LinkJson | undefined> {
  if (netns !== undefined && !netnsExists(netns)) return undefined;
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
async function ipRun(commands: string[][], netns: Netns, subject: string, family?: "-4" | "-6"): Promise<string[]> {
  const { outputs, failure } = await runIp(commands, netns, family);
  if (failure) {
    const command = printable(commands[failure.index], netns, family);
    if (failure.timedOut) throw new NslabError("CommandFailed", `${subject}: ${command} ${failure.text}`);
    if (failure.exitCode === 127) throw new NslabError("CommandFailed", `${subject}: ip is not installed (run scripts/setup)`);
    throw commandError(subject, command, failure.text, failure.exitCode);
  }
  return outputs;
}

/** The JSON a show command printed (one line; an empty list when it printed none). */
const parseJson = <T>(text: string): T => {
  const line = text.split("\n").find((l) => l.startsWith("[") || l.startsWith("{"));
  return (line === undefined ? [] : JSON.parse(line)) as T;
};

/** Runs `ip [-n NS] [-4|-6] ARGS` (a write: the namespace's snapshot is dropped). */
export async function ip(args: string[], netns: Netns, subject: string, family?: "-4" | "-6"): Promise<string> {
  invalidate(netns);
  try {
    return (await ipRun([args], netns, subject, family))[0];
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
 * session. Show commands are those whose second word is "show".
 */
export async function ipBatchRead<T = unknown>(commands: string[][], netns: Netns, subject: string, family?: "-4" | "-6"): Promise<T[]> {
  invalidate(netns);
  try {
    const outputs = await ipRun(commands, netns, subject, family);
    return outputs.filter((_out, i) => commands[i][1] === "show").map((out) => parseJson<T>(out));
  } finally {
    invalidate(netns);
  }
}

/** Creates a named namespace: ip netns add NAME. */
export async function netnsAdd(name: string, subject: string): Promise<void> {
  await ip(["netns", "add", name], undefined, subject);
}

/**
 * Deletes a named namespace: ip netns delete NAME. nslab's own ip sessions inside it
 * are closed first, so that nothing of nslab's keeps the namespace alive.
 */
export async function netnsDelete(name: string, subject: string): Promise<void> {
  await closeSessions(name);
  // Records kept for it die with it (its inode number may be reused by a later one).
  const inode = netnsInode(name);
  if (inode !== undefined) fs.rmSync(`${RECORD_DIR}/netns-${inode}`, { recursive: true, force: true });
  await ip(["netns", "delete", name], undefined, subject);
}

// ---- namespaces -------------------------------------------------------------------------

/** True when /run/netns/NAME exists. */
export function netnsExists(name: string): boolean {
  return fs.existsSync(`${NETNS_DIR}/${name}`);
}

/**
 * True when /run/netns/NAME exists but is not a namespace: `ip netns add` creates the
 * file, then bind-mounts the new namespace on it (and `ip netns delete` unmounts, then
 * unlinks), so an `ip` killed in between leaves a plain empty file. Told apart by its
 * device: a namespace file is on nsfs, like /proc/self/ns/net.
 */
export function netnsHalfMade(name: string): boolean {
  try {
    return fs.statSync(`${NETNS_DIR}/${name}`).dev !== fs.statSync("/proc/self/ns/net").dev;
  } catch {
    return false;
  }
}

/** Names of the namespaces in /run/netns. */
export function netnsList(): string[] {
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

// ---- sysctl -----------------------------------------------------------------------------

/** Reads a sysctl: [nsenter --net=NS] sysctl -n KEY */
export async function sysctlRead(name: string, netns: Netns, subject: string): Promise<string> {
  const [command, args] = inNetns("sysctl", ["-n", name], netns);
  return (await run(command, args, { subject })).trim();
}

/** Writes a sysctl: [nsenter --net=NS] sysctl -w KEY=VALUE */
export async function sysctlWrite(name: string, value: string, netns: Netns, subject: string): Promise<void> {
  const [command, args] = inNetns("sysctl", ["-q", "-w", `${name}=${value}`], netns);
  invalidate(netns);
  await run(command, args, { subject });
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
 * flock(), so a `flock FILE cat` child holds it: it echoes a line once locked and
 * exits when its stdin closes, which also happens when this process is killed.
 * Equivalent to: flock -w 60 /run/netns/NS <work>
 */
export async function withNetnsLock<T>(netns: Netns, subject: string, work: () => Promise<T>): Promise<T> {
  const { execa } = await import("execa");
  const holder = execa("flock", ["-w", String(LOCK_WAIT_S), netnsFile(netns), "cat"], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    reject: false,
    env: { LC_ALL: "C" },
  });
  const locked = new Promise<void>((resolve, reject) => {
    holder.stdout!.once("data", () => resolve());
    holder.then((r) => {
      const why = r.exitCode === undefined && /ENOENT/.test(String(r.message)) ? "flock is not installed (util-linux)" : `flock exited ${r.exitCode}: ${String(r.stderr).trim() || `no lock within ${LOCK_WAIT_S} s`}`;
      reject(new NslabError("CommandFailed", `${subject}: cannot lock ${netns === undefined ? "the program's namespace" : `namespace "${netns}"`}: ${why}`));
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
  const inode = netnsInode(netns);
  if (inode === undefined) throw new NslabError("NotFound", `${subject}: the namespace is gone, nothing to record`);
  const file = recordPath(inode, name);
  try {
    fs.mkdirSync(`${RECORD_DIR}/netns-${inode}`, { recursive: true, mode: 0o755 });
    fs.writeFileSync(`${file}.${process.pid}`, JSON.stringify(value) + "\n");
    fs.renameSync(`${file}.${process.pid}`, file);
  } catch (err) {
    throw new NslabError("CommandFailed", `${subject}: cannot write ${file}: ${(err as Error).message}`);
  }
}

/** Removes a record (and its folder when empty); absent is fine. */
export function removeRecord(netns: Netns, name: string): void {
  const inode = netnsInode(netns);
  if (inode === undefined) return;
  fs.rmSync(recordPath(inode, name), { force: true });
  try {
    fs.rmdirSync(`${RECORD_DIR}/netns-${inode}`);
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
 * the resource's owner string (project/stack/kind/name), for nslab-orphans.
 */
export function intend(netns: Netns, object: string, owner: string, subject: string, by?: string): void {
  writeRecord(netns, `intent-${object}`, { owner, by }, subject);
}

/** The owner tag of a pending intent() for `object`, if any. */
export function intended(netns: Netns, object: string): string | undefined {
  return readRecord<{ owner?: string }>(netns, `intent-${object}`)?.owner;
}

/** Drops the intent() for `object`: it is marked now, or was not made. */
export function intentDone(netns: Netns, object: string): void {
  removeRecord(netns, `intent-${object}`);
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
