/**
 * Error traces Node.js can print.
 *
 * `util.inspect(error, { colors: true })` loops until the process runs out of memory on a
 * trace frame whose path ends in a `node_modules` package name with no separator after
 * it (nodejs/node#64011: `.../node_modules/foo.js:1:1`, `.../node_modules/@scope/x.ts:1:1`).
 * Node.js fixed it in 24.19.0 and 26.5.0; 22.x had it in every release up to 22.23.5 (the
 * newest when this was written), 25.x in every one.
 *
 * Pulumi's program runner prints every uncaught error with that call (cmd/run/error.js,
 * `defaultErrorMessage`; up to three times per error), and the source maps @pulumi/pulumi
 * ships put its top-level files there: their `sources` are `"../output.ts"`, so frames
 * show as `node_modules/@pulumi/output.ts:519:31`. Such a frame is in the trace of every
 * error thrown inside an `apply` and of `Config.require`'s error. Each call then spun for
 * about a minute, 3 GB of memory, before the runner fell back to plain text: a typo in a
 * program's `apply` made `pulumi preview` take one to two minutes to say so.
 *
 * On a Node.js with that loop ({@link inspectLoops}) nslab wraps the installed trace
 * formatter (source maps', which Pulumi's runner installs) and writes such a frame's path
 * as the same path with `./` before its last part (`node_modules/@pulumi/./output.ts`),
 * which Node.js handles. Every other frame, and the error's message, stay as they were.
 * test/unit/safe-stacks.test.ts fails when the running Node.js no longer has the loop
 * while {@link inspectLoops} says it does, or the other way round.
 */

/** Whether util.inspect of Node.js VERSION loops on such a frame (nodejs/node#64011). */
export function inspectLoops(version: string = process.versions.node): boolean {
  const [major, minor] = version.split(".").map(Number);
  if (major >= 27) return false;
  if (major === 26) return minor < 5;
  if (major === 24) return minor < 19;
  return true; // 25.x, and 23.x, 22.x and older
}

/**
 * LINE (one frame of a trace) with `./` put before a `node_modules` package name that no
 * separator follows, found as Node.js's util.inspect finds it; any other line unchanged.
 */
export function safeFrameLine(line: string): string {
  let from = 0;
  for (;;) {
    const at = line.indexOf("node_modules", from);
    if (at === -1) return line;
    const sep = line[at - 1];
    const after = line[at + 12];
    if ((sep !== "/" && sep !== "\\") || (after !== "/" && after !== "\\")) {
      from = at + 1;
      continue;
    }
    const start = at + 13;
    let end = line.indexOf(sep, start);
    let before = start;
    if (end !== -1 && line[start] === "@") {
      // A scoped package: @scope/name.
      before = end + 1;
      end = line.indexOf(sep, before);
    }
    if (end === -1) {
      line = `${line.slice(0, before)}.${sep}${line.slice(before)}`;
      end = before + 1;
    }
    from = end;
  }
}

/** TRACE (an error's stack text) with its frames made safe ({@link safeFrameLine}); the message is left alone. */
export function safeStack(trace: string): string {
  // util.inspect treats everything from the first "\n    at" as frames.
  const frames = trace.indexOf("\n    at");
  if (frames === -1 || !trace.includes("node_modules", frames)) return trace;
  return trace.slice(0, frames + 1) + trace.slice(frames + 1).split("\n").map(safeFrameLine).join("\n");
}

/** Marks the formatter nslab installed, so that it is never wrapped twice. */
const SAFE = Symbol.for("nslab.safeStacks");

type Format = ((error: Error, frames: NodeJS.CallSite[]) => unknown) & { [SAFE]?: true };

/**
 * On a Node.js with the loop, wraps the installed trace formatter (source maps' under
 * Pulumi's runner; else Node.js's own, which applies `--enable-source-maps` and which the
 * wrapper calls) so that the traces it writes are safe ({@link safeStack}). Where none
 * is installed (Node.js before 22 has none of its own) it installs none. Returns whether
 * traces are now made safe.
 */
export function safeStacks(version: string = process.versions.node): boolean {
  if (!inspectLoops(version)) return false;
  const installed = Error.prepareStackTrace as Format | undefined;
  if (typeof installed !== "function") return false;
  if (installed[SAFE]) return true;
  const safe: Format = function (this: unknown, error, frames) {
    const trace = installed.call(this, error, frames);
    return typeof trace === "string" ? safeStack(trace) : trace;
  };
  Object.defineProperty(safe, SAFE, { value: true });
  Error.prepareStackTrace = safe as typeof Error.prepareStackTrace;
  return true;
}
