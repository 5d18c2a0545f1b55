import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { explainsFailure, projectDirOf, pulumiErrorHint, unprintedErrors } from "../../sdk/cli/hints";

const REPO = path.resolve(__dirname, "../..");

describe("nslab-drift --help", () => {
  // No pulumi on PATH: had the help come from `pulumi preview --help`, it would fail here.
  const env = { ...process.env, PATH: path.dirname(process.execPath) };
  for (const [what, command, args] of [
    ["nslab-drift --help", process.execPath, [path.join(REPO, "dist/sdk/cli/drift.js"), "--help"]],
    ["nslab-drift -h --stack dev", process.execPath, [path.join(REPO, "dist/sdk/cli/drift.js"), "-h", "--stack", "dev"]],
    ["scripts/drift-check --help", "bash", [path.join(REPO, "scripts/drift-check"), "--help"]],
  ] as const) {
    it(`${what} prints its own usage and exit codes, and runs nothing`, () => {
      const r = spawnSync(command, args, { env: what.startsWith("scripts") ? process.env : env, encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^Usage: nslab-drift \[--against-state\]/);
      expect(r.stdout).toContain("--against-state   pulumi refresh --preview-only");
      expect(r.stdout).toMatch(/Exit codes:\n {2}0 {3}no drift[^\n]*\n {2}7 {3}drift/);
      expect(r.stdout).not.toMatch(/pulumi preview \[url\]|Flags:/); // pulumi's own help
      expect(r.stderr).toBe("");
    });
  }
});

describe("hints on pulumi's errors", () => {
  it("an empty state sidecar (a pulumi killed while saving): says which files to remove; anything else: nothing", () => {
    expect(pulumiErrorHint("error: failed to load checkpoint: EOF\n")).toMatch(/find BACKEND_DIR\/\.pulumi\/stacks -name '\*\.attrs' -size 0 -delete/);
    expect(pulumiErrorHint("error: failed to load checkpoint: unexpected EOF")).not.toBe("");
    expect(pulumiErrorHint("error: no stack named 'dev' found")).toBe("");
  });

  it("names the project's file backend folder when it can tell (PULUMI_BACKEND_URL, Pulumi.yaml), as the CLI chooses it", () => {
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-hint-"));
    const saved = process.env.PULUMI_BACKEND_URL;
    try {
      process.env.PULUMI_BACKEND_URL = "file:///srv/lab state?metadata=skip";
      expect(pulumiErrorHint("error: failed to load checkpoint: EOF", project)).toContain("find '/srv/lab state'/.pulumi/stacks -name '*.attrs' -size 0 -delete. ");
      delete process.env.PULUMI_BACKEND_URL;
      fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: lab\nruntime: nodejs\nbackend:\n  url: file://./state\n");
      expect(pulumiErrorHint("error: failed to load checkpoint: EOF", project)).toContain(`find ${project}/state/.pulumi/stacks -name`);
      // From a folder below the project, as the CLI finds it (upward).
      fs.mkdirSync(path.join(project, "src"));
      expect(pulumiErrorHint("error: failed to load checkpoint: EOF", path.join(project, "src"))).toContain(`find ${project}/state/.pulumi/stacks -name`);
      // No project found and no PULUMI_BACKEND_URL: the placeholder, with what it means.
      fs.rmSync(path.join(project, "Pulumi.yaml"));
      expect(pulumiErrorHint("error: failed to load checkpoint: EOF", path.join(project, "src"))).toContain("find BACKEND_DIR/.pulumi/stacks -name '*.attrs' -size 0 -delete (BACKEND_DIR: the folder of your file:// backend URL)");
      expect(projectDirOf(["--stack", "dev", "--cwd", project])).toBe(project);
      expect(projectDirOf([`--cwd=${project}`])).toBe(project);
      expect(projectDirOf(["-C", project])).toBe(project);
    } finally {
      if (saved === undefined) delete process.env.PULUMI_BACKEND_URL;
      else process.env.PULUMI_BACKEND_URL = saved;
      fs.rmSync(project, { recursive: true, force: true });
    }
  });
});

describe("the engine's errors nslab-drift prints", () => {
  it("errors and what the program or language host wrote to stderr (info#err), not other diagnostics", () => {
    expect(["error", "info#err", "warning", "info", "debug", undefined].map(explainsFailure)).toEqual([true, true, false, false, false, false]);
  });

  it("each once, and none the CLI already printed", () => {
    const printed = "error: Namespace \"a\" on h: cannot reach h over SSH\n";
    expect(unprintedErrors(printed, ['Namespace "a" on h: cannot reach h over SSH', "Bridge b: refused\n", "Bridge b: refused", "  "])).toEqual(["Bridge b: refused"]);
  });
});

describe("nslab-orphans and nslab-drift outside a ready project", () => {
  // No pulumi on PATH (only node's folder).
  const env = { ...process.env, PATH: path.dirname(process.execPath) };
  const orphans = (args: string[]) => spawnSync(process.execPath, [path.join(REPO, "dist/sdk/cli/orphans.js"), ...args], { env, encoding: "utf8" });
  const drift = (args: string[]) => spawnSync(process.execPath, [path.join(REPO, "dist/sdk/cli/drift.js"), ...args], { env, encoding: "utf8" });

  it("nslab-orphans --help prints its usage and runs nothing", () => {
    const r = orphans(["--help"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: nslab-orphans \[--cwd DIR\]/);
  });

  it("a folder without a project file, a Pulumi.yml, and no pulumi on PATH: each says what to do", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-cli-"));
    try {
      const none = orphans(["--cwd", dir]);
      expect(none.status).toBe(1);
      expect(none.stderr).toContain(`nslab-orphans: no Pulumi.yaml (or Pulumi.yml) in ${dir}: run it in the project's folder, or give --cwd DIR`);
      // Pulumi takes Pulumi.yml too: read, then the missing CLI is said plainly.
      fs.writeFileSync(path.join(dir, "Pulumi.yml"), "name: lab\nruntime: nodejs\n");
      const yml = orphans(["--cwd", dir]);
      expect(yml.status).toBe(1);
      expect(yml.stderr).toMatch(/^nslab-orphans: the pulumi CLI is not on PATH \(nslab-orphans runs it\): put its folder on PATH/);
      // --removed says a stack is gone only when pulumi says so: not when it cannot run.
      const removed = orphans(["--cwd", dir, "--stack", "dev", "--removed", "--delete"]);
      expect(removed.status).toBe(1);
      expect(removed.stderr).toMatch(/^nslab-orphans: the pulumi CLI is not on PATH/);
      const d = drift(["--cwd", dir]);
      expect(d.status).toBe(1);
      expect(d.stderr).toMatch(/^nslab-drift: the pulumi CLI is not on PATH \(nslab-drift runs it\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
