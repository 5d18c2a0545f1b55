import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

// Reports which of @pulumi/pulumi's closure-serializer modules the program's process loaded.
const PROGRAM = `
import * as nslab from "nslab";
new nslab.Namespace("preloadns");
export const closureModules = ["@npmcli/arborist", "normalize-package-data"].filter((m) =>
  Object.keys(require.cache).some((k) => k.includes("/node_modules/" + m + "/")));
`;

/** The debug messages the engine received, from an --event-log file. */
function debugMessages(file: string): string[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { diagnosticEvent?: { severity: string; message: string } })
    .filter((e) => e.diagnosticEvent?.severity === "debug")
    .map((e) => e.diagnosticEvent!.message);
}

describe("scripts/pulumi with nslab/preload and without Pulumi's automatic logs", () => {
  let sandbox: Sandbox;
  sandboxPerTest((s) => (sandbox = s));

  it("the program loads no closure serializer and sends no per-resource debug chatter, unless asked", async () => {
    const lab = await Lab.create(sandbox, "preload", PROGRAM);
    const events = (name: string) => path.join(lab.dir, `${name}.events.json`);
    const debugEvents = { PULUMI_DEBUG_COMMANDS: "true" }; // makes --event-log available

    const up = await lab.up(["--event-log", events("up")], debugEvents);
    expect(up.exitCode, show(up)).toBe(0);
    expect((await sandbox.must("ip", ["netns", "list"])).trim()).toBe("preloadns");
    expect((await lab.outputs()).closureModules).toEqual([]);
    const quiet = debugMessages(events("up"));
    expect(quiet.some((m) => m.startsWith("Found typescript version"))).toBe(true); // debug messages do arrive
    expect(quiet.filter((m) => m.startsWith("Registering resource: "))).toEqual([]);
    // The CLI's own debug log of the command is off in scripts/pulumi's PULUMI_HOME.
    expect(fs.readlinkSync(path.join(REPO, ".tools/pulumi-home/logs"))).toBe("/dev/null");

    const debug = await lab.pulumi(["preview", "--non-interactive", "--debug", "--event-log", events("debug")], debugEvents);
    expect(debug.exitCode, show(debug)).toBe(0);
    expect(debugMessages(events("debug")).filter((m) => m.startsWith("Registering resource: ")).length).toBeGreaterThanOrEqual(2);

    const plain = await lab.up(["--event-log", events("plain")], { ...debugEvents, NSLAB_PRELOAD: "0" });
    expect(plain.exitCode, show(plain)).toBe(0);
    expect((await lab.outputs()).closureModules).toEqual(["@npmcli/arborist", "normalize-package-data"]);
    // Without the preload, importing nslab still drops the chatter of every resource
    // registered after the import (sdk/quiet.ts; the stack's own comes before it)...
    const registering = (file: string) => debugMessages(file).filter((m) => m.startsWith("Registering resource: "));
    expect(registering(events("plain")).filter((m) => m.includes("dynamic/nslab:"))).toEqual([]);
    // ...unless asked for, as `pulumi up --debug` through scripts/pulumi does.
    const asked = await lab.pulumi(["preview", "--non-interactive", "--event-log", events("asked")], { ...debugEvents, NSLAB_PRELOAD: "0", NSLAB_PULUMI_DEBUG: "1" });
    expect(asked.exitCode, show(asked)).toBe(0);
    expect(registering(events("asked")).filter((m) => m.includes("dynamic/nslab:")).length).toBeGreaterThanOrEqual(1);

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect((await sandbox.must("ip", ["netns", "list"])).trim()).toBe("");
    lab.cleanup();
  });

  it("a program that serializes a function (pulumi.dynamic.Resource) still works with the preload", async () => {
    // Closure serialization is what the preload defers (arborist, TypeScript's parser,
    // the debugger session): a dynamic resource of the program's own exercises all of it.
    const lab = await Lab.create(
      sandbox,
      "preload-dynamic",
      `
import * as pulumi from "@pulumi/pulumi";
const greeting = "hello";
const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { who: string }) {
    return { id: inputs.who, outs: { text: \`\${greeting}, \${inputs.who}\` } };
  },
};
class Greeting extends pulumi.dynamic.Resource {
  declare readonly text: pulumi.Output<string>;
  constructor(name: string, who: string) {
    super(provider, name, { who, text: undefined }, {});
  }
}
export const text = new Greeting("greet", "lab").text;
`,
    );
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect((await lab.outputs()).text).toBe("hello, lab");
    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    lab.cleanup();
  });

  it("runs 32 resource operations at once unless PULUMI_PARALLEL says otherwise", () => {
    const parallel = (env: NodeJS.ProcessEnv) =>
      execFileSync("bash", ["-c", '. "$root/scripts/lib/pulumi-env.sh"; echo "$PULUMI_PARALLEL"'], { env: { ...env, root: REPO }, encoding: "utf8" }).trim();
    const { PULUMI_PARALLEL: _set, ...env } = process.env;
    expect(parallel(env)).toBe("32");
    expect(parallel({ ...env, PULUMI_PARALLEL: "4" })).toBe("4");
  });

  it("refuses a switch that is not 0 or 1, naming it, and runs nothing", () => {
    for (const name of ["NSLAB_PRELOAD", "NSLAB_PULUMI_LOGS", "NSLAB_PULUMI_DEBUG"]) {
      const r = spawnSync(path.join(REPO, "scripts/pulumi"), ["version"], { env: { ...process.env, [name]: "yes" }, encoding: "utf8" });
      expect(r.status).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(`${name} must be 0 or 1 (it is 'yes'); unset it for the default\n`);
    }
  });

  it("refuses an ip session limit that is not a positive whole number, naming it, and runs nothing", () => {
    for (const name of ["NSLAB_IP_MAX_SESSIONS", "NSLAB_IP_IDLE_MS", "NSLAB_IP_MAX_AGE_MS", "NSLAB_IP_TIMEOUT_MS"]) {
      for (const value of ["abc", "0", "1.5"]) {
        const r = spawnSync(path.join(REPO, "scripts/pulumi"), ["version"], { env: { ...process.env, [name]: value }, encoding: "utf8" });
        expect(r.status).toBe(2);
        expect(r.stdout).toBe("");
        expect(r.stderr).toBe(`${name} must be a positive whole number (it is '${value}'); unset it for the default\n`);
      }
      const ok = spawnSync(path.join(REPO, "scripts/pulumi"), ["version"], { env: { ...process.env, [name]: " 250 " }, encoding: "utf8" });
      expect(ok.status).toBe(0);
    }
  });

  it("NSLAB_PULUMI_LOGS switches the CLI's logs of a PULUMI_HOME of yours only when set", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-pulumi-home-"));
    try {
      const logs = path.join(home, "logs");
      const version = (env: NodeJS.ProcessEnv) =>
        execFileSync(path.join(REPO, "scripts/pulumi"), ["version"], { env: { ...process.env, PULUMI_HOME: home, ...env }, encoding: "utf8" });
      const files = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

      version({ NSLAB_PULUMI_LOGS: "" }); // unset: your home is left as the CLI makes it
      expect(fs.lstatSync(logs).isDirectory()).toBe(true);
      const first = files(logs);
      expect(first).toHaveLength(1);

      version({ NSLAB_PULUMI_LOGS: "0" }); // off: the folder's logs are kept in logs.d, none is added
      expect(fs.readlinkSync(logs)).toBe("/dev/null");
      expect(files(path.join(home, "logs.d"))).toEqual(first);

      version({ NSLAB_PULUMI_LOGS: "1" }); // on: written to logs.d
      expect(fs.readlinkSync(logs)).toBe(path.join(home, "logs.d"));
      expect(files(path.join(home, "logs.d"))).toHaveLength(2);

      // A PULUMI_HOME that does not exist yet is made private, as the CLI would make it.
      const fresh = path.join(home, "fresh");
      execFileSync(path.join(REPO, "scripts/pulumi"), ["version"], { env: { ...process.env, PULUMI_HOME: fresh, NSLAB_PULUMI_LOGS: "0" } });
      expect(fs.statSync(fresh).mode & 0o777).toBe(0o700);
      expect(fs.readlinkSync(path.join(fresh, "logs"))).toBe("/dev/null");
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
