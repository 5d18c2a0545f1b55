/**
 * Faster start and less overhead for the Node.js processes Pulumi runs for a lab: the
 * program and the dynamic-provider process. Load it before anything else:
 *
 *     NODE_OPTIONS="--require nslab/preload" pulumi up
 *
 * `scripts/pulumi` does that for you (set `NSLAB_PRELOAD=0` to leave it out); for the plain
 * `pulumi`, a project's Pulumi.yaml loads it into the program with `nodeargs` and into the
 * provider process with a `plugins` entry naming nslab's launcher (`plugin/`; see the
 * README, "Use nslab in your own project"). Nothing in
 * it changes what a program declares or what the engine deploys or records. It only
 * touches a copy of @pulumi/pulumi whose package.json version is one it was tested with
 * ({@link TESTED_PULUMI_VERSIONS}); any other version is left entirely alone (the program
 * then runs exactly as without the preload, only without the gain). Within a tested
 * version, each part still checks that the module looks as expected before changing it.
 *
 * 1. **Closure serialization is loaded when first used.** @pulumi/pulumi loads, with
 *    its runtime, the code that serializes JavaScript functions for
 *    `pulumi.dynamic.Resource` and `pulumi.runtime.serializeFunction`: @npmcli/arborist,
 *    normalize-package-data and the TypeScript compiler, about 0.25 s of every process's
 *    start on a 2-core machine. nslab never serializes a function (its provider text is
 *    written by hand), so these three modules are replaced, for the closure code only, by
 *    stand-ins that load the real module on first use. The same goes for the six
 *    OpenTelemetry modules the program's runner loads for `pulumi up --tracing` (about
 *    0.06 s) and for `pulumi.automation` (0.03 s; `@pulumi/pulumi/automation` itself is
 *    left alone).
 * 2. **No stack trace per promise.** @pulumi/pulumi takes a stack trace for each of the
 *    dozen promises it makes per resource (`debuggablePromise`), mapped through source
 *    maps frame by frame. Those traces are printed only when `PULUMI_DEBUG_PROMISE_LEAKS`
 *    is set; without it they are no longer taken. (Each resource's own source position
 *    is still recorded: Pulumi takes that one with a limit of its own.)
 * 3. **No per-resource debug chatter.** For each resource the runtime sends the engine
 *    three debug messages ("Registering resource ...", "RegisterResource RPC prepared
 *    ...", "... finished ..."), one RPC each, in sequence. The engine shows them only
 *    with `--debug` or in verbose logs. They are dropped unless `NSLAB_PULUMI_DEBUG=1`,
 *    which `scripts/pulumi` sets when it is given `--debug`, `-d`, `-v`, `--verbose`,
 *    `--logtostderr` or `--logflow`. Any other debug message (yours, or a failure) is
 *    sent as before.
 * 4. **No debugger session before it is needed.** Before it runs the program, Pulumi's
 *    runner opens an inspector session with the debugger enabled, so that a function
 *    that cannot be serialized can be named by file and line; every script loaded after
 *    that is reported to it (about 0.15 s of the program's start with @pulumi/pulumi,
 *    TypeScript and ts-node). The runner now skips it, and the session is opened when a
 *    function is first serialized; a second session, which hears the debugger list every
 *    script loaded so far when it is enabled, then supplies the file names the first one
 *    missed.
 *
 * 5. **The provider watches its engine from its start** (provider/health.ts), not only
 *    from its first call: a CLI killed in between no longer leaves it waiting forever.
 *    It touches nothing of Pulumi's, so it runs whatever the @pulumi/pulumi version.
 *
 * Measured with `bench/ab-env.sh` (`NSLAB_PRELOAD=0` against the default), `bench/ab.sh`
 * and `bench/profile.js`; see docs/benchmark.md.
 */
import Module = require("node:module");
import * as path from "node:path";
import { watchEngine } from "../provider/health";
import { testedPulumiAt } from "./pulumi-version";
import { CHATTER, quietDebuggable, quietLog } from "./quiet";

type Load = (request: string, parent: NodeJS.Module | undefined, isMain: boolean) => unknown;
interface ModuleInternals {
  _load: Load;
}

/** Asked of a stand-in, answers true without loading the real module. */
export const LAZY = Symbol.for("nslab.lazy");

const sep = path.sep;
const pulumiDir = `${sep}node_modules${sep}@pulumi${sep}pulumi${sep}`;
const tracingFile = `${pulumiDir}cmd${sep}run${sep}tracing.js`;

/**
 * How a deferred module is imported where it is required: "star" (TypeScript's
 * `__importStar`: the stand-in says `__esModule`, so it is kept as it is instead of having
 * its keys copied, which would load it), "plain" (`require`, or `__importDefault`, which
 * wraps it as `{ default }` and calls it), or "members" (`const { X } = require(...)`
 * takes the members at once: each is a stand-in that loads the module when called or
 * constructed), or "hooks" (the runner's debugger hooks, part 4: `isInitializedAsync`
 * answers at once, anything else loads the module).
 */
type Import = "star" | "plain" | "members" | "hooks";

/** What is deferred: request => [the requiring file's path ends with, how it imports it]. */
const deferred: Record<string, [string, Import]> = {
  // Closure serialization (`runtime/closure/*.js`).
  "@npmcli/arborist": [`${pulumiDir}runtime${sep}closure${sep}codePaths.js`, "star"], // `new arborist.Arborist(...)`
  "normalize-package-data": [`${pulumiDir}runtime${sep}closure${sep}codePaths.js`, "plain"],
  "../../typescript-shim": [`${pulumiDir}runtime${sep}closure${sep}parseFunction.js`, "plain"], // `ts.SyntaxKind` etc.
  // `pulumi.automation`: only ever used through its members, by programs that drive other stacks.
  "./automation": [`${pulumiDir}index.js`, "star"],
  // The program runner's debugger session (part 4): "hooks" answers isInitializedAsync.
  "../../runtime/closure/v8Hooks": [`${pulumiDir}cmd${sep}run${sep}index.js`, "hooks"],
  // The program runner's `--tracing`.
  "@opentelemetry/resources": [tracingFile, "members"],
  "@opentelemetry/sdk-trace-base": [tracingFile, "members"],
  "@opentelemetry/exporter-zipkin": [tracingFile, "members"],
  "@opentelemetry/instrumentation-grpc": [tracingFile, "members"],
  "@opentelemetry/sdk-trace-node": [tracingFile, "members"],
  "@opentelemetry/instrumentation": [tracingFile, "members"],
};

/** Messages of @pulumi/pulumi's own, one per resource and step, dropped by part 3. */
export { CHATTER };

function standIn(load: () => unknown, esModule: boolean, own: Record<string, unknown> = {}): unknown {
  let real: unknown;
  const get = () => (real ??= load()) as object;
  // An arrow function: callable, and no non-configurable own property (such as a
  // function's `prototype`) that the traps below would have to report.
  return new Proxy(() => undefined, {
    get: (_, key) => {
      if (key === LAZY) return true;
      if (typeof key === "string" && Object.hasOwn(own, key)) return own[key];
      if (key === "__esModule" && (esModule || real === undefined)) return esModule || undefined;
      return Reflect.get(get(), key);
    },
    has: (_, key) => Reflect.has(get(), key),
    ownKeys: () => Reflect.ownKeys(get()),
    getOwnPropertyDescriptor: (_, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(get(), key);
      return descriptor && { ...descriptor, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(get()),
    set: (_, key, value) => Reflect.set(get(), key, value),
    apply: (_, self, args) => Reflect.apply(get() as (...a: unknown[]) => unknown, self, args),
  });
}

/** A stand-in for member KEY of a module: loads it when called, constructed or read. */
function memberStandIn(load: () => unknown, key: string | symbol): unknown {
  const get = () => Reflect.get(load() as object, key) as (...args: unknown[]) => unknown;
  // A plain function: constructible, so that `new` reaches the construct trap.
  return new Proxy(function () {}, {
    get: (_, k) => (k === LAZY ? true : Reflect.get(get(), k)),
    apply: (_, self, args) => Reflect.apply(get(), self, args),
    construct: (_, args) => Reflect.construct(get(), args),
  });
}

/** A module stand-in whose members are stand-ins: for `const { X, Y } = require(...)`. */
function membersStandIn(load: () => unknown): unknown {
  let real: unknown;
  const once = () => (real ??= load());
  const members = new Map<string | symbol, unknown>();
  return new Proxy(Object.create(null) as object, {
    get: (_, key) => {
      if (key === LAZY) return true;
      if (real !== undefined) return Reflect.get(real as object, key);
      if (key === "__esModule" || key === "then") return undefined;
      if (!members.has(key)) members.set(key, memberStandIn(once, key));
      return members.get(key);
    },
  });
}

/** Whether each installed copy of @pulumi/pulumi (by its folder) is a tested version. */
const testedCopies = new Map<string, boolean>();

/** Whether FILE belongs to a copy of @pulumi/pulumi of a tested version (read once per copy). */
function inTestedPulumi(file: string): boolean {
  const at = file.lastIndexOf(pulumiDir);
  if (at < 0) return false;
  const root = file.slice(0, at + pulumiDir.length);
  let tested = testedCopies.get(root);
  if (tested === undefined) {
    tested = testedPulumiAt(root);
    testedCopies.set(root, tested);
  }
  return tested;
}

function inPulumi(parent: NodeJS.Module | undefined): boolean {
  return typeof parent?.filename === "string" && inTestedPulumi(parent.filename);
}

/**
 * Wraps `debuggablePromise` (part 2), `log.debug` (part 3) and the debugger hooks'
 * `getSessionAsync` and `getScriptUrl` (part 4), once each, when their module is loaded.
 */
function patch(request: string, parent: NodeJS.Module | undefined, exported: unknown, done: Set<string>): void {
  if (!exported || typeof exported !== "object" || !inPulumi(parent)) return;
  const m = exported as Record<string, unknown>;
  if (!done.has("debuggable") && request.endsWith("debuggable") && quietDebuggable(m)) done.add("debuggable");
  if (!done.has("v8Hooks") && request.endsWith("v8Hooks") && typeof m.getSessionAsync === "function" && typeof m.getScriptUrl === "function") {
    done.add("v8Hooks");
    const getSessionAsync = m.getSessionAsync as (...args: unknown[]) => Promise<unknown>;
    const getScriptUrl = m.getScriptUrl as (id: string) => string | undefined;
    let urls: Map<string, string> | undefined;
    m.getSessionAsync = async function (this: unknown, ...args: unknown[]) {
      urls = await allScriptUrls();
      return getSessionAsync.apply(this, args);
    };
    m.getScriptUrl = (id: string) => getScriptUrl(id) ?? urls?.get(id);
  }
  if (!done.has("log") && /(^|\/)log$/.test(request) && quietLog(m)) done.add("log");
}

/** How many modules {@link patch} changes, each once. */
const PATCHES = 3;

/**
 * Part 4: scripts' URLs by id, from an inspector session of our own whose listener is
 * attached before it enables the debugger, so that it hears of every script loaded so
 * far; made once, when Pulumi's own session is first asked for.
 */
let scriptUrls: Promise<Map<string, string>> | undefined;
function allScriptUrls(): Promise<Map<string, string>> {
  scriptUrls ??= new Promise((resolve) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const inspector = require("node:inspector") as typeof import("node:inspector");
    const session = new inspector.Session();
    session.connect();
    const urls = new Map<string, string>();
    session.on("Debugger.scriptParsed", (event) => urls.set(event.params.scriptId, event.params.url));
    session.post("Debugger.enable", () => resolve(urls));
  });
  return scriptUrls;
}

/** Installs the hook; loading this module calls it once. Returns false if already done. */
export function install(): boolean {
  const internals = Module as unknown as ModuleInternals & { [LAZY]?: boolean };
  if (internals[LAZY]) return false;
  internals[LAZY] = true;
  const load = internals._load;
  const done = new Set<string>();
  internals._load = function nslabPreloadLoad(this: unknown, request: string, parent: NodeJS.Module | undefined, isMain: boolean) {
    const lazy = Object.hasOwn(deferred, request) ? deferred[request] : undefined;
    if (lazy && typeof parent?.filename === "string" && parent.filename.endsWith(lazy[0]) && inTestedPulumi(parent.filename)) {
      const real = () => {
        const exported = load.call(this, request, parent, isMain);
        if (done.size < PATCHES) patch(request, parent, exported, done);
        return exported;
      };
      if (lazy[1] === "members") return membersStandIn(real);
      if (lazy[1] === "hooks") return standIn(real, true, { isInitializedAsync: async () => undefined });
      return standIn(real, lazy[1] === "star");
    }
    // eslint-disable-next-line prefer-rest-params
    const exported = load.apply(this, arguments as unknown as Parameters<Load>);
    if (done.size < PATCHES) patch(request, parent, exported, done);
    return exported;
  };
  return true;
}

install();
// In the dynamic-provider process: watch the engine from the start, not only from the
// first call (provider/health.ts), so that a CLI killed before that call does not leave
// the provider waiting forever. Anywhere else a no-op.
watchEngine();
