/**
 * Repeatable programs: the checks that look at a whole program (overlapping networks,
 * a namespace made twice, two IpForwarding for one switch, bridge ports) forget it when
 * the run ends, so one process can preview, up, up and destroy a stack, and then run
 * another stack that reuses the same CIDR (the Automation API does exactly that).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REPO } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

const SCRIPT = `
const { execFileSync } = require("node:child_process");
const nslab = require("nslab");

// A lab of components: a bridged network with its gateway, a router-less NAT gateway
// (its own IpForwarding) and a plain bridge port declared outside the component.
const program = () => async () => {
  const lan = new nslab.BridgedNetwork("lan", { cidr: "192.168.50.0/24", hosts: ["h1", "h2"], gateway: true, bridgeName: "br-lan" });
  new nslab.NatGateway("nat", { sources: [lan], uplink: "up0" });
  const extra = new nslab.Namespace("h3");
  new nslab.VethPair("h3-link", { a: { name: "eth0", namespace: extra.name, addresses: ["192.168.50.30/24"] }, b: { name: "h3-br", master: lan.bridge.name } });
  return { hosts: lan.hosts.map((h) => h.address) };
};
const ping = (from, to) => {
  try { execFileSync("ip", ["netns", "exec", from, "ping", "-c", "1", "-W", "1", to], { stdio: "ignore" }); return "ok"; } catch { return "FAILED"; }
};
const summary = (r) => JSON.stringify(r.summary.resourceChanges);

(async () => {
  const one = await nslab.localLab({ projectName: "repeat", stackName: "one", program: program() });
  const preview = await one.preview();
  console.log("one preview:", JSON.stringify(preview.changeSummary));
  console.log("one up:", summary(await one.up()));
  console.log("one up again:", summary(await one.up()));
  console.log("one ping:", ping("h1", "192.168.50.1"), ping("h3", "192.168.50.3"));
  console.log("one destroy:", summary(await one.destroy()));
  const two = await nslab.localLab({ projectName: "repeat", stackName: "two", program: program() });
  console.log("two up:", summary(await two.up()));
  console.log("two ping:", ping("h2", "192.168.50.1"), ping("h1", "192.168.50.30"));
  console.log("two destroy:", summary(await two.destroy()));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

describe("one process, several program runs (localLab)", () => {
  let sandbox: Sandbox;
  let dir: string;
  beforeEach(async () => {
    sandbox = await Sandbox.create();
    fs.mkdirSync(path.join(REPO, "test/.work"), { recursive: true });
    dir = fs.mkdtempSync(path.join(REPO, "test/.work/repeat-"));
  });
  afterEach(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await sandbox.destroy();
  });

  it("preview, up, up, destroy with components, then a second stack reusing the CIDR", async () => {
    fs.writeFileSync(path.join(dir, "lab.js"), SCRIPT);
    const r = await sandbox.run("node", [path.join(dir, "lab.js")], { cwd: dir, timeoutMs: 400_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.exitCode, out).toBe(0);
    expect(out).not.toContain("overlaps");
    expect(r.stdout).toMatch(/one preview: \{"create":\d+\}/);
    expect(r.stdout).toMatch(/one up: \{"create":\d+\}/);
    expect(r.stdout).toMatch(/one up again: \{"same":\d+\}/);
    expect(r.stdout).toContain("one ping: ok ok");
    expect(r.stdout).toMatch(/one destroy: \{"delete":\d+\}/);
    expect(r.stdout).toMatch(/two up: \{"create":\d+\}/);
    expect(r.stdout).toContain("two ping: ok ok");
    expect(r.stdout).toMatch(/two destroy: \{"delete":\d+\}/);
    expect(await sandbox.residue()).toEqual([]);
  }, 420_000);
});
