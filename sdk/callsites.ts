/**
 * The call sites Pulumi records for each nslab resource: its `sourcePosition` and
 * `stackTrace`, which the engine writes into the state with the resource.
 *
 * @pulumi/pulumi takes them in the Resource constructor (`Resource.callsites`: a
 * `new Error().stack` with no frame limit, parsed line by line), drops its own frames and
 * one more, meant to be the subclass's constructor, and sends the rest with the
 * registration. For an nslab resource that rest was nslab's own constructors, the
 * user's line, then every frame that loaded the program (ts-node's compiler hooks, Node's
 * module loader, Pulumi's runner): about 15 frames, 600 B of a resource's 1.9 KB of state,
 * the same for every resource but the user's line, and the state is rewritten whole
 * after every step of an update (docs/benchmark.md). The recorded source position was
 * nslab's file (`sdk/namespace.ts`), not the user's.
 *
 * While nslab constructs a resource, the frames Pulumi sees are shaped instead: its own,
 * then one of nslab's (the one Pulumi drops as the subclass), then only the frames of the
 * user's code. The source position becomes the user's line and the trace the user's own
 * call chain. Nothing else changes: the shaping applies only to the trace Pulumi's
 * `callsites` takes (recognised by its first frame), during nslab's constructors, and
 * source maps still apply (the frames are handed to whatever formatter was installed).
 *
 * It depends on how Pulumi takes and parses that trace, so it applies only to a copy of
 * @pulumi/pulumi of a release it was tested with ({@link TESTED_PULUMI_VERSIONS});
 * test/unit/callsites.test.ts fails when that no longer holds.
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { testedPulumiAt } from "./pulumi-version";

const sep = path.sep;
/** nslab's SDK (this folder, compiled or not, with sdk/components). */
const NSLAB_SDK = `${__dirname}${sep}`;
/** Its TypeScript sources, where source maps put the frames of the compiled SDK (dist/sdk). */
const NSLAB_SOURCES = `${path.resolve(__dirname, path.basename(path.dirname(__dirname)) === "dist" ? "../../sdk" : ".")}${sep}`;
const PULUMI = `${sep}node_modules${sep}@pulumi${sep}pulumi${sep}`;
/** Frames of installed packages: the machinery that loaded the program (ts-node, Pulumi's runner), never the user's own code. */
const PACKAGES = `${sep}node_modules${sep}`;

type Format = (error: Error, frames: NodeJS.CallSite[]) => unknown;

/** Whether the @pulumi/pulumi that nslab's SDK uses is a tested release (asked once). */
let tested: boolean | undefined;
function pulumiTested(): boolean {
  if (tested === undefined) {
    try {
      tested = testedPulumiAt(path.dirname(require.resolve("@pulumi/pulumi/package.json")));
    } catch {
      tested = false;
    }
  }
  return tested;
}

/** The frame's file as a path (ES modules give file: URLs); undefined for natives, node: internals, eval. */
function fileOf(frame: NodeJS.CallSite): string | undefined {
  let file = frame.getFileName() ?? undefined;
  if (file?.startsWith("file:")) {
    try {
      file = fileURLToPath(file);
    } catch {
      return undefined;
    }
  }
  return file && path.isAbsolute(file) ? file : undefined;
}

const inPulumi = (frame: NodeJS.CallSite) => fileOf(frame)?.includes(PULUMI) === true;
const inNslab = (frame: NodeJS.CallSite) => fileOf(frame)?.startsWith(NSLAB_SDK) === true;

/**
 * The frames Pulumi should see, from those of its `callsites` trace: its own leading
 * frames, one of nslab's, then the user's (any frame with a file that is neither nslab's
 * SDK nor in an installed package). Undefined when FRAMES is not that trace.
 */
export function shapedFrames(frames: NodeJS.CallSite[]): NodeJS.CallSite[] | undefined {
  if (frames.length === 0 || frames[0].getFunctionName() !== "callsites" || !inPulumi(frames[0])) return undefined;
  let lead = 0;
  while (lead < frames.length && inPulumi(frames[lead])) lead++;
  const ours = frames.slice(lead).find(inNslab);
  if (!ours) return undefined;
  const user = frames.slice(lead).filter((frame) => {
    const file = fileOf(frame);
    return file !== undefined && !file.startsWith(NSLAB_SDK) && !file.includes(PACKAGES);
  });
  return [...frames.slice(0, lead), ours, ...user];
}

/** V8's own text for a trace, for when no formatter (such as source maps') is installed. */
function plainFormat(error: Error, frames: NodeJS.CallSite[]): string {
  const head = `${error.name}${error.message ? `: ${error.message}` : ""}`;
  return [head, ...frames.map((frame) => `    at ${String(frame)}`)].join("\n");
}

/**
 * Shapes the call sites Pulumi records for the resource constructed until the returned
 * function is called (in a finally). Does nothing for an untested @pulumi/pulumi, or when
 * NSLAB_FULL_STACK_TRACES=1 (Pulumi's full trace is then recorded, as without nslab).
 */
export function shapeCallSites(): () => void {
  if (process.env.NSLAB_FULL_STACK_TRACES === "1" || !pulumiTested()) return () => undefined;
  const installed = Error.prepareStackTrace as Format | undefined;
  const shaping: Format = function (this: unknown, error, frames) {
    const format = installed ?? plainFormat;
    return format.call(this, error, shapedFrames(frames) ?? frames);
  };
  Error.prepareStackTrace = shaping as typeof Error.prepareStackTrace;
  return () => {
    // Put back only our own: whatever was installed meanwhile stays.
    if (Error.prepareStackTrace === (shaping as unknown)) Error.prepareStackTrace = installed as typeof Error.prepareStackTrace;
  };
}

/**
 * The current call, for {@link userSite}: a trace V8 formats (source maps applied) only
 * when it is read, so taking one per resource costs little.
 */
export function captureCall(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  try {
    return new Error();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * Where the user's program is in a captured call: the first frame of its trace whose
 * file is neither nslab's SDK nor in an installed package, as `file:line:column`
 * relative to the working directory. Undefined when there is none (e.g. a call taken
 * inside an apply, after the program's own code has returned).
 */
export function userSite(call: Error = captureCall()): string | undefined {
  for (const line of (call.stack ?? "").split("\n").slice(1)) {
    // "    at fn (/abs/file.ts:12:3)" or "    at /abs/file.ts:12:3"; others (node:
    // internals, native, eval) have no absolute file.
    const m = /^at (?:.*\()?((?:file:\/\/)?\/[^()]*):(\d+):(\d+)\)?$/.exec(line.trim());
    if (!m) continue;
    let file = m[1];
    if (file.startsWith("file:")) {
      try {
        file = fileURLToPath(file);
      } catch {
        continue;
      }
    }
    if (file.startsWith(NSLAB_SDK) || file.startsWith(NSLAB_SOURCES) || file.includes(PACKAGES)) continue;
    return `${path.relative(process.cwd(), file) || file}:${m[2]}:${m[3]}`;
  }
  return undefined;
}
