/**
 * nslab as a package in someone else's Pulumi project: the packed package installed from
 * npm into fresh projects outside this checkout, once with the lowest and once with the
 * highest @pulumi/pulumi of the peer range, driven by the stock `pulumi` CLI in a plain
 * environment (not scripts/pulumi) and by an Automation API program that mixes nslab
 * resources with a ComponentResource of the user's own.
 *
 * The sandbox has no network: scripts/setup fills an npm cache (.tools/npm-cache) with
 * these same installs, and the test installs from it with --offline.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { REPO, show } from "../helpers/lab";
import { pings } from "../helpers/net";
import { RunResult, Sandbox, must } from "../helpers/sandbox";
import { TESTED_PULUMI_VERSIONS } from "../../sdk/pulumi-version";

const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
const range = /^>=(\S+) <=(\S+)$/.exec(pkg.peerDependencies["@pulumi/pulumi"]);
if (!range) throw new Error(`peerDependencies @pulumi/pulumi must read ">=LOW <=HIGH", not ${pkg.peerDependencies["@pulumi/pulumi"]}`);
const [, LOW, HIGH] = range;
/** What a user's TypeScript project has besides nslab and @pulumi/pulumi (the repo's pins, so they are in the cache). */
const USER_DEV_DEPS = Object.fromEntries(["typescript", "ts-node", "@types/node"].map((name) => [name, pkg.devDependencies[name]]));
const USER_DEV = Object.entries(USER_DEV_DEPS).map(([name, version]) => `${name}@${version}`);
const NPM_CACHE = path.join(REPO, ".tools/npm-cache");
const PULUMI = path.join(REPO, ".tools/bin/pulumi");

/** The stock CLI's environment: nothing of scripts/pulumi's, only what a user sets. */
function plainEnv(project: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    // .tools/bin holds node 22, pulumi and the language host; the dynamic-provider
    // launcher sits next to the real pulumi binary, where the CLI looks first.
    PATH: `${path.join(REPO, ".tools/bin")}:/usr/local/bin:/usr/bin:/bin`,
    HOME: path.join(project, "home"),
    PULUMI_BACKEND_URL: `file://${path.join(project, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    NO_COLOR: "1",
    ...extra,
  };
}

/** A file that "Use nslab in your own project" in the README writes with `cat > FILE <<'TAG'`, as written. */
function readmeFile(file: string): string {
  const lines = fs.readFileSync(path.join(REPO, "README.md"), "utf8").split("\n");
  const start = lines.findIndex((l) => new RegExp(`^ {4}cat > ${file.replace(".", "\\.")} <<'([A-Z]+)'$`).test(l));
  if (start < 0) throw new Error(`README.md writes no ${file}`);
  const tag = /<<'([A-Z]+)'$/.exec(lines[start])![1];
  const end = lines.indexOf(`    ${tag}`, start + 1);
  return lines.slice(start + 1, end).map((l) => l.slice(4)).join("\n") + "\n";
}

/** npm, offline, from the cache scripts/setup filled. */
function npm(args: string[], cwd: string): Promise<string> {
  return must("npm", [...args, "--offline", "--cache", NPM_CACHE, "--no-audit", "--no-fund", "--loglevel=error", "--no-update-notifier"], {
    cwd,
    timeoutMs: 240_000,
  });
}

const PROGRAM = `import * as nslab from "nslab";

const ns1 = new nslab.Namespace("ns1");
const ns2 = new nslab.Namespace("ns2");
new nslab.VethPair("ns1-ns2", {
  a: { name: "veth-ns1", namespace: ns1.name, addresses: ["192.168.1.1/24"] },
  b: { name: "veth-ns2", namespace: ns2.name, addresses: ["192.168.1.2/24"] },
});
export const namespaces = [ns1.name, ns2.name];
`;

// A user's Automation API program: their own ComponentResource, with nslab resources as
// its children, run by nslab.localLab on the backend PULUMI_BACKEND_URL names.
const AUTOMATION = `const pulumi = require("@pulumi/pulumi");
const nslab = require("nslab");

class Site extends pulumi.ComponentResource {
  constructor(name, opts) {
    super("user:lab:Site", name, {}, opts);
    const a = new nslab.Namespace(name + "-a", {}, { parent: this });
    const b = new nslab.Namespace(name + "-b", {}, { parent: this });
    new nslab.VethPair(name + "-link", {
      a: { name: "veth-a", namespace: a.name, addresses: ["10.9.0.1/24"] },
      b: { name: "veth-b", namespace: b.name, addresses: ["10.9.0.2/24"] },
    }, { parent: this });
    this.namespaces = pulumi.all([a.name, b.name]);
    this.registerOutputs({ namespaces: this.namespaces });
  }
}

async function main() {
  const stack = await nslab.localLab({
    projectName: "user-auto",
    program: async () => ({ namespaces: new Site("site").namespaces }),
  });
  const onOutput = (text) => process.stderr.write(text);
  const op = process.argv[2];
  let result;
  if (op === "up") result = await stack.up({ onOutput });
  else if (op === "check") result = await stack.preview({ refresh: true, expectNoChanges: true, onOutput });
  else if (op === "destroy") result = await stack.destroy({ onOutput });
  else throw new Error("usage: node automation.js up|check|destroy");
  const resources = (await stack.exportStack()).deployment.resources || [];
  console.log(JSON.stringify({
    result: result.summary ? result.summary.result : undefined,
    changes: result.changeSummary,
    outputs: result.outputs && Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value])),
    resources: resources.map((r) => ({ type: r.type, urn: r.urn, parent: r.parent })),
  }));
}
main().catch((err) => { console.error(err); process.exitCode = 1; });
`;

interface AutomationReport {
  result?: string;
  changes?: Record<string, number>;
  outputs?: Record<string, unknown>;
  resources: { type: string; urn: string; parent?: string }[];
}

let work: string;
let tarball: string;
const projects: Record<string, Promise<string>> = {};

beforeAll(async () => {
  if (!fs.existsSync(NPM_CACHE)) throw new Error(`${NPM_CACHE} is missing: run scripts/setup (it caches the packages of a user's project)`);
  work = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-out-of-tree-"));
  // The compiled package (scripts/test builds dist first), packed as it would be published.
  const packed = (await must("npm", ["pack", "--pack-destination", work, "--loglevel=error", "--no-update-notifier"], { cwd: REPO })).trim().split("\n").pop()!;
  tarball = path.join(work, packed);
  // Both projects install side by side (npm mostly waits on the disk); each suite awaits its own.
  for (const version of [LOW, HIGH]) {
    projects[version] = userProject(version);
    projects[version].catch(() => undefined); // reported by the suite that awaits it
  }
});

/** A user's project: npm init, npm install of the tarball and @pulumi/pulumi@VERSION, a program. */
async function userProject(version: string): Promise<string> {
  const project = path.join(work, version);
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "user-lab", private: true }, null, 2) + "\n");
  await npm(["install", tarball, `@pulumi/pulumi@${version}`, ...USER_DEV], project);
  fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: user-lab\nruntime: nodejs\nmain: index.ts\n");
  fs.writeFileSync(path.join(project, "index.ts"), PROGRAM);
  fs.writeFileSync(path.join(project, "automation.js"), AUTOMATION);
  fs.mkdirSync(path.join(project, "state")); // the file backend's folder, as `pulumi login file://...` wants it
  return project;
}

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.each([LOW, HIGH])("nslab in a user's project outside the checkout, with @pulumi/pulumi %s", (version) => {
  let project: string;
  let sandbox: Sandbox;

  beforeAll(async () => {
    project = await projects[version];
  }, 300_000);

  beforeEach(async () => {
    sandbox = await Sandbox.create();
  });
  afterEach(async () => {
    await sandbox.destroy();
  });

  /**
   * Runs a command in the project folder inside the sandbox, as a user would from a shell
   * there. (The folder is entered inside the sandbox: a working directory handed over by
   * nsenter belongs to the mount namespace outside, and Go's getwd refuses it.)
   */
  const inProject = (command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> =>
    sandbox.run("sh", ["-c", 'cd "$0" && exec "$@"', project, command, ...args], { env: plainEnv(project, env), timeoutMs: 300_000 });
  const pulumi = (args: string[]): Promise<RunResult> => inProject(PULUMI, args);

  it("one copy of @pulumi/pulumi: the user's, at the version they chose", () => {
    const installed = (dir: string) => (JSON.parse(fs.readFileSync(path.join(project, "node_modules", dir, "package.json"), "utf8")) as { version: string }).version;
    expect(installed("@pulumi/pulumi")).toBe(version);
    expect(installed("nslab")).toBe(pkg.version);
    expect(fs.existsSync(path.join(project, "node_modules/nslab/node_modules/@pulumi/pulumi"))).toBe(false);
  });

  it("the stock pulumi CLI: up, packets flow, no drift, about without warnings, destroy leaves nothing", async () => {
    const init = await pulumi(["stack", "init", "dev"]);
    expect(init.exitCode, show(init)).toBe(0);
    const up = await pulumi(["up", "--yes", "--skip-preview", "--non-interactive"]);
    expect(up.exitCode, show(up)).toBe(0);
    expect(await pings(sandbox, "ns1", "192.168.1.2")).toBe(true);
    expect(await pings(sandbox, "ns2", "192.168.1.1")).toBe(true);

    // The call sites recorded in the state (sdk/callsites.ts): with a tested @pulumi/pulumi
    // the user's line and nothing else; with any other, Pulumi's own trace (the position
    // then is nslab's constructor, in node_modules), untouched.
    const exported = await pulumi(["stack", "export"]);
    expect(exported.exitCode, show(exported)).toBe(0);
    type Res = { type: string; urn: string; sourcePosition?: string; stackTrace?: { sourcePosition?: string }[] };
    const nslabResources = (JSON.parse(exported.stdout) as { deployment: { resources: Res[] } }).deployment.resources.filter((r) => r.type.includes("dynamic/nslab:"));
    expect(nslabResources).toHaveLength(3);
    const lineOf = (text: string) => PROGRAM.split("\n").findIndex((l) => l.includes(text)) + 1;
    for (const r of nslabResources) {
      const name = r.urn.split("::").pop()!;
      if (TESTED_PULUMI_VERSIONS.includes(version)) {
        const position = `project:///index.ts#${lineOf(`("${name}"`)},`;
        expect(r.sourcePosition, name).toContain(position);
        expect(r.stackTrace!.map((f) => f.sourcePosition), name).toEqual([r.sourcePosition]);
      } else {
        expect(r.sourcePosition, name).toContain("/node_modules/nslab/");
        expect(r.stackTrace!.length, name).toBeGreaterThan(3);
      }
    }

    const drift = await pulumi(["preview", "--refresh", "--expect-no-changes", "--non-interactive"]);
    expect(drift.exitCode, show(drift)).toBe(0);

    const about = await pulumi(["about"]);
    expect(about.exitCode, show(about)).toBe(0);
    expect(about.stdout + about.stderr).not.toMatch(/not implemented|warning/i);
    // The program's dependencies, as the language host reads them from package.json and node_modules.
    expect(about.stdout).toMatch(new RegExp(`@pulumi/pulumi\\s+${version.replace(/\./g, "\\.")}`));
    expect(about.stdout).toMatch(new RegExp(`nslab\\s+${pkg.version.replace(/\./g, "\\.")}`));

    const destroy = await pulumi(["destroy", "--yes", "--skip-preview", "--non-interactive"]);
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  // The SDK's version does not matter to npm: once at each end is enough.
  if (version === LOW) {
    it("pulumi install: the language host installs the project's dependencies with npm", async () => {
      // A project as a user checks it out: package.json, Pulumi.yaml and the program, no node_modules.
      const fresh = fs.mkdtempSync(path.join(work, `install-${version}-`));
      fs.writeFileSync(
        path.join(fresh, "package.json"),
        JSON.stringify({ name: "user-lab", private: true, dependencies: { nslab: `file:${tarball}`, "@pulumi/pulumi": version }, devDependencies: USER_DEV_DEPS }, null, 2) + "\n",
      );
      for (const file of ["Pulumi.yaml", "index.ts"]) fs.copyFileSync(path.join(project, file), path.join(fresh, file));
      const r = await sandbox.run("sh", ["-c", 'cd "$0" && exec "$@"', fresh, PULUMI, "install"], {
        // npm reads its settings from the environment: offline, from the cache setup filled.
        env: plainEnv(fresh, { npm_config_offline: "true", npm_config_cache: NPM_CACHE, npm_config_audit: "false", npm_config_fund: "false" }),
        timeoutMs: 300_000,
      });
      expect(r.exitCode, show(r)).toBe(0);
      expect(r.stdout).toContain("Finished installing dependencies");
      const installed = (name: string) => (JSON.parse(fs.readFileSync(path.join(fresh, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
      expect(installed("@pulumi/pulumi")).toBe(version);
      expect(installed("nslab")).toBe(pkg.version);
    });
  }

  if (version === LOW) {
    it("a project set up as the README says: the program and the provider process load nslab/preload", async () => {
      // Pulumi.yaml and tsconfig.json as "Use nslab in your own project" writes them, the
      // user's package.json and node_modules, and a hook that records, once each process's main module has
      // loaded, what it runs and whether nslab/preload is in it.
      const dir = fs.mkdtempSync(path.join(work, `readme-${version}-`));
      for (const file of ["Pulumi.yaml", "tsconfig.json"]) fs.writeFileSync(path.join(dir, file), readmeFile(file));
      expect(readmeFile("Pulumi.yaml")).toContain("path: ./node_modules/nslab/plugin");
      for (const file of ["package.json", "index.ts"]) fs.copyFileSync(path.join(project, file), path.join(dir, file));
      fs.mkdirSync(path.join(dir, "state"));
      const log = path.join(dir, "processes.jsonl");
      const hook = path.join(dir, "hook.js");
      fs.writeFileSync(
        hook,
        `const Module = require("node:module");
setImmediate(() => require("node:fs").appendFileSync(${JSON.stringify(log)}, JSON.stringify({
  argv: process.argv.slice(1, 2).join(" "), execArgv: process.execArgv.join(" "),
  preload: Module[Symbol.for("nslab.lazy")] === true }) + "\\n"));
`,
      );
      const inDir = (args: string[], env: NodeJS.ProcessEnv = {}) =>
        sandbox.run("sh", ["-c", 'cd "$0" && exec "$@"', dir, PULUMI, ...args], { env: plainEnv(dir, { NODE_OPTIONS: `--require ${hook}`, ...env }), timeoutMs: 300_000 });
      type Seen = { argv: string; execArgv: string; preload: boolean };
      const seen = (): Seen[] => fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Seen);

      // A fresh clone, before npm install: no node_modules/nslab/plugin, and `pulumi install`
      // stops before installing anything, naming the folder (what the README warns of).
      expect((await inDir(["stack", "init", "dev"])).exitCode).toBe(0);
      const early = await inDir(["install"]);
      expect(early.exitCode, show(early)).not.toBe(0);
      expect(early.stdout + early.stderr).toContain(`no folder at path '${path.join(dir, "node_modules/nslab/plugin")}'`);
      fs.symlinkSync(path.join(project, "node_modules"), path.join(dir, "node_modules"));

      const up = await inDir(["up", "--yes", "--skip-preview", "--non-interactive"]);
      expect(up.exitCode, show(up)).toBe(0);
      expect(await pings(sandbox, "ns1", "192.168.1.2")).toBe(true);
      const program = seen().filter((p) => p.argv.includes("@pulumi/pulumi/cmd/run"));
      const provider = seen().filter((p) => p.argv.includes("@pulumi/pulumi/cmd/dynamic-provider"));
      expect(program.length, JSON.stringify(seen())).toBeGreaterThan(0);
      expect(provider, JSON.stringify(seen())).toHaveLength(1);
      for (const p of [...program, ...provider]) {
        expect(p.preload, JSON.stringify(p)).toBe(true);
      }
      // The provider is the project's copy of @pulumi/pulumi, started by nslab's launcher.
      expect(provider[0].argv).toMatch(/\/node_modules\/@pulumi\/pulumi\/cmd\/dynamic-provider\/index\.js$/);
      expect(provider[0].execArgv).toMatch(/--require \S+\/node_modules\/nslab\/plugin\/\.\.\/dist\/sdk\/preload\.js/);

      const about = await inDir(["about"]);
      expect(about.exitCode, show(about)).toBe(0);
      expect(about.stdout + about.stderr).not.toMatch(/not implemented|warning/i);

      // NSLAB_PRELOAD=0: the launcher starts the provider without it (the program's nodeargs are Pulumi.yaml's).
      fs.rmSync(log);
      const plain = await inDir(["preview", "--refresh", "--expect-no-changes", "--non-interactive"], { NSLAB_PRELOAD: "0" });
      expect(plain.exitCode, show(plain)).toBe(0);
      const plainProvider = seen().filter((p) => p.argv.includes("@pulumi/pulumi/cmd/dynamic-provider"));
      // (preview --refresh starts one for the refresh and one for the preview)
      expect(plainProvider.length, JSON.stringify(seen())).toBeGreaterThan(0);
      for (const p of plainProvider) expect(p.preload, JSON.stringify(p)).toBe(false);

      const destroy = await inDir(["destroy", "--yes", "--skip-preview", "--non-interactive"]);
      expect(destroy.exitCode, show(destroy)).toBe(0);
      expect(await sandbox.residue()).toEqual([]);
    });
  }

  // pulumi new installs through the same call; from a template folder, as a team keeps one.
  if (version === HIGH) {
    it("pulumi new from a local template: the language host installs the new project's dependencies", async () => {
      const template = fs.mkdtempSync(path.join(work, "template-"));
      fs.writeFileSync(path.join(template, "Pulumi.yaml"), "name: ${PROJECT}\ndescription: ${DESCRIPTION}\nruntime: nodejs\nmain: index.ts\ntemplate:\n  description: an nslab lab\n");
      fs.writeFileSync(
        path.join(template, "package.json"),
        JSON.stringify({ name: "${PROJECT}", private: true, dependencies: { nslab: `file:${tarball}`, "@pulumi/pulumi": version }, devDependencies: USER_DEV_DEPS }, null, 2) + "\n",
      );
      fs.copyFileSync(path.join(project, "index.ts"), path.join(template, "index.ts"));
      // The user's HOME and state beside the new project's folder, which must start empty.
      const user = fs.mkdtempSync(path.join(work, `new-${version}-`));
      fs.mkdirSync(path.join(user, "state"));
      const fresh = path.join(user, "newlab");
      fs.mkdirSync(fresh);
      const r = await sandbox.run("sh", ["-c", 'cd "$0" && exec "$@"', fresh, PULUMI, "new", template, "--yes", "--non-interactive", "--name", "newlab", "--stack", "dev"], {
        env: plainEnv(user, { npm_config_offline: "true", npm_config_cache: NPM_CACHE, npm_config_audit: "false", npm_config_fund: "false" }),
        timeoutMs: 300_000,
      });
      expect(r.exitCode, show(r)).toBe(0);
      expect(r.stdout).toContain("Finished installing dependencies");
      expect(JSON.parse(fs.readFileSync(path.join(fresh, "package.json"), "utf8")).name).toBe("newlab");
      const installed = (name: string) => (JSON.parse(fs.readFileSync(path.join(fresh, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
      expect(installed("@pulumi/pulumi")).toBe(version);
      expect(installed("nslab")).toBe(pkg.version);
    });
  }

  it("an Automation API program mixing a ComponentResource of the user's with nslab resources: up, packets flow, no drift, destroy", async () => {
    const backend = path.join(project, "automation-state");
    fs.mkdirSync(backend);
    const run = async (op: string): Promise<AutomationReport> => {
      const r = await inProject("node", ["automation.js", op], { PULUMI_BACKEND_URL: `file://${backend}` });
      expect(r.exitCode, show(r)).toBe(0);
      return JSON.parse(r.stdout.trim().split("\n").pop()!) as AutomationReport;
    };

    const up = await run("up");
    expect(up.result).toBe("succeeded");
    expect(up.outputs).toEqual({ namespaces: ["site-a", "site-b"] });
    const site = up.resources.find((r) => r.type === "user:lab:Site");
    expect(site, JSON.stringify(up.resources)).toBeDefined();
    const children = up.resources.filter((r) => r.parent === site!.urn).map((r) => r.type).sort();
    expect(children).toEqual(["pulumi-nodejs:dynamic/nslab:Namespace", "pulumi-nodejs:dynamic/nslab:Namespace", "pulumi-nodejs:dynamic/nslab:VethPair"]);
    expect(await pings(sandbox, "site-a", "10.9.0.2")).toBe(true);

    const check = await run("check");
    expect(Object.keys(check.changes ?? {})).toEqual(["same"]);

    const destroy = await run("destroy");
    expect(destroy.result).toBe("succeeded");
    expect(destroy.resources).toEqual([]);
    expect(await sandbox.residue()).toEqual([]);
    // localLab used the backend PULUMI_BACKEND_URL named, and made no state folder of its own.
    expect(fs.readdirSync(path.join(backend, ".pulumi/stacks/user-auto"))).toContain("dev.json");
    expect(fs.existsSync(path.join(project, ".nslab/state"))).toBe(false);
  });
});
