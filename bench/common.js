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

module.exports = { root, parseArgs, enterSandbox };
