/**
 * Process: a long-running user-space program inside a namespace (a tunnel end, a
 * server), started and stopped with the lab. A process is not a kernel object, so its
 * identity is its pid together with its start time (/proc/PID/stat field 22): a pid
 * reused by another program never matches, and nslab never signals a process it did
 * not start.
 *
 * - create starts the program detached (its own session, output appended to a log
 *   file, NSLAB_OWNER=OWNER and NSLAB_STOP_TIMEOUT_MS=stopTimeoutMs in its
 *   environment), waits `startupMs` and fails, with the log's last lines, if it has
 *   exited. A program of this resource's that is still
 *   running from a create Pulumi never recorded (a killed run: found by NSLAB_OWNER) is
 *   stopped first.
 * - read: alive with the same start time, or gone (drift; `pulumi up --refresh` starts
 *   it again).
 * - delete sends SIGTERM to that pid only if its start time still matches, waits for it
 *   to exit, and sends SIGKILL after `stopTimeoutMs`.
 *
 * With `host`, all of it happens on that machine through the kernel door (kernel.ts:
 * one small script over the host's SSH shells per step): the program, its log (in the
 * host's /tmp by default), /proc/PID/stat and the signals are the host's. There is no
 * program folder there, so `cwd` and `logFile` must be absolute; `cwd` defaults to "/".
 */
import * as os from "node:os";
import * as path from "node:path";
import { NslabError } from "./errors";
import * as kernel from "./kernel";
import { CommonInputs, compact, diffFields, FieldRule, LinkDependentInputs, LINKS_RULE, linksInput, ownerTag, resourceNameOf, ResourceKind } from "./resource";
import { Checker, isUnknown } from "./validate";

export interface ProcessInputs extends CommonInputs, LinkDependentInputs {
  /** Program and arguments (argv); run without a shell. */
  command: string[];
  namespace?: string;
  /** Working directory; relative to the program's folder. Default: the program's folder; with host, absolute there, default "/". */
  cwd?: string;
  /** Where stdout and stderr are appended. Default: nslab-process-<hash>.log in the temp folder (with host: the host's /tmp). */
  logFile?: string;
  /** Text the program prints (stdout or stderr) once it is ready; create waits for it. */
  readyText?: string;
  /**
   * Without readyText: how long the program must stay up after start for create to
   * succeed. With readyText: how long create waits for that text.
   */
  startupMs: number;
  /** How long delete waits after SIGTERM before SIGKILL. */
  stopTimeoutMs: number;
}
export interface ProcessOutputs extends ProcessInputs {
  pid: number;
  /** Start time of the process in clock ticks after boot (/proc/PID/stat): with pid, its identity. */
  startTime: string;
  /** The log file in use (absolute). */
  log: string;
}

export const STARTUP_MS_DEFAULT = 300;
export const READY_WAIT_MS_DEFAULT = 10_000;
export const STOP_TIMEOUT_MS_DEFAULT = 5_000;
const POLL_MS = 20;

const RULES: FieldRule[] = ["command", "namespace", "cwd", "logFile", "readyText", "startupMs", "stopTimeoutMs"].map((name) => ({ name, replace: true }));

/** The ifindexes in a list of generations, without their come-back-up counts ("7+1/8" is "7/8"). */
const ifindexes = (links: string[]) => links.map((g) => g.split("/").map((end) => end.split("+")[0]).join("/"));

/** KEY=GENERATION (the SDK keys a Process's generations by interface) as [KEY, GENERATION]; [undefined, G] for an unkeyed one. */
const keyOf = (g: string): [string | undefined, string] => {
  const at = g.indexOf("=");
  return at < 0 ? [undefined, g] : [g.slice(0, at), g.slice(at + 1)];
};

/**
 * Whether an interface in the Process's dependsOn was made anew (a TUN/TAP device
 * replaced): the program held the old one (its file descriptor) and is started again.
 * The SDK keys each generation by where its interface is, machine, namespace and name
 * (sdk/base.ts linkKey): one that was there before with another ifindex. One added or
 * removed (a host of a BridgedNetwork in its dependsOn, a host renamed: one of each), or
 * back up after `up: false`, restarts nothing. Generations without keys (a state from
 * before them, a component of another copy of nslab) are compared as they were: as many
 * interfaces as before, one of them with another ifindex. A state from before Process
 * took generations has none: nothing to compare. A preview, which cannot know the next
 * generations, plans it.
 */
export function madeAnew(olds: { __links?: string[] }, news: { __links?: string[] }): boolean {
  const [before, after] = [olds.__links, news.__links];
  if (before === undefined || after === undefined) return false;
  if (isUnknown(after)) return true;
  const [was, now] = [before.map(keyOf), after.map(keyOf)];
  // As many as before, one of them with another ifindex: the rule for generations
  // without keys, and for those of one key (interfaces whose place the SDK cannot tell
  // apart, such as two with default names in one namespace).
  const renewed = (a: string[], b: string[]) => {
    const [x, y] = [ifindexes(a), ifindexes(b)];
    return x.length === y.length && x.some((g) => !y.includes(g));
  };
  if ([...was, ...now].some(([key]) => key === undefined)) return renewed(was.map(([, g]) => g), now.map(([, g]) => g));
  const byKey = (list: [string | undefined, string][]) => {
    const groups = new Map<string, string[]>();
    for (const [key, g] of list) groups.set(key!, [...(groups.get(key!) ?? []), g]);
    return groups;
  };
  const earlier = byKey(was);
  return [...byKey(now)].some(([key, gs]) => earlier.has(key) && renewed(earlier.get(key)!, gs));
}

function subject(i: { __owner: string; namespace?: string; command?: string[] }): string {
  const name = resourceNameOf(i.__owner);
  return `Process${name ? ` "${name}"` : ""} (${(i.command ?? []).join(" ")}) in ${i.namespace ? `namespace "${i.namespace}"` : "the program's namespace"}${kernel.where()}`;
}

/** What read appends to the namespace of a program whose namespace was deleted by hand. */
const DELETED = " (deleted by hand)";

/** A host's folder for temporary files (its TMPDIR is not known here; /tmp is on every Linux). */
const HOST_TMP = "/tmp";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a failed start says of a log with nothing in it. */
const EMPTY_LOG = "(the log is empty)";

/** The last lines of the log (on the current host), for error messages. */
async function logTail(file: string, from: number, who: string): Promise<string> {
  const text = await kernel.readFileFrom(file, from, who);
  if (text === undefined) return "(no log)";
  return text.trimEnd().split("\n").slice(-5).join(" | ") || EMPTY_LOG;
}

/** Waits until the process has exited, up to `ms`; true when it has. */
async function waitExit(pid: number, startTime: string, ms: number): Promise<boolean> {
  return (await waitAllExit([{ pid, startTime }], ms)).length === 0;
}

/**
 * Waits until the log, past `from`, holds `text` while the process still runs; false
 * when it exits (before or right after printing it: a Process is a program that keeps
 * running, and read would report it gone from then on) or `ms` pass first.
 */
async function waitReady(pid: number, startTime: string, file: string, from: number, text: string, ms: number, who: string): Promise<boolean> {
  for (const until = Date.now() + ms; ; await sleep(POLL_MS)) {
    const seen = (await kernel.readFileFrom(file, from, who)) ?? "";
    if (!(await kernel.processAlive(pid, startTime))) return false;
    if (seen.includes(text)) return true;
    if (Date.now() >= until) return false;
  }
}

/** Waits until none of PROCS is alive, up to `ms`; those still alive then. */
async function waitAllExit<P extends { pid: number; startTime: string }>(procs: P[], ms: number): Promise<P[]> {
  let alive = procs;
  for (const until = Date.now() + ms; ; await sleep(POLL_MS)) {
    alive = (await Promise.all(alive.map(async (p) => ((await kernel.processAlive(p.pid, p.startTime)) ? [p] : [])))).flat();
    if (alive.length === 0 || Date.now() >= until) return alive;
  }
}

/**
 * Stops the process if it is still ours, and the programs it started (its session,
 * which it leads: a shell's `cmd &`, a server's workers, `timeout`'s child in a group of
 * its own), also when it has ended and left them running; idempotent. Each gets SIGTERM
 * once, then SIGKILL after stopTimeoutMs.
 */
export async function stop(props: Pick<ProcessOutputs, "pid" | "startTime" | "stopTimeoutMs" | "__owner" | "namespace" | "command">): Promise<void> {
  const leader = { pid: props.pid, startTime: props.startTime };
  // A pid another program has now (another start time): neither it nor its session is ours.
  const now = await kernel.processStat(leader.pid);
  const live = kernel.running(now);
  if (live && now.startTime !== leader.startTime) return;
  // While it runs as its session's leader, the whole session is its own. Once it has
  // ended, the members that carry its mark; and when it is itself what an ended program
  // left (nslab-orphans, a create taking over), the marked members of that program's session.
  const leads = live && now.session === String(leader.pid);
  const sid = live && !leads ? Number(now.session) : leader.pid;
  const members = await kernel.sessionMembers(sid, leads ? undefined : props.__owner);
  if (!leads && members.length === 0) return;
  const signal = async (sig: NodeJS.Signals, procs: kernel.SessionMember[]) => {
    // Its process group at once while it leads (one signal each); the others one by one.
    const group = leads && (await kernel.signalProcess(leader.pid, leader.startTime, sig, true));
    for (const p of procs) if (!(group && p.pgrp === leader.pid)) await kernel.signalProcess(p.pid, p.startTime, sig);
  };
  const all: kernel.SessionMember[] = leads && !members.some((p) => p.pid === leader.pid) ? [{ ...leader, pgrp: leader.pid }, ...members] : members;
  await signal("SIGTERM", all);
  const left = await waitAllExit(all, props.stopTimeoutMs);
  if (left.length === 0) return;
  await signal("SIGKILL", left);
  const stuck = await waitAllExit(left, 2_000);
  if (stuck.length > 0) {
    throw new NslabError("CommandFailed", `${subject(props)}: ${stuck.map((p) => `pid ${p.pid}${p.pid === leader.pid ? "" : " (started by it)"}`).join(", ")} did not exit after SIGTERM and SIGKILL.`);
  }
}

/**
 * `cwd` and `logFile` with a host: a relative path has nothing to be relative to there
 * (the Pulumi program's folder is on this machine), so it is refused rather than guessed.
 */
function absoluteOnHost(c: Checker, value: string | undefined, property: string, onHost: boolean, fix: string): string | undefined {
  if (!onHost || value === undefined || isUnknown(value) || value.startsWith("/")) return value;
  return c.fail(
    property,
    `${property} ${JSON.stringify(value)} is relative, but host is set: on another host there is no program folder to resolve it against. Give an absolute path on that host (e.g. "/srv/lab"), or ${fix}.`,
  );
}

export const processKind: ResourceKind<ProcessInputs, ProcessOutputs> = {
  kind: "Process",
  properties: ["command", "namespace", "cwd", "logFile", "readyText", "startupMs", "stopTimeoutMs", "__links"],

  check(_olds, news) {
    const c = new Checker();
    let command: string[] = [];
    if (isUnknown(news.command)) command = news.command as never;
    else if (typeof news.command === "string") c.fail("command", `command must be a list (the program and its arguments, no shell), got the string ${JSON.stringify(news.command)}: write e.g. ${JSON.stringify(news.command.trim().split(/\s+/))}, or ["sh", "-c", ${JSON.stringify(news.command)}] for a shell line.`);
    else if (!Array.isArray(news.command) || news.command.length === 0) c.fail("command", `command is required: the program and its arguments as a list, e.g. ["python3", "tunnel.py", "tun0"] (no shell).`);
    else {
      command = news.command.map((arg, i) => {
        if (isUnknown(arg)) return arg as string;
        if (typeof arg !== "string" || (i === 0 && arg === "")) c.fail(`command[${i}]`, `command[${i}] must be a ${i === 0 ? "non-empty " : ""}string, got ${JSON.stringify(arg)}.`);
        return String(arg);
      });
    }
    // A host not known yet (preview): the check at up, with the host known, decides.
    const onHost = news.host !== undefined && news.host !== null && !isUnknown(news.host);
    const inputs = compact({
      command,
      namespace: c.netns(news.namespace, "namespace"),
      cwd: absoluteOnHost(c, c.string(news.cwd, "cwd", false), "cwd", onHost, `omit cwd to run in "/"`),
      logFile: absoluteOnHost(c, c.string(news.logFile, "logFile", false), "logFile", onHost, `omit logFile for ${HOST_TMP}/nslab-process-<hash>.log there`),
      readyText: c.string(news.readyText, "readyText", false),
      startupMs: c.integer(news.startupMs, "startupMs", 0, 60_000) ?? (news.readyText ? READY_WAIT_MS_DEFAULT : STARTUP_MS_DEFAULT),
      stopTimeoutMs: c.integer(news.stopTimeoutMs, "stopTimeoutMs", 0, 60_000) ?? STOP_TIMEOUT_MS_DEFAULT,
      __links: linksInput(news.__links),
      __owner: String(news.__owner ?? `Process:${JSON.stringify(news.command)}`),
    });
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    // The old program goes first: the new one may need its port or its device.
    const d = diffFields(olds as never, news as never, RULES, true);
    if (madeAnew(olds, news)) return { ...d, changes: true, replaces: [...d.replaces, LINKS_RULE.name], deleteBeforeReplace: true };
    // Other generations to record: an update that restarts nothing.
    const recorded = (v: unknown) => JSON.stringify(v ?? null);
    return !d.changes && news.__links !== undefined && recorded(olds.__links) !== recorded(news.__links) ? { ...d, changes: true } : d;
  },

  async create(i) {
    await kernel.requireNetns(i.namespace, subject(i));
    // On another host there is no program folder: check made sure both are absolute there.
    const remote = kernel.currentHost() !== undefined;
    const defaultLog = `nslab-process-${ownerTag(i.__owner).slice("nslab:".length)}.log`;
    const cwd = remote ? i.cwd ?? "/" : path.resolve(i.cwd ?? ".");
    const log = remote ? i.logFile ?? `${HOST_TMP}/${defaultLog}` : path.resolve(i.logFile ?? path.join(os.tmpdir(), defaultLog));
    // This resource's program still running from an earlier create that Pulumi never
    // recorded (a run killed while the program started, or before the state was
    // written): ours by its NSLAB_OWNER, stopped before the new one starts, which may
    // need its port or device. Anyone else's program is left alone.
    for (const earlier of await kernel.markedProcesses()) {
      if (earlier.owner === i.__owner) await stop({ ...i, pid: earlier.pid, startTime: earlier.startTime, stopTimeoutMs: earlier.stopTimeoutMs ?? i.stopTimeoutMs });
    }
    const { pid, startTime, logStart } = await kernel.spawnDetached(i.command, i.namespace, { cwd, logFile: log, subject: subject(i), owner: i.__owner, stopTimeoutMs: i.stopTimeoutMs });
    const outs: ProcessOutputs = { ...i, pid, startTime, log };
    const ready = i.readyText === undefined ? !(await waitExit(pid, startTime, i.startupMs)) : await waitReady(pid, startTime, log, logStart, i.readyText, i.startupMs, subject(i));
    if (ready) return { id: `${i.namespace ?? ""}/${pid}`, outs };
    // A failed create leaves nothing running.
    const alive = await kernel.processAlive(pid, startTime);
    await stop(outs);
    const printed = !alive && i.readyText !== undefined && ((await kernel.readFileFrom(log, logStart, subject(i))) ?? "").includes(i.readyText);
    const what = alive
      ? `did not print ${JSON.stringify(i.readyText)} within ${i.startupMs} ms (stopped it)`
      : printed
        ? `printed ${JSON.stringify(i.readyText)} and then exited: a Process is a program that keeps running (read would report it gone, and every pulumi up --refresh start it again). Run it in the foreground: exec the program, end a script with wait, or give a daemon its foreground flag (e.g. -d, --no-daemon)`
        : `exited within ${i.startupMs} ms of starting`;
    const tail = await logTail(log, logStart, subject(i));
    // A program that writes to a file (not a terminal) may keep its output in a buffer.
    const buffered = alive && tail === EMPTY_LOG ? `. A program may hold back its output when it goes to a file: make it write at once (python3 -u, stdbuf -oL COMMAND), or raise startupMs.` : "";
    throw new NslabError("Verification", `${subject(i)}: ${what}; its log (${log}${kernel.where()}) ends: ${tail}${buffered}`);
  },

  async read(id, props) {
    if (!(await kernel.processAlive(props.pid, props.startTime))) return {};
    // Running, but in a namespace deleted by hand (the program keeps it alive, unreachable
    // by name), perhaps made anew since: not the program of that namespace. Reported as
    // drift of its namespace, which replaces it; kept in the state meanwhile, so that its
    // delete (the replacement's, or destroy) stops it.
    const live = props.namespace !== undefined && !props.namespace.endsWith(DELETED) && (await kernel.processNetns(props.pid, props.namespace)) === "other" ? { ...props, namespace: `${props.namespace}${DELETED}` } : props;
    const { pid: _pid, startTime: _start, log: _log, ...inputs } = live;
    return { id, props: live, inputs };
  },

  async update(id, olds, news) {
    // Every input replaces, so an update only comes from a new way to reach the same
    // host (identityFile, knownHostsFile) or generations to record: the running program
    // stays as it is.
    if (processKind.diff(id, olds, news).replaces.length === 0) return { outs: { ...olds, ...news, pid: olds.pid, startTime: olds.startTime, log: olds.log } };
    return processKind.create(news);
  },

  async delete(_id, props) {
    await stop(props);
  },
};
