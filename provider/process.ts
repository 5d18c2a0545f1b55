/**
 * Process: a long-running user-space program inside a namespace (a tunnel end, a
 * server), started and stopped with the lab. A process is not a kernel object, so its
 * identity is its pid together with its start time (/proc/PID/stat field 22): a pid
 * reused by another program never matches, and nslab never signals a process it did
 * not start.
 *
 * - create starts the program detached (its own session, output appended to a log
 *   file), waits `startupMs` and fails, with the log's last lines, if it has exited.
 * - read: alive with the same start time, or gone (drift; `pulumi up --refresh` starts
 *   it again).
 * - delete sends SIGTERM to that pid only if its start time still matches, waits for it
 *   to exit, and sends SIGKILL after `stopTimeoutMs`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NslabError } from "./errors";
import * as kernel from "./kernel";
import { CommonInputs, compact, diffFields, FieldRule, ownerTag, resourceNameOf, ResourceKind } from "./resource";
import { Checker, isUnknown } from "./validate";

export interface ProcessInputs extends CommonInputs {
  /** Program and arguments (argv); run without a shell. */
  command: string[];
  namespace?: string;
  /** Working directory; relative to the program's folder. Default: the program's folder. */
  cwd?: string;
  /** Where stdout and stderr are appended. Default: nslab-process-<hash>.log in the temp folder. */
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

function subject(i: { __owner: string; namespace?: string; command?: string[] }): string {
  const name = resourceNameOf(i.__owner);
  return `Process${name ? ` "${name}"` : ""} (${(i.command ?? []).join(" ")}) in ${i.namespace ? `namespace "${i.namespace}"` : "the program's namespace"}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The last lines of the log, for error messages. */
function logTail(file: string, from = 0): string {
  try {
    const lines = fs.readFileSync(file).subarray(from).toString("utf8").trimEnd().split("\n").slice(-5);
    return lines.join(" | ") || "(the log is empty)";
  } catch {
    return "(no log)";
  }
}

/** Waits until the process has exited, up to `ms`; true when it has. */
async function waitExit(pid: number, startTime: string, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(POLL_MS)) {
    if (!kernel.processAlive(pid, startTime)) return true;
  }
  return !kernel.processAlive(pid, startTime);
}

/** Waits until the log, past `from`, holds `text`; false when the process exits or `ms` pass first. */
async function waitReady(pid: number, startTime: string, file: string, from: number, text: string, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; ; await sleep(POLL_MS)) {
    const seen = fs.readFileSync(file).subarray(from).toString("utf8");
    if (seen.includes(text)) return true;
    if (!kernel.processAlive(pid, startTime) || Date.now() >= until) return false;
  }
}

/** Stops the process if it is still ours; idempotent. */
async function stop(props: Pick<ProcessOutputs, "pid" | "startTime" | "stopTimeoutMs" | "__owner" | "namespace" | "command">): Promise<void> {
  if (!kernel.signalProcess(props.pid, props.startTime, "SIGTERM")) return;
  if (await waitExit(props.pid, props.startTime, props.stopTimeoutMs)) return;
  kernel.signalProcess(props.pid, props.startTime, "SIGKILL");
  if (!(await waitExit(props.pid, props.startTime, 2_000))) {
    throw new NslabError("CommandFailed", `${subject(props)}: pid ${props.pid} did not exit after SIGTERM and SIGKILL.`);
  }
}

export const processKind: ResourceKind<ProcessInputs, ProcessOutputs> = {
  kind: "Process",

  check(_olds, news) {
    const c = new Checker();
    let command: string[] = [];
    if (isUnknown(news.command)) command = news.command as never;
    else if (!Array.isArray(news.command) || news.command.length === 0) c.fail("command", `command is required: the program and its arguments as a list, e.g. ["python3", "tunnel.py", "tun0"] (no shell).`);
    else {
      command = news.command.map((arg, i) => {
        if (isUnknown(arg)) return arg as string;
        if (typeof arg !== "string" || (i === 0 && arg === "")) c.fail(`command[${i}]`, `command[${i}] must be a ${i === 0 ? "non-empty " : ""}string, got ${JSON.stringify(arg)}.`);
        return String(arg);
      });
    }
    const inputs = compact({
      command,
      namespace: c.netns(news.namespace, "namespace"),
      cwd: c.string(news.cwd, "cwd", false),
      logFile: c.string(news.logFile, "logFile", false),
      readyText: c.string(news.readyText, "readyText", false),
      startupMs: c.integer(news.startupMs, "startupMs", 0, 60_000) ?? (news.readyText ? READY_WAIT_MS_DEFAULT : STARTUP_MS_DEFAULT),
      stopTimeoutMs: c.integer(news.stopTimeoutMs, "stopTimeoutMs", 0, 60_000) ?? STOP_TIMEOUT_MS_DEFAULT,
      __owner: String(news.__owner ?? `Process:${JSON.stringify(news.command)}`),
    });
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    // The old program goes first: the new one may need its port or its device.
    return diffFields(olds as never, news as never, RULES, true);
  },

  async create(i) {
    await kernel.requireNetns(i.namespace, subject(i));
    const cwd = path.resolve(i.cwd ?? ".");
    const log = path.resolve(i.logFile ?? path.join(os.tmpdir(), `nslab-process-${ownerTag(i.__owner).slice("nslab:".length)}.log`));
    const logStart = fs.existsSync(log) ? fs.statSync(log).size : 0;
    const { pid, startTime } = await kernel.spawnDetached(i.command, i.namespace, { cwd, logFile: log, subject: subject(i) });
    const outs: ProcessOutputs = { ...i, pid, startTime, log };
    const ready = i.readyText === undefined ? !(await waitExit(pid, startTime, i.startupMs)) : await waitReady(pid, startTime, log, logStart, i.readyText, i.startupMs);
    if (ready) return { id: `${i.namespace ?? ""}/${pid}`, outs };
    // A failed create leaves nothing running.
    const alive = kernel.processAlive(pid, startTime);
    await stop(outs);
    const what = alive ? `did not print ${JSON.stringify(i.readyText)} within ${i.startupMs} ms (stopped it)` : `exited within ${i.startupMs} ms of starting`;
    throw new NslabError("Verification", `${subject(i)}: ${what}; its log (${log}) ends: ${logTail(log, logStart)}`);
  },

  async read(id, props) {
    if (!kernel.processAlive(props.pid, props.startTime)) return {};
    const { pid: _pid, startTime: _start, log: _log, ...inputs } = props;
    return { id, props, inputs };
  },

  async update(_id, _olds, news) {
    // Unreachable: every input replaces.
    return processKind.create(news);
  },

  async delete(_id, props) {
    await stop(props);
  },
};
