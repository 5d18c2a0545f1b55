// What the benchmark scripts share: `--name value` arguments, and re-running the
// calling script inside a fresh sandbox (never on the host's network).
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const root = path.resolve(__dirname, "..");

/** `--name value` pairs of the command line, as an object. */
function parseArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(argv.reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
}

/** Outside the sandbox: runs `script` again inside a fresh one and exits with its status. */
function enterSandbox(script) {
  if (process.env.NSLAB_SANDBOX === "1") return;
  const r = spawnSync(path.join(root, "scripts/sandbox"), [process.execPath, script, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, PATH: `${root}/.tools/bin:${process.env.PATH}` },
  });
  process.exit(r.status ?? 1);
}

/**
 * The environment of one Pulumi run of a bench program in DIR (state in DIR/state).
 * "tuned": scripts/pulumi's (nslab/preload, 32 operations at once, no CLI debug log,
 * Node's compile cache) plus PULUMI_SKIP_CHECKPOINTS and transpile-only, as the figures
 * have always been taken. "stock": what a user who runs the `pulumi` command in their own
 * environment has: checkpoints after every step, type-checking unless the program's
 * tsconfig.json says otherwise, no preload unless the program's Pulumi.yaml asks for it
 * (`nodeargs` for the program, `plugins` for the provider process), the engine's default parallelism, a
 * PULUMI_HOME of its own with the CLI's logs; only what running offline needs is set,
 * plus the PULUMI_*, NSLAB_* and NODE_OPTIONS variables of the caller's environment
 * (none in a plain shell; what an experiment sets, as bench/ab-env.sh does).
 */
function pulumiEnv(dir, mode, extra = {}) {
  // NSLAB_BENCH_BACKEND_QUERY: options of the file backend's URL (its gocloud fileblob
  // driver), e.g. "metadata=skip" (no .attrs sidecar file per write), for bench/ab-env.sh.
  const query = process.env.NSLAB_BENCH_BACKEND_QUERY ? `?${process.env.NSLAB_BENCH_BACKEND_QUERY}` : "";
  const offline = { PULUMI_BACKEND_URL: `file://${dir}/state${query}`, PULUMI_CONFIG_PASSPHRASE: "", ...extra };
  if (mode === "tuned") {
    return {
      command: path.join(root, "scripts/pulumi"),
      env: {
        ...process.env,
        ...offline,
        PULUMI_NODEJS_TRANSPILE_ONLY: process.env.PULUMI_NODEJS_TRANSPILE_ONLY ?? "true",
        // State written once at the end instead of after every step (see README, "Speed").
        PULUMI_SKIP_CHECKPOINTS: process.env.PULUMI_SKIP_CHECKPOINTS ?? "true",
      },
    };
  }
  if (mode !== "stock") throw new Error(`mode is tuned or stock, not ${mode}`);
  const fs = require("node:fs");
  fs.mkdirSync(`${dir}/home`, { recursive: true });
  const asked = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(PULUMI_|NSLAB_)/.test(k) || k === "NODE_OPTIONS"));
  // NSLAB_BENCH_TOOLS: another folder laid out as .tools/bin (pulumi, pulumi-language-nodejs,
  // node, the dynamic-provider launcher), to compare two builds of the CLI with bench/ab-env.sh.
  const tools = process.env.NSLAB_BENCH_TOOLS ?? path.join(root, ".tools/bin");
  return {
    command: path.join(tools, "pulumi"),
    env: {
      PATH: `${tools}:${process.env.PATH}`,
      HOME: process.env.HOME ?? "/root",
      NSLAB_SANDBOX: process.env.NSLAB_SANDBOX,
      ...asked,
      ...offline,
      PULUMI_HOME: `${dir}/home`,
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    },
  };
}

/**
 * Copies a bench program (bench/NAME: Pulumi.yaml, index.ts and tsconfig.json if any) into
 * DIR, and links DIR/node_modules/nslab to this checkout, where `npm install nslab` would
 * have put it in a project of a user's (Pulumi.yaml's `plugins` path names it).
 */
function copyProgram(name, dir) {
  const fs = require("node:fs");
  for (const f of ["Pulumi.yaml", "index.ts", "tsconfig.json"]) {
    const from = path.join(root, "bench", name, f);
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(dir, f));
  }
  const link = path.join(dir, "node_modules", "nslab");
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.rmSync(link, { force: true });
  fs.symlinkSync(root, link);
}

module.exports = { root, parseArgs, enterSandbox, pulumiEnv, copyProgram };
