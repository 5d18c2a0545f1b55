import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import type { PulumiFn, Stack } from "@pulumi/pulumi/automation";
import { checkLimits } from "../provider/limits";
import { runBackend } from "./base";
import { normaliseBackendUrl } from "./identity";

/** Options of {@link localLab}. */
export interface LocalLabOptions {
  /** Pulumi project name of the lab. */
  projectName: string;
  /** Stack name; created when missing, selected otherwise. Default "dev". */
  stackName?: string;
  /** The lab, as an inline Pulumi program that creates nslab resources. */
  program: PulumiFn;
  /**
   * Folder the engine runs in. It must be able to resolve `nslab` and `@pulumi/pulumi`
   * through the usual node_modules chain, because the dynamic-provider process loads
   * them from there. Default: `.nslab/<projectName>` under the current directory.
   */
  workDir?: string;
  /**
   * Folder of the local file backend. Default: the backend `PULUMI_BACKEND_URL` names
   * when it is set in the environment (any backend URL), else `.nslab/state` under the
   * current directory.
   */
  stateDir?: string;
  /** Passphrase for the stack's secrets. Default: `PULUMI_CONFIG_PASSPHRASE`, or empty. */
  passphrase?: string;
  /** Stack configuration to set (plain values). */
  config?: Record<string, string>;
  /** More environment for every Pulumi command (e.g. PULUMI_HOME, PATH). */
  envVars?: Record<string, string>;
}

/**
 * Creates or selects a stack for an inline lab program on a local file backend (or the
 * one `PULUMI_BACKEND_URL` names, when it is set and `stateDir` is not), with
 * offline defaults (no Pulumi Cloud, no update checks, no plugin downloads). Drive it
 * with the Automation API: `await stack.up()`, `stack.preview()`, `stack.refresh()`,
 * `stack.destroy()`. The `pulumi` CLI must be on PATH (scripts/setup puts it in
 * `.tools/bin`). Like `scripts/pulumi`, it runs 32 resource operations at once unless
 * `PULUMI_PARALLEL` is set, and has the engine start the provider process with
 * nslab/preload unless `NSLAB_PRELOAD=0` (see the README); `envVars` override both.
 * A session limit (`NSLAB_IP_*`, in the environment or `envVars`) that is not a positive
 * whole number is refused here, naming it, before anything is made.
 *
 * ```ts
 * const stack = await nslab.localLab({ projectName: "lab", program: async () => {
 *   const ns = new nslab.Namespace("ns1");
 *   return { ns: ns.name };
 * }});
 * await stack.up();
 * await stack.destroy();
 * ```
 */
export async function localLab(options: LocalLabOptions): Promise<Stack> {
  // Loaded here, not at import: programs that only declare resources never pay for it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { LocalWorkspace } = require("@pulumi/pulumi/automation") as typeof import("@pulumi/pulumi/automation");
  const base = path.resolve(".nslab");
  const workDir = path.resolve(options.workDir ?? path.join(base, options.projectName));
  // An explicit stateDir wins; else the backend the environment names, as the CLI would use it.
  const envBackend = options.stateDir === undefined ? process.env.PULUMI_BACKEND_URL || undefined : undefined;
  const stateDir = envBackend === undefined ? path.resolve(options.stateDir ?? path.join(base, "state")) : undefined;
  const backendUrl = envBackend ?? `file://${stateDir}`;
  const envVars: Record<string, string> = {
    PULUMI_BACKEND_URL: backendUrl,
    PULUMI_CONFIG_PASSPHRASE: options.passphrase ?? process.env.PULUMI_CONFIG_PASSPHRASE ?? "",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // nslab's operations mostly wait on the kernel: more of them at once than the
    // engine's default (4 per CPU) makes big labs faster to destroy (docs/benchmark.md).
    PULUMI_PARALLEL: process.env.PULUMI_PARALLEL ?? "32",
    ...preloadOptions(),
    ...options.envVars,
  };
  // The provider process would refuse a bad session limit at its first operation.
  checkLimits({ ...process.env, ...envVars });
  // The backend the CLI gets (envVars may override it), as the program names it.
  const programBackend = normaliseBackendUrl(envVars.PULUMI_BACKEND_URL, workDir, os.homedir());
  requireResolvable(workDir, options.workDir === undefined);
  fs.mkdirSync(workDir, { recursive: true });
  if (stateDir !== undefined) fs.mkdirSync(stateDir, { recursive: true });
  const stack = await LocalWorkspace.createOrSelectStack(
    {
      stackName: options.stackName ?? "dev",
      projectName: options.projectName,
      // The inline program runs in this process, which may not have the backend in its
      // environment: tell it, for the stack part of nslab's marks (sdk/identity.ts).
      program: () => {
        runBackend().url = programBackend;
        return options.program();
      },
    },
    {
      workDir,
      envVars,
      projectSettings: { name: options.projectName, runtime: "nodejs", backend: { url: backendUrl } },
    },
  );
  for (const [key, value] of Object.entries(options.config ?? {})) await stack.setConfig(key, { value });
  return stack;
}

/**
 * The engine starts the dynamic-provider process in `workDir`, which loads
 * `@pulumi/pulumi` and nslab's provider from the node_modules chain there: a folder that
 * cannot reach them fails at the first resource with "Cannot find module". Checked
 * before anything is made.
 */
function requireResolvable(workDir: string, defaulted: boolean): void {
  // As a module in workDir resolves them (require.resolve with `paths` would find nslab
  // from nslab's own folder: a package may name itself), from its real path, as the
  // provider's launcher does (pwd -P): workDir may not exist yet.
  const resolveThere = createRequire(path.join(realFolder(workDir), "index.js")).resolve;
  const wanted: [string, string][] = [
    ["@pulumi/pulumi", "@pulumi/pulumi/cmd/dynamic-provider"],
    ["nslab", "nslab/provider"],
  ];
  const missing = wanted
    .filter(([, request]) => {
      try {
        resolveThere(request);
        return false;
      } catch {
        return true;
      }
    })
    .map(([name]) => name);
  if (missing.length === 0) return;
  throw new Error(
    `localLab: the engine would run the lab in ${workDir}${defaulted ? " (the default, .nslab/<projectName> under the current directory)" : ""}, from where ${missing.join(" and ")} cannot be found (no node_modules folder on the way up has ${missing.length === 1 ? "it" : "them"}). Run from your project's folder, or give workDir: a folder inside your project (where npm installed nslab and @pulumi/pulumi).`,
  );
}

/** `dir` with its nearest existing folder's symbolic links resolved. */
function realFolder(dir: string): string {
  const rest: string[] = [];
  let existing = dir;
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) {
    rest.unshift(path.basename(existing));
    existing = path.dirname(existing);
  }
  return path.join(fs.realpathSync(existing), ...rest);
}

/**
 * NODE_OPTIONS that load nslab/preload into the dynamic-provider process the engine
 * starts (about 0.25 s less start-up each time); nothing when NSLAB_PRELOAD=0 or when it
 * is already there. The inline program runs in your own process: start it with
 * `node --require nslab/preload` to have it there too.
 */
function preloadOptions(): Record<string, string> {
  const preload = path.join(__dirname, "preload.js");
  const current = process.env.NODE_OPTIONS ?? "";
  const wanted = process.env.NSLAB_PRELOAD ?? "";
  if (!["", "0", "1"].includes(wanted)) throw new Error(`NSLAB_PRELOAD must be 0 or 1 (it is ${JSON.stringify(wanted)}); unset it for the default`);
  if (wanted === "0" || current.includes(preload) || !fs.existsSync(preload)) return {};
  return { NODE_OPTIONS: `${current} --require ${JSON.stringify(preload)}`.trim() };
}
