/**
 * Two costs @pulumi/pulumi pays per resource in every program, for output nobody sees
 * unless they ask for it, switched off when a program imports nslab (and by
 * nslab/preload, which does it earlier and does more: sdk/preload.ts, parts 2 and 3):
 *
 * - **a stack trace per promise**: `debuggablePromise` takes one for each of the dozen
 *   promises the runtime makes per resource (mapped through source maps frame by frame),
 *   printed only when `PULUMI_DEBUG_PROMISE_LEAKS` is set; without it they are not taken;
 * - **three debug messages per resource** ("Registering resource ...", "RegisterResource
 *   RPC prepared ...", "... finished ..."), one RPC to the engine each, which the engine
 *   shows only with `--debug` or in its verbose logs. They are dropped unless
 *   `NSLAB_PULUMI_DEBUG=1` (`scripts/pulumi` sets it when given `--debug`, `-v` and the
 *   like; with the plain `pulumi` command, set it yourself to see them). Every other debug
 *   message (yours, or a failure) is sent as before.
 *
 * Both only touch a copy of @pulumi/pulumi of a release they were tested with
 * ({@link TESTED_PULUMI_VERSIONS}), and each checks the module's shape before changing it.
 */
import * as path from "node:path";
import { testedPulumiAt } from "./pulumi-version";

/** Messages of @pulumi/pulumi's own, one per resource and step, dropped. */
export const CHATTER = /^(Registering resource: |RegisterResource RPC prepared: |RegisterResource RPC finished: [^;]*; err: null, |Resource RPC serialization requested: )/;

/** Marks a function nslab wrapped, so that it is never wrapped twice. */
const QUIET = Symbol.for("nslab.quiet");

function mark<F extends object>(fn: F): F {
  Object.defineProperty(fn, QUIET, { value: true });
  return fn;
}

/**
 * Makes `debuggablePromise` of @pulumi/pulumi/runtime/debuggable take no stack trace,
 * unless promise-leak debugging is on. Returns whether the module has that shape.
 */
export function quietDebuggable(m: Record<string, unknown>): boolean {
  if (typeof m.debuggablePromise !== "function" || !("debugPromiseLeaks" in m)) return false;
  if (m.debugPromiseLeaks || (m.debuggablePromise as unknown as Record<symbol, unknown>)[QUIET]) return true;
  const debuggablePromise = m.debuggablePromise as (...args: unknown[]) => unknown;
  m.debuggablePromise = mark(function (this: unknown, ...args: unknown[]) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return debuggablePromise.apply(this, args);
    } finally {
      Error.stackTraceLimit = limit;
    }
  });
  return true;
}

/**
 * Makes `log.debug` of @pulumi/pulumi/log drop the runtime's per-resource messages
 * ({@link CHATTER}), unless NSLAB_PULUMI_DEBUG=1. Returns whether the module has that shape.
 */
export function quietLog(m: Record<string, unknown>): boolean {
  if (typeof m.debug !== "function" || typeof m.hasErrors !== "function") return false;
  if (process.env.NSLAB_PULUMI_DEBUG === "1" || (m.debug as unknown as Record<symbol, unknown>)[QUIET]) return true;
  const debug = m.debug as (...args: unknown[]) => Promise<void>;
  m.debug = mark(function (this: unknown, msg: unknown, ...rest: unknown[]) {
    if (typeof msg === "string" && CHATTER.test(msg)) return Promise.resolve();
    return debug.call(this, msg, ...rest);
  });
  return true;
}

/** The folder of the @pulumi/pulumi that nslab's SDK uses (the program's), if any. */
function pulumiRoot(): string | undefined {
  try {
    return path.dirname(require.resolve("@pulumi/pulumi/package.json"));
  } catch {
    return undefined;
  }
}

/**
 * Applies both to the copy of @pulumi/pulumi in ROOT (by default the one nslab's SDK
 * uses: the program's, already loaded by Pulumi's runner), if it is a tested release.
 * Returns which of the two modules had the expected shape (and are now quiet).
 */
export function quietPulumi(root = pulumiRoot()): { debuggable: boolean; log: boolean } {
  if (root === undefined || !testedPulumiAt(root)) return { debuggable: false, log: false };
  // A tested release has both files; should one be missing, nslab changes nothing there.
  const load = (file: string): Record<string, unknown> => {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require(path.join(root, file)) as Record<string, unknown>;
    } catch {
      return {};
    }
  };
  return { debuggable: quietDebuggable(load("runtime/debuggable.js")), log: quietLog(load("log/index.js")) };
}
