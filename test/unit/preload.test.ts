import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHATTER } from "../../sdk/preload";
import { TESTED_PULUMI_VERSIONS } from "../../sdk/pulumi-version";

const REPO = path.resolve(__dirname, "../..");
const PRELOAD = path.join(REPO, "dist/sdk/preload.js");

/** Runs SCRIPT in a fresh Node.js process in the repo (so @pulumi/pulumi resolves), with
 * or without nslab/preload, and returns what it printed as JSON. */
function inNode(script: string, preload: boolean, env: NodeJS.ProcessEnv = {}, cwd = REPO): unknown {
  const stdout = execFileSync(process.execPath, [...(preload ? ["--require", PRELOAD] : []), "-e", script], {
    cwd,
    env: { ...process.env, NODE_OPTIONS: "", PULUMI_DEBUG_PROMISE_LEAKS: "", ...env },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"], // serializeFunction's walk of the globals prints deprecation warnings
  });
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

const LOADED = `
const deferred = ["@npmcli/arborist", "normalize-package-data", "typescript", "@pulumi/pulumi/automation"];
const loaded = () => deferred.filter((m) => Object.keys(require.cache).some((k) => k.includes("/node_modules/" + m + "/")));`;

describe("nslab/preload (the Node.js processes of scripts/pulumi)", () => {
  it("loading @pulumi/pulumi no longer loads its closure serializer's modules", () => {
    // What the program and the dynamic-provider process load first.
    const script = `${LOADED}
      require("@pulumi/pulumi"); require("@pulumi/pulumi/runtime");
      console.log(JSON.stringify(loaded()));`;
    expect(inNode(script, false)).toEqual(["@npmcli/arborist", "normalize-package-data", "typescript", "@pulumi/pulumi/automation"]);
    expect(inNode(script, true)).toEqual([]);
  });

  it("pulumi.automation loads when first used, and is the real module's API", () => {
    const script = `${LOADED}
      const pulumi = require("@pulumi/pulumi");
      const before = loaded();
      const { LocalWorkspace, Stack } = pulumi.automation;
      const direct = require("@pulumi/pulumi/automation");
      console.log(JSON.stringify({ before, after: loaded(), same: LocalWorkspace === direct.LocalWorkspace && Stack === direct.Stack,
        keys: Object.keys(pulumi.automation).sort().join() === Object.keys(direct).sort().join(), isClass: typeof LocalWorkspace.create === "function" }));`;
    expect(inNode(script, true)).toEqual({ before: [], after: ["@pulumi/pulumi/automation"], same: true, keys: true, isClass: true });
  });

  it("closure serialization still works: the real modules load on first use", () => {
    const script = `${LOADED}
      const pulumi = require("@pulumi/pulumi");
      (async () => {
        const fn = await pulumi.runtime.serializeFunction(() => 40 + 2);
        const afterSerialize = loaded();
        const paths = await pulumi.runtime.computeCodePaths({ extraIncludePackages: ["ipaddr.js"] });
        console.log(JSON.stringify({ text: fn.text.includes("40 + 2"), afterSerialize, paths: [...paths.keys()], after: loaded() }));
      })();`;
    const without = inNode(script, false) as { paths: string[] };
    const withPreload = inNode(script, true) as { text: boolean; afterSerialize: string[]; paths: string[]; after: string[] };
    expect(withPreload.text).toBe(true);
    expect(withPreload.afterSerialize).toEqual(["typescript"]);
    expect(withPreload.paths).toContain("node_modules/ipaddr.js");
    expect(withPreload.paths).toEqual(without.paths);
    expect(withPreload.after).toEqual(["@npmcli/arborist", "normalize-package-data", "typescript"]);
  });

  it("the program's runner loads OpenTelemetry's SDK only when tracing is asked for, and tracing still starts", () => {
    const script = `
      require("@pulumi/pulumi");
      const sdk = () => Object.keys(require.cache).filter((k) => /@opentelemetry\\/(sdk-trace|exporter|instrumentation|resources)/.test(k)).length;
      const tracing = require("@pulumi/pulumi/cmd/run/tracing.js");
      tracing.newSpan("without tracing").end(); // what the runner always does
      const before = sdk();
      tracing.start("http://127.0.0.1:9/api/v2/spans"); // --tracing; nothing listens there, nothing is sent yet
      const provider = require("@opentelemetry/api").trace.getTracerProvider().getDelegate().constructor.name;
      console.log(JSON.stringify({ before, after: sdk(), provider }));`;
    const without = inNode(script, false) as { before: number };
    expect(without.before).toBeGreaterThan(0);
    const withPreload = inNode(script, true) as { before: number; after: number; provider: string };
    expect(withPreload.before).toBe(0);
    expect(withPreload.after).toBeGreaterThan(0);
    expect(withPreload.provider).toBe("NodeTracerProvider");
  });

  it("the runner opens no debugger session up front; a serialized function is still named by file and line", () => {
    const script = `
      const fs = require("node:fs"), os = require("node:os"), path = require("node:path"), Module = require("node:module");
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "nslab-preload-")), "located.js");
      fs.writeFileSync(file, "module.exports = function located() { return 1; };\\n");
      const located = require(file); // loaded before any debugger session, like a program's modules
      const pulumi = require("@pulumi/pulumi");
      // What the runner (cmd/run/index.js) gets when it asks for the debugger hooks.
      const runner = new Module(require.resolve("@pulumi/pulumi/cmd/run/index.js"));
      runner.filename = runner.id;
      runner.paths = Module._nodeModulePaths(path.dirname(runner.id));
      const hooks = Module._load("../../runtime/closure/v8Hooks", runner, false);
      const hooksLoaded = () => Object.keys(require.cache).some((k) => k.endsWith("v8Hooks.js"));
      hooks.isInitializedAsync().then(async () => {
        const before = hooksLoaded();
        const where = await require("@pulumi/pulumi/runtime/closure/v8").getFunctionLocationAsync(located);
        fs.rmSync(path.dirname(file), { recursive: true });
        console.log(JSON.stringify({ before, file: where.file === "file://" + file, standIn: hooks[Symbol.for("nslab.lazy")] === true }));
      });`;
    expect(inNode(script, true)).toEqual({ before: false, file: true, standIn: true });
    // Without the preload the runner's session is made at once (and, made after the
    // program's modules, would not know their files either: the second session fixes that).
    expect(inNode(script, false)).toEqual({ before: true, file: false, standIn: false });
  });

  it("takes no stack trace per promise unless PULUMI_DEBUG_PROMISE_LEAKS is set", () => {
    const script = `
      require("@pulumi/pulumi"); // as in the program and the provider process: loads the rest
      const { debuggablePromise } = require("@pulumi/pulumi/runtime/debuggable");
      const p = Promise.resolve(1);
      debuggablePromise(p, "ctx");
      console.log(JSON.stringify({ trace: p._debugStackTrace, limit: Error.stackTraceLimit }));`;
    const frames = (r: unknown) => ((r as { trace: string }).trace.match(/\n {4}at /g) ?? []).length;
    expect(frames(inNode(script, false))).toBeGreaterThan(0);
    const quiet = inNode(script, true) as { trace: string; limit: number };
    expect(frames(quiet)).toBe(0);
    expect(quiet.limit).toBe(10); // put back
    expect(frames(inNode(script, true, { PULUMI_DEBUG_PROMISE_LEAKS: "1" }))).toBeGreaterThan(0);
  });

  it("wraps log.debug unless NSLAB_PULUMI_DEBUG=1; installing twice is a no-op", () => {
    const script = `
      const log = require("@pulumi/pulumi").log;
      const wrapped = log.debug.toString().includes("CHATTER");
      const again = require(${JSON.stringify(PRELOAD)}).install(); // already installed by --require
      console.log(JSON.stringify({ wrapped, again, twice: require("@pulumi/pulumi/log").debug === log.debug }));`;
    expect(inNode(script, false)).toMatchObject({ wrapped: false });
    expect(inNode(script, true)).toEqual({ wrapped: true, again: false, twice: true });
    expect(inNode(script, true, { NSLAB_PULUMI_DEBUG: "1" })).toEqual({ wrapped: false, again: false, twice: true });
  });

  it("drops only the runtime's per-resource messages, as @pulumi/pulumi words them", () => {
    const label = "resource:web[pulumi-nodejs:dynamic/nslab:Namespace]";
    for (const msg of [
      "Registering resource: t=pulumi-nodejs:dynamic/nslab:Namespace, name=web, custom=true, remote=false",
      "RegisterResource RPC prepared: t=pulumi-nodejs:dynamic/nslab:Namespace, name=web",
      `RegisterResource RPC finished: ${label}; err: null, resp: 1,2,3`,
      `Resource RPC serialization requested: ${label} is current`,
    ]) {
      expect(CHATTER.test(msg), msg).toBe(true);
    }
    for (const msg of [
      `RegisterResource RPC finished: ${label}; err: Error: 14 UNAVAILABLE, resp: undefined`,
      "RegisterResource RPC failed: t=x, name=web, err=Error: boom",
      "Found typescript version 5.9.3",
      "my own debug message: Registering resource: x",
    ]) {
      expect(CHATTER.test(msg), msg).toBe(false);
    }
  });
});

describe("importing nslab (the plain pulumi command, no preload)", () => {
  // What Pulumi's runner has loaded before the program imports nslab, then the import.
  const OBSERVE = `
    const pulumi = require("@pulumi/pulumi");
    const before = pulumi.log.debug.toString().includes("CHATTER");
    require(${JSON.stringify(path.join(REPO, "dist/sdk/index.js"))});
    const { debuggablePromise } = require("@pulumi/pulumi/runtime/debuggable");
    const p = Promise.resolve(1);
    debuggablePromise(p, "ctx");
    console.log(JSON.stringify({ before, wrapped: pulumi.log.debug.toString().includes("CHATTER"), traced: / {4}at /.test(p._debugStackTrace) }));`;

  it("quiets the per-resource debug chatter and the per-promise stack traces of the loaded @pulumi/pulumi", () => {
    expect(inNode(OBSERVE, false)).toEqual({ before: false, wrapped: true, traced: false });
    expect(inNode(OBSERVE, false, { NSLAB_PULUMI_DEBUG: "1", PULUMI_DEBUG_PROMISE_LEAKS: "1" })).toEqual({ before: false, wrapped: false, traced: true });
    // With the preload too: wrapped once, not twice.
    const twice = `${OBSERVE.replace("console.log", "const once = require('@pulumi/pulumi').log.debug; require(" + JSON.stringify(path.join(REPO, "dist/sdk/quiet.js")) + ").quietPulumi(); console.log(JSON.stringify({ same: require('@pulumi/pulumi').log.debug === once })); void ")}`;
    expect(inNode(twice, true)).toEqual({ same: true });
  });
});

describe("nslab/preload only touches @pulumi/pulumi versions it was tested with", () => {
  it("lists the version the repository pins (upgrade @pulumi/pulumi: run the preload tests against it, then add it)", () => {
    const pinned = (JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies["@pulumi/pulumi"];
    expect(TESTED_PULUMI_VERSIONS).toContain(pinned);
    // The installed copy is the pinned one: the tests above ran against a listed version.
    expect(JSON.parse(fs.readFileSync(path.join(REPO, "node_modules/@pulumi/pulumi/package.json"), "utf8")).version).toBe(pinned);
  });

  // A copy of the installed @pulumi/pulumi that says it is another release: the same code,
  // so any difference in behaviour comes from the version check alone. It sits under the
  // repo so that its own dependencies resolve from the repo's node_modules.
  const UNTESTED = "3.999.0";
  let project: string;
  beforeAll(() => {
    fs.mkdirSync(path.join(REPO, "test/.work"), { recursive: true });
    project = fs.mkdtempSync(path.join(REPO, "test/.work/preload-untested-"));
    const copy = path.join(project, "node_modules/@pulumi/pulumi");
    fs.cpSync(path.join(REPO, "node_modules/@pulumi/pulumi"), copy, { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(copy, "package.json"), "utf8")) as { version: string };
    fs.writeFileSync(path.join(copy, "package.json"), JSON.stringify({ ...manifest, version: UNTESTED }));
  });
  afterAll(() => fs.rmSync(project, { recursive: true, force: true }));

  // What the preload would change, observed in one process: deferred modules, the wrapped
  // log.debug, stack traces per promise; and whether serialization still works.
  const OBSERVE = `${LOADED}
    const pulumi = require("@pulumi/pulumi");
    const version = require("@pulumi/pulumi/package.json").version;
    const atLoad = loaded();
    const wrapped = pulumi.log.debug.toString().includes("CHATTER");
    const { debuggablePromise } = require("@pulumi/pulumi/runtime/debuggable");
    const p = Promise.resolve(1);
    debuggablePromise(p, "ctx");
    const traced = / {4}at /.test(p._debugStackTrace); // a stack frame
    pulumi.runtime.serializeFunction(() => 40 + 2).then((fn) =>
      console.log(JSON.stringify({ version, atLoad, wrapped, traced, serialized: fn.text.includes("40 + 2") })));`;

  it("leaves an untested version untouched: the program runs exactly as without the preload", () => {
    const without = inNode(OBSERVE, false, {}, project) as { version: string };
    const withPreload = inNode(OBSERVE, true, {}, project);
    expect(without.version).toBe(UNTESTED);
    expect(withPreload).toEqual(without);
    expect(withPreload).toMatchObject({ wrapped: false, traced: true, serialized: true });
    expect((withPreload as { atLoad: string[] }).atLoad).toContain("@npmcli/arborist");
  });

  it("importing nslab leaves an untested version's debug chatter and promise traces alone", () => {
    const script = `
      const log = require("@pulumi/pulumi/log");
      const changed = require(${JSON.stringify(path.join(REPO, "dist/sdk/quiet.js"))}).quietPulumi(require("node:path").dirname(require.resolve("@pulumi/pulumi/package.json")));
      console.log(JSON.stringify({ changed, wrapped: log.debug.toString().includes("CHATTER") }));`;
    expect(inNode(script, false, {}, project)).toEqual({ changed: { debuggable: false, log: false }, wrapped: false });
  });

  it("changes a tested version (the same code, its own version)", () => {
    const withPreload = inNode(OBSERVE, true) as { version: string };
    expect(TESTED_PULUMI_VERSIONS).toContain(withPreload.version);
    expect(withPreload).toMatchObject({ atLoad: [], wrapped: true, traced: false, serialized: true });
  });
});
