import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REPO } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

describe("programmatic labs with the Automation API (examples/06-automation)", () => {
  let sandbox: Sandbox;
  let dir: string;
  beforeEach(async () => {
    sandbox = await Sandbox.create();
    fs.mkdirSync(path.join(REPO, "test/.work"), { recursive: true });
    dir = fs.mkdtempSync(path.join(REPO, "test/.work/automation-"));
  });
  afterEach(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await sandbox.destroy();
  });

  it("builds N namespaces in a loop, every pair reaches each other, destroy leaves nothing", async () => {
    const r = await sandbox.run("node", ["-r", "ts-node/register", path.join(REPO, "examples/06-automation/lab.ts"), "5"], {
      cwd: dir,
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" },
      timeoutMs: 300_000,
    });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/up: \{"create":\d+\}/);
    expect(r.stdout).toContain("connectivity: 20/20 pairs reachable");
    expect(r.stdout).toMatch(/destroy: \{"delete":\d+\}/);
    // The helper kept its state and program folder under the current directory.
    expect(fs.existsSync(path.join(dir, ".nslab/state"))).toBe(true);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("localLab's inline program marks its objects with the backend localLab uses, not the one this process's environment names", async () => {
    const script = `
      const path = require("node:path");
      const nslab = require(${JSON.stringify(path.join(REPO, "dist/sdk/index.js"))});
      const { stackIdentity } = require(${JSON.stringify(path.join(REPO, "dist/sdk/identity.js"))});
      (async () => {
        const stateDir = path.resolve("own-state");
        const stack = await nslab.localLab({ projectName: "ident", stateDir, program: async () => { new nslab.Namespace("n1", { name: "autoid1" }); } });
        await stack.up();
        const resources = (await stack.exportStack()).deployment.resources;
        console.log("OWNER=" + resources.find((r) => r.type.endsWith(":Namespace")).outputs.__owner);
        console.log("WANT=" + stackIdentity("ident", "dev", "organization", "file://" + stateDir) + "/Namespace/n1");
        await stack.destroy();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = await sandbox.run(process.execPath, ["-e", script], {
      cwd: dir,
      // A backend in this process's environment that the stack does not use (stateDir wins).
      env: { ...process.env, PATH: `${REPO}/.tools/bin:${process.env.PATH}`, PULUMI_BACKEND_URL: `file://${dir}/elsewhere` },
      timeoutMs: 300_000,
    });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const owner = /OWNER=(.*)/.exec(r.stdout)?.[1];
    expect(owner).toMatch(/^ident\/dev@[0-9a-f]{8}\/Namespace\/n1$/);
    expect(owner).toBe(/WANT=(.*)/.exec(r.stdout)?.[1]);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("drift reports from the Automation API's own events: a preview with refresh (against the program) and previewRefresh (against the state)", async () => {
    const script = `
      const path = require("node:path");
      const { execFileSync } = require("node:child_process");
      const nslab = require(${JSON.stringify(path.join(REPO, "dist/sdk/index.js"))});
      (async () => {
        const stack = await nslab.localLab({ projectName: "drifty", stateDir: path.resolve("state"), program: async () => {
          const a = new nslab.Namespace("da", { name: "drift-a" });
          const b = new nslab.Namespace("db", { name: "drift-b" });
          new nslab.VethPair("p", { a: { name: "eth0", namespace: a.name, addresses: ["10.66.0.1/24"] }, b: { name: "eth0", namespace: b.name, addresses: ["10.66.0.2/24"] } });
        } });
        await stack.up();
        const clean = [];
        await stack.preview({ refresh: true, onEvent: (e) => clean.push(e) });
        console.log("CLEAN=" + nslab.formatDrift(nslab.driftFromPreviewEvents(clean)));
        execFileSync("ip", ["-n", "drift-a", "addr", "add", "10.66.0.99/24", "dev", "eth0"]);
        const events = [];
        await stack.preview({ refresh: true, onEvent: (e) => events.push(e) });
        console.log("PROGRAM=" + JSON.stringify(nslab.driftFromPreviewEvents(events)));
        const refreshed = [];
        await stack.previewRefresh({ onEvent: (e) => refreshed.push(e) });
        console.log("STATE=" + JSON.stringify(nslab.driftFromRefreshEvents(refreshed)));
        await stack.destroy();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = await sandbox.run(process.execPath, ["-e", script], { cwd: dir, env: { ...process.env, PATH: `${REPO}/.tools/bin:${process.env.PATH}` }, timeoutMs: 300_000 });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain("CLEAN=no drift: the live lab matches the program");
    const added = { property: "a.addresses", live: ["10.66.0.1/24", "10.66.0.99/24"] };
    const program = JSON.parse(/PROGRAM=(.*)/.exec(r.stdout)![1]);
    expect(program).toMatchObject([{ change: "update", type: "VethPair", name: "p", properties: [{ ...added, program: ["10.66.0.1/24"] }] }]);
    const state = JSON.parse(/STATE=(.*)/.exec(r.stdout)![1]);
    expect(state).toMatchObject([{ change: "update", type: "VethPair", name: "p", properties: [{ ...added, program: ["10.66.0.1/24"] }] }]);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("localLab refuses a workDir from where nslab and @pulumi/pulumi cannot be found, naming it and the fix, and makes nothing", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { localLab } = require(path.join(REPO, "dist/sdk/automation.js")) as typeof import("../../sdk/automation");
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-outside-"));
    try {
      const far = path.join(outside, "far");
      await expect(localLab({ projectName: "far", program: async () => ({}), workDir: far, stateDir: path.join(outside, "state") })).rejects.toThrow(
        `localLab: the engine would run the lab in ${far}, from where @pulumi/pulumi and nslab cannot be found (no node_modules folder on the way up has them). Run from your project's folder, or give workDir: a folder inside your project`,
      );
      expect(fs.readdirSync(outside)).toEqual([]);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });

  it("localLab uses the backend PULUMI_BACKEND_URL names when no stateDir is given; a stateDir wins", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { localLab } = require(path.join(REPO, "dist/sdk/automation.js")) as typeof import("../../sdk/automation");
    const saved = process.env.PULUMI_BACKEND_URL;
    const envState = path.join(dir, "env-state");
    fs.mkdirSync(envState);
    process.env.PULUMI_BACKEND_URL = `file://${envState}`;
    try {
      const fromEnv = await localLab({ projectName: "from-env", program: async () => ({}), workDir: path.join(dir, "from-env") });
      expect((fromEnv.workspace as unknown as { envVars: Record<string, string> }).envVars.PULUMI_BACKEND_URL).toBe(`file://${envState}`);
      expect(fs.existsSync(path.join(envState, ".pulumi/stacks/from-env/dev.json"))).toBe(true);
      expect(fs.existsSync(path.join(dir, ".nslab"))).toBe(false);
      expect(fs.existsSync(path.join(process.cwd(), ".nslab/state/.pulumi/stacks/from-env"))).toBe(false);

      const own = path.join(dir, "own-state");
      await localLab({ projectName: "own", program: async () => ({}), workDir: path.join(dir, "own"), stateDir: own });
      expect(fs.existsSync(path.join(own, ".pulumi/stacks/own/dev.json"))).toBe(true);
      expect(fs.existsSync(path.join(envState, ".pulumi/stacks/own"))).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.PULUMI_BACKEND_URL;
      else process.env.PULUMI_BACKEND_URL = saved;
    }
  });

  it("localLab has the engine start the provider process with nslab/preload, unless NSLAB_PRELOAD=0; refuses bad switches and session limits", async () => {
    // The compiled package, as programs load it (dist/sdk/preload.js sits next to it).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { localLab } = require(path.join(REPO, "dist/sdk/automation.js")) as typeof import("../../sdk/automation");
    const open = (name: string) => localLab({ projectName: name, program: async () => ({}), workDir: path.join(dir, name), stateDir: path.join(dir, "state") });
    const envOf = async (name: string) => ((await open(name)).workspace as unknown as { envVars: Record<string, string> }).envVars;
    const nodeOptions = async (name: string) => (await envOf(name)).NODE_OPTIONS;
    const saved = process.env.NSLAB_PRELOAD;
    try {
      // Like scripts/pulumi: 32 resource operations at once unless PULUMI_PARALLEL is set.
      expect((await envOf("parallel")).PULUMI_PARALLEL).toBe(process.env.PULUMI_PARALLEL ?? "32");
      delete process.env.NSLAB_PRELOAD;
      expect(await nodeOptions("with")).toContain(`--require ${JSON.stringify(path.join(REPO, "dist/sdk/preload.js"))}`);
      process.env.NSLAB_PRELOAD = "0";
      expect(await nodeOptions("without")).toBe(process.env.NODE_OPTIONS);
      process.env.NSLAB_PRELOAD = "yes";
      await expect(open("refused")).rejects.toThrow('NSLAB_PRELOAD must be 0 or 1 (it is "yes"); unset it for the default');
      expect(fs.existsSync(path.join(dir, "refused"))).toBe(false);
      delete process.env.NSLAB_PRELOAD;
      // A bad session limit, in envVars or the environment, is refused before anything is made.
      const limited = (envVars: Record<string, string>) =>
        localLab({ projectName: "limited", program: async () => ({}), workDir: path.join(dir, "limited"), stateDir: path.join(dir, "state-limited"), envVars });
      await expect(limited({ NSLAB_IP_IDLE_MS: "10s" })).rejects.toThrow('NSLAB_IP_IDLE_MS must be a positive whole number (it is "10s"); unset it for the default');
      process.env.NSLAB_IP_MAX_AGE_MS = "-1";
      try {
        await expect(limited({})).rejects.toThrow('NSLAB_IP_MAX_AGE_MS must be a positive whole number (it is "-1"); unset it for the default');
      } finally {
        delete process.env.NSLAB_IP_MAX_AGE_MS;
      }
      expect(fs.existsSync(path.join(dir, "state-limited"))).toBe(false);
      expect(fs.existsSync(path.join(dir, "limited"))).toBe(false);
      expect(fs.existsSync(path.join(dir, "state", ".pulumi", "stacks"))).toBe(true); // where the others were made
    } finally {
      if (saved === undefined) delete process.env.NSLAB_PRELOAD;
      else process.env.NSLAB_PRELOAD = saved;
    }
  });
});
