/**
 * Objects of a run that are not in the stack's state can be found and removed:
 * nslab-orphans compares what the provider recorded for the stack with the state.
 * The state loses resources here the way a killed run loses them (they exist in the
 * kernel, the state does not have them): `pulumi state delete`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

let sandbox: Sandbox;
sandboxPerTest((s) => (sandbox = s));

const PROGRAM = `
import * as nslab from "nslab";
const a = new nslab.Namespace("oa");
const b = new nslab.Namespace("ob");
const link = new nslab.VethPair("ab", { a: { name: "eth0", namespace: a.name, addresses: ["10.50.0.1/24"] }, b: { name: "eth0", namespace: b.name, addresses: ["10.50.0.2/24"] } });
new nslab.Route("b-default", { namespace: b.name, destination: "default", gateway: "10.50.0.1" }, { dependsOn: [link] });
new nslab.NatRule("masq", { namespace: a.name, kind: "masquerade", source: "10.50.0.0/24" });
new nslab.IpForwarding("fwd", { namespace: a.name, ipv4: true });
`;

// A program that says it is ready only once the file "go" exists in the program's
// folder (its cwd): the test kills the CLI while the create waits for it.
const WAITER = `
import * as nslab from "nslab";
const ns = new nslab.Namespace("pk");
new nslab.Process("waiter", { namespace: ns.name, command: ["sh", "-c", "while [ ! -e go ]; do sleep 0.05; done; echo ready; exec sleep 600"], readyText: "ready", startupMs: 60000 });
`;

/** Live programs (session leaders) working in `dir` whose environment says NSLAB_OWNER=OWNER: pid and owner. */
function marked(dir: string): { pid: number; owner: string }[] {
  const found: { pid: number; owner: string }[] = [];
  for (const entry of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      if (fs.readlinkSync(`/proc/${entry}/cwd`) !== dir) continue;
      const mark = fs.readFileSync(`/proc/${entry}/environ`, "utf8").split("\0").find((v) => v.startsWith("NSLAB_OWNER="));
      // After COMM: state, ppid, pgrp, session. The program leads its session; its children do not.
      const [state, , , session] = fs.readFileSync(`/proc/${entry}/stat`, "utf8").split(") ").pop()!.split(" ");
      if (mark && state !== "Z" && session === entry) found.push({ pid: Number(entry), owner: mark.slice("NSLAB_OWNER=".length) });
    } catch {
      // gone
    }
  }
  return found;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("nslab-orphans", () => {
  it("lists the objects a stack made but does not have in its state, removes them with --delete, and leaves the rest", async () => {
    const lab = await Lab.create(sandbox, "orphans", PROGRAM);
    expect((await lab.up()).exitCode).toBe(0);
    const orphans = (...extra: string[]) =>
      sandbox.run(process.execPath, [path.join(REPO, "dist/sdk/cli/orphans.js"), "--cwd", lab.dir, "--stack", lab.stack, ...extra], { env: { ...lab.env(), PATH: `${REPO}/.tools/bin:${process.env.PATH}` } });

    let r = await orphans();
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toContain("no objects outside its state");

    const urns = (await lab.resources()).map((x) => x.urn);
    for (const type of ["NatRule", "Route"]) {
      const urn = urns.find((u) => u.includes(`:${type}::`))!;
      expect((await lab.pulumi(["state", "delete", urn, "--yes"])).exitCode).toBe(0);
    }
    r = await orphans();
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/2 object\(s\) not in its state/);
    expect(r.stdout).toMatch(/NatRule "masq" \(id .*\)/);
    expect(r.stdout).toMatch(/Route "b-default" \(id .*\)/);
    expect(await sandbox.must("ip", ["netns", "exec", "oa", "nft", "list", "ruleset"])).toContain("masquerade");

    r = await orphans("--delete");
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/NatRule "masq" .* deleted/);
    expect(await sandbox.must("ip", ["netns", "exec", "oa", "nft", "list", "ruleset"])).not.toContain("masquerade");
    expect(await sandbox.must("ip", ["-n", "ob", "route", "show", "default"])).toBe("");
    // What is in the state was left alone, and the lab still passes traffic.
    expect((await sandbox.run("ip", ["netns", "exec", "oa", "ping", "-c", "1", "-W", "2", "10.50.0.2"])).exitCode).toBe(0);
    expect((await orphans()).stdout).toContain("no objects outside its state");

    // The stack removed without destroying it: everything it made is an orphan.
    const rm = await lab.pulumi(["stack", "rm", "--force", "--yes"]);
    expect(rm.exitCode, show(rm)).toBe(0);
    // Not taken for removed unless said so (the CLI may be asking the wrong backend).
    r = await orphans();
    expect(r.exitCode, show(r)).not.toBe(0);
    expect(r.stderr).toMatch(/no stack named[^]*run again with --removed/);
    r = await orphans("--removed");
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toMatch(/not found in the backend \(removed\?\): every object recorded for it is outside its state/);
    expect(r.stdout).toMatch(/Namespace "oa" \(id/);
    // The switch once, by its resource's record: its restore record (kept beside it for the
    // resource's life) is no second object, and no create was killed.
    expect(r.stdout).toMatch(/IpForwarding "fwd" \(id/);
    expect(r.stdout).not.toMatch(/switch "net\.ipv4\.ip_forward"|its create was killed/);
    expect(r.stdout).toMatch(/: 4 object\(s\) not in its state/);
    r = await orphans("--removed", "--delete");
    expect(r.exitCode, show(r)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a Process whose create was killed: its program is found by its mark, the recovery's up stops it before starting the new one, and orphans stops one the state lost", async () => {
    const lab = await Lab.create(sandbox, "orphanproc", WAITER);
    try {
      await killedProcessCreate(lab);
    } finally {
      // Whatever the outcome, no program of this test outlives it (the sandbox shares the pid namespace).
      for (const p of marked(lab.dir)) process.kill(p.pid, "SIGKILL");
    }
  });
});

async function killedProcessCreate(lab: Lab): Promise<void> {
  const orphans = (...extra: string[]) =>
    sandbox.run(process.execPath, [path.join(REPO, "dist/sdk/cli/orphans.js"), "--cwd", lab.dir, "--stack", lab.stack, ...extra], { env: { ...lab.env(), PATH: `${REPO}/.tools/bin:${process.env.PATH}` } });
  const { cli, output, exited } = lab.startUp();
  // The create has started the program and waits for it to say it is ready.
  let first: { pid: number; owner: string }[] = [];
  for (let i = 0; i < 600 && !first.length; i++, await sleep(100)) first = marked(lab.dir);
  expect(first, `the program never started:\n${output()}`).toHaveLength(1);
  process.kill(cli.pid!, "SIGKILL");
  await exited;
  await sleep(7_000); // the provider ends with its engine, letting the create run 5 s at most
  expect(marked(lab.dir).map((p) => p.pid)).toEqual([first[0].pid]); // left running

  // nslab-orphans finds it by its mark although no record of it was written.
  let r = await orphans();
  expect(r.exitCode, show(r)).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`Process "waiter" of stack .*: program pid ${first[0].pid} \\(not in the state`));

  // Recovery, as the README says: the new create stops this resource's earlier program.
  fs.writeFileSync(path.join(lab.dir, "go"), "");
  let refresh = await lab.pulumi(["refresh", "--yes", "--clear-pending-creates"]);
  if (refresh.exitCode !== 0 && /locked/i.test(show(refresh))) {
    expect((await lab.pulumi(["cancel", "--yes"])).exitCode).toBe(0);
    refresh = await lab.pulumi(["refresh", "--yes", "--clear-pending-creates"]);
  }
  expect(refresh.exitCode, show(refresh)).toBe(0);
  const up = await lab.up();
  expect(up.exitCode, show(up)).toBe(0);
  const now = marked(lab.dir);
  expect(now).toHaveLength(1);
  expect(now[0].pid).not.toBe(first[0].pid);
  const recorded = (await lab.resources()).find((x) => x.type.endsWith(":Process"));
  expect(recorded?.outputs?.pid).toBe(now[0].pid);
  expect((await orphans()).stdout).toContain("no objects outside its state");

  // The state loses it (as a killed run would before writing it): listed once, stopped by --delete.
  expect((await lab.pulumi(["state", "delete", recorded!.urn, "--yes"])).exitCode).toBe(0);
  r = await orphans();
  expect(r.stdout.match(new RegExp(`pid ${now[0].pid}|id [^)]*${now[0].pid}`, "g")), show(r)).toHaveLength(1);
  r = await orphans("--delete");
  expect(r.exitCode, show(r)).toBe(0);
  expect(r.stdout).toMatch(/deleted/);
  expect(marked(lab.dir)).toEqual([]);

  expect((await lab.destroy()).exitCode).toBe(0);
  expect(await sandbox.residue()).toEqual([]);
}
