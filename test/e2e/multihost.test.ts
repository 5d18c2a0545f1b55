/**
 * Labs on other machines through the real CLI (issue 19). Each "machine" is a namespace
 * on an underlay bridge (192.0.2.0/24) running a real sshd in a mount namespace of its
 * own, with its own /run/netns and /run/nslab (test/helpers/sshd.ts); the engine runs
 * in the test's sandbox and reaches them only over SSH. On each host: a bridge br0 and
 * a namespace "pc" on it; a HostLink (one Vxlan each side, vni 42) joins the bridges.
 *
 *   host a (192.0.2.1)                                  host b (192.0.2.2)
 *   pc 10.50.0.11 --veth-- [br0 + vx42] ==UDP 4789== [vx42 + br0] --veth-- pc 10.50.0.12
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { running } from "../helpers/proc";
import { Sandbox } from "../helpers/sandbox";
import { SshHost, SshHosts, startHosts } from "../helpers/sshd";

const program = (a: SshHost, b: SshHost) => `
import * as nslab from "nslab";
const siteA: nslab.HostArgs = ${JSON.stringify(a.host)};
const siteB: nslab.HostArgs = ${JSON.stringify(b.host)};
const bridges: Record<string, nslab.Bridge> = {};
for (const [tag, host, address] of [["a", siteA, "10.50.0.11/24"], ["b", siteB, "10.50.0.12/24"]] as const) {
  const br = new nslab.Bridge("br-" + tag, { host, name: "br0" });
  const pc = new nslab.Namespace("pc-" + tag, { host, name: "pc" });
  new nslab.VethPair("pc-" + tag + "-link", { host, a: { name: "eth0", namespace: pc.name, addresses: [address] }, b: { name: "pc-br", master: br.name } });
  bridges[tag] = br;
}
new nslab.HostLink("a-b", {
  vni: 42,
  a: { host: siteA, bridge: bridges.a.name, address: "${a.address}" },
  b: { host: siteB, bridge: bridges.b.name, address: "${b.address}" },
});
`;

/** A BridgedNetwork, a tap port of its bridge and probes between its members, all on one remote host. */
const componentProgram = (a: SshHost) => `
import * as nslab from "nslab";
const site: nslab.HostArgs = ${JSON.stringify(a.host)};
const lan = new nslab.BridgedNetwork("lan", { cidr: "10.61.0.0/24", hosts: ["m1", "m2", { name: "m3", impairment: { egress: { rate: "10mbit", loss: 0.001 } } }], host: site });
new nslab.TapDevice("lan-tap", { host: site, name: "lantap", master: lan.bridge.name });
nslab.reachabilityMatrix("lan", { hosts: lan.hosts }, {}, { dependsOn: [lan] });
`;

/** A udp echo (a Process) in one namespace of a remote host, probed over udp from another there. */
const processProgram = (a: SshHost) => `
import * as nslab from "nslab";
const site: nslab.HostArgs = ${JSON.stringify(a.host)};
const srv = new nslab.Namespace("srv", { host: site, name: "srv" });
const cli = new nslab.Namespace("cli", { host: site, name: "cli" });
const link = new nslab.VethPair("srv-cli", { host: site, a: { name: "eth0", namespace: srv.name, addresses: ["10.62.0.1/24"] }, b: { name: "eth0", namespace: cli.name, addresses: ["10.62.0.2/24"] } });
const echo = new nslab.Process("echo", {
  host: site,
  namespace: srv.name,
  command: [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(`const s = require("dgram").createSocket("udp4"); s.on("message", (m, r) => s.send(m, r.port, r.address)); s.bind(7, () => console.log("echo ready"));`)}],
  readyText: "echo ready",
}, { dependsOn: [link] });
new nslab.Reachability("cli-echo", { host: site, from: cli.name, to: "10.62.0.1", protocol: "udp", port: 7 }, { dependsOn: [echo] });
export const pid = echo.pid;
export const log = echo.log;
`;

/** A namespace on each of two hosts. */
const twoNamespaces = (a: SshHost, b: SshHost) => `
import * as nslab from "nslab";
new nslab.Namespace("na", { host: ${JSON.stringify(a.host)}, name: "na" });
new nslab.Namespace("nb", { host: ${JSON.stringify(b.host)}, name: "nb" });
`;

/** What nslab could have left on a host: namespaces, links but lo and the underlay, nft tables, records. */
async function leftOn(hosts: SshHosts, host: SshHost): Promise<string[]> {
  const left: string[] = [];
  const ns = (await hosts.onHost(host, "ip", ["netns", "list"])).trim();
  if (ns) left.push(`namespaces: ${ns}`);
  const links = (await hosts.onHost(host, "ip", ["-o", "link", "show"])).split("\n").map((l) => l.split(": ")[1]?.split("@")[0]).filter((n) => n && n !== "lo" && n !== "ul0");
  if (links.length) left.push(`links: ${links.join(", ")}`);
  const tables = (await hosts.onHost(host, "nft", ["list", "tables"])).trim();
  if (tables) left.push(`nft: ${tables}`);
  const records = (await hosts.onHost(host, "find", ["/run/nslab", "-type", "f"])).trim();
  if (records) left.push(`records: ${records}`);
  return left;
}

describe("a lab on two machines over SSH, through the real CLI", () => {
  let sandbox: Sandbox;
  sandboxPerTest((s) => (sandbox = s));

  it("hosts on different machines ping across the HostLink; drift on a remote host is found and repaired; destroy leaves nothing anywhere; a stopped sshd fails at once, naming the host", async () => {
    const hosts = await startHosts(sandbox, 2, "t");
    try {
      const [a, b] = hosts.hosts;
      const lab = await Lab.create(sandbox, "multihost", program(a, b));
      const up = await lab.up();
      expect(up.exitCode, show(up)).toBe(0);
      // Made on the hosts, not on the machine that ran the engine.
      expect(await sandbox.must("ip", ["netns", "list"])).not.toMatch(/^pc/m);
      const vx = JSON.parse(await hosts.onHost(b, "ip", ["-j", "-d", "link", "show", "vx42"]))[0];
      expect(vx).toMatchObject({ master: "br0", linkinfo: { info_data: { id: 42, local: b.address, remote: a.address, port: 4789 } } });

      // At the first try, both ways.
      await hosts.onHost(a, "ip", ["netns", "exec", "pc", "ping", "-c", "1", "-W", "2", "10.50.0.12"]);
      await hosts.onHost(b, "ip", ["netns", "exec", "pc", "ping", "-c", "1", "-W", "2", "10.50.0.11"]);

      const clean = await lab.driftCheck();
      expect(clean.exitCode, show(clean)).toBe(0);

      // Drift by hand on host b: its pc's veth is deleted; the machines are cut off.
      await hosts.onHost(b, "ip", ["link", "del", "pc-br"]);
      const drift = await lab.driftCheck();
      expect(drift.exitCode, show(drift)).toBe(7);
      expect(drift.stdout).toMatch(/pc-b-link/);
      const repair = await lab.up(["--refresh"]);
      expect(repair.exitCode, show(repair)).toBe(0);
      await hosts.onHost(a, "ip", ["netns", "exec", "pc", "ping", "-c", "1", "-W", "2", "10.50.0.12"]);
      const quiet = await lab.driftCheck();
      expect(quiet.exitCode, show(quiet)).toBe(0);

      // Host b spelled another way (no user: ssh's default, root): the engine replaces
      // site b's resources, creating first; they keep their objects, and the lab works at
      // the first try.
      lab.edit(/"ssh":"root@192\.0\.2\.2"/, `"ssh":"192.0.2.2"`);
      const respelled = await lab.up();
      expect(respelled.exitCode, show(respelled)).toBe(0);
      expect(respelled.stdout).toMatch(/4 replaced/);
      await hosts.onHost(a, "ip", ["netns", "exec", "pc", "ping", "-c", "1", "-W", "2", "10.50.0.12"]);
      await hosts.onHost(b, "ip", ["netns", "exec", "pc", "ping", "-c", "1", "-W", "2", "10.50.0.11"]);
      const still = await lab.driftCheck();
      expect(still.exitCode, show(still)).toBe(0);

      // Spelled back, in a run that fails (a bridge whose name is taken on host a) after
      // some of site b's resources were made again, their originals not yet deleted; the
      // next run spells it as before that run, replacing those again and deleting the
      // originals. Before, those deletes removed the objects the new resources held.
      await hosts.onHost(a, "ip", ["link", "add", "junk0", "type", "veth", "peer", "name", "junk1"]);
      const spelled = fs.readFileSync(path.join(lab.dir, "index.ts"), "utf8");
      lab.write(`${spelled.replace(`"ssh":"192.0.2.2"`, `"ssh":"root@192.0.2.2"`)}\nnew nslab.Bridge("junk", { host: siteA, name: "junk0" }, { dependsOn: [bridges.b] });\n`);
      const broken = await lab.up();
      expect(broken.exitCode, show(broken)).not.toBe(0);
      expect(broken.stdout).toMatch(/created replacement/);
      await hosts.onHost(a, "ip", ["link", "del", "junk0"]);
      lab.write(spelled);
      const back = await lab.up();
      expect(back.exitCode, show(back)).toBe(0);
      expect(back.stdout).toMatch(/deleted original/);
      await hosts.onHost(a, "ip", ["netns", "exec", "pc", "ping", "-c", "1", "-W", "2", "10.50.0.12"]);
      await hosts.onHost(b, "ip", ["netns", "exec", "pc", "ping", "-c", "1", "-W", "2", "10.50.0.11"]);
      const kept = await lab.driftCheck();
      expect(kept.exitCode, show(kept)).toBe(0);

      const destroyed = await lab.destroy();
      expect(destroyed.exitCode, show(destroyed)).toBe(0);
      expect(await leftOn(hosts, a)).toEqual([]);
      expect(await leftOn(hosts, b)).toEqual([]);

      // sshd stopped on host b: the run fails on b's resources, naming host and reason.
      await hosts.stop(b);
      const refused = await lab.up();
      expect(refused.exitCode, show(refused)).not.toBe(0);
      expect(refused.stdout + refused.stderr).toMatch(/(?:Namespace "pc-b"|Bridge "br-b") on 192\.0\.2\.2: cannot reach 192\.0\.2\.2 over SSH: ssh: connect to host 192\.0\.2\.2 port 22: Connection refused/);
      // Each resource that waited for the connection fails in its own name (before, all
      // of them with the message of the one that asked first).
      const failed = [...refused.stdout.matchAll(/dynamic\/nslab:(\w+) ([\w-]+) .*error: (\w+) "([\w-]+)" on 192\.0\.2\.2: cannot reach/g)];
      expect(failed.length).toBeGreaterThanOrEqual(2);
      for (const [line, kind, name, saidKind, saidName] of failed) expect(`${saidKind} ${saidName}`, line).toBe(`${kind} ${name}`);
      // What was made on host a is in the state, and destroy removes it.
      const after = await lab.destroy();
      expect(after.exitCode, show(after)).toBe(0);
      expect(await leftOn(hosts, a)).toEqual([]);
    } finally {
      await hosts.destroy();
    }
  });

  it("nslab-orphans with a host it cannot reach: lists and deletes what is on the others, says which host it passed over, and --forget-host drops that machine's records", async () => {
    const hosts = await startHosts(sandbox, 2, "o");
    try {
      const [a, b] = hosts.hosts;
      const lab = await Lab.create(sandbox, "multihost-orphans", twoNamespaces(a, b));
      const up = await lab.up();
      expect(up.exitCode, show(up)).toBe(0);
      // Both out of the state (as after a killed run): both are orphans.
      for (const r of (await lab.resources()).filter((r) => r.type.endsWith(":Namespace"))) expect((await lab.pulumi(["state", "delete", "--yes", r.urn])).exitCode).toBe(0);
      await hosts.stop(b);
      const orphans = (...extra: string[]) =>
        sandbox.run(process.execPath, [path.join(REPO, "dist/sdk/cli/orphans.js"), "--cwd", lab.dir, "--stack", lab.stack, ...extra], { env: { ...lab.env(), PATH: `${REPO}/.tools/bin:${process.env.PATH}` } });
      const listed = await orphans();
      expect(listed.exitCode, show(listed)).toBe(1);
      expect(listed.stdout).toContain(`Namespace "na" on ${a.host.ssh} (id na)`);
      expect(listed.stderr).toContain(`nslab-orphans: not searched: Namespace "nb" on ${b.host.ssh}: cannot reach ${b.host.ssh} over SSH`);
      expect(listed.stderr).toContain(`(1 recorded object(s) of the stack there not looked at, and kept; if that machine is gone for good, run again with --forget-host ${b.host.ssh} --delete to drop them, deleting nothing there)`);
      const deleted = await orphans("--delete");
      expect(deleted.exitCode, show(deleted)).toBe(1);
      expect(deleted.stdout).toContain(`Namespace "na" on ${a.host.ssh} (id na) deleted`);
      expect(await leftOn(hosts, a)).toEqual([]);
      // A --forget-host that names no machine of the stack's (another port of b's address) is said, and drops nothing.
      const wrong = await orphans("--forget-host", `${b.host.ssh}:2222`, "--delete");
      expect(wrong.exitCode, show(wrong)).toBe(1);
      expect(wrong.stderr).toContain(`nslab-orphans: --forget-host ${b.host.ssh}:2222: the stack's records name no such machine (they name: ${b.host.ssh})`);
      // The machine gone for good: its records dropped; then nothing is left to say.
      const forgot = await orphans("--forget-host", b.host.ssh, "--delete");
      expect(forgot.exitCode, show(forgot)).toBe(0);
      expect(forgot.stdout).toContain(`Namespace "nb" on ${b.host.ssh} (--forget-host): record dropped, nothing deleted there`);
      const after = await orphans();
      expect(after.exitCode, show(after)).toBe(0);
      expect(after.stdout).toMatch(/no objects outside its state/);
    } finally {
      await hosts.destroy();
    }
  });

  it("a BridgedNetwork on a remote host: its members ping each other at the first try (Reachability probes run there); no drift; destroy leaves nothing there or here", async () => {
    const hosts = await startHosts(sandbox, 1, "c");
    try {
      const [a] = hosts.hosts;
      const lab = await Lab.create(sandbox, "multihost-lan", componentProgram(a));
      const up = await lab.up();
      expect(up.exitCode, show(up)).toBe(0);
      // Six probes, one per ordered pair, all made (so all reachable) at the first try.
      expect((await lab.resources()).filter((r) => r.type.endsWith(":Reachability")).map((r) => r.outputs?.reachable)).toEqual(Array(6).fill(true));
      expect(await sandbox.must("ip", ["netns", "list"])).not.toMatch(/^m[123]/m);
      expect(await hosts.onHost(a, "ip", ["netns", "list"])).toMatch(/^m1/m);
      expect(JSON.parse(await hosts.onHost(a, "ip", ["-j", "-d", "link", "show", "lantap"]))[0]).toMatchObject({ master: "br-lan", linkinfo: { info_kind: "tun" } });
      for (const [from, to] of [["m1", "10.61.0.2"], ["m2", "10.61.0.3"], ["m3", "10.61.0.1"]]) {
        await hosts.onHost(a, "ip", ["netns", "exec", from, "ping", "-c", "1", "-W", "2", to]);
      }
      expect(await hosts.onHost(a, "ip", ["netns", "exec", "m3", "tc", "qdisc", "show", "dev", "eth-lan"])).toMatch(/tbf/);

      const clean = await lab.driftCheck();
      expect(clean.exitCode, show(clean)).toBe(0);

      const destroyed = await lab.destroy();
      expect(destroyed.exitCode, show(destroyed)).toBe(0);
      expect(await leftOn(hosts, a)).toEqual([]);
      expect(await sandbox.must("nft", ["list", "tables"])).toBe("");
    } finally {
      await hosts.destroy();
    }
  });
  it("a Process and a udp probe on a remote host through the SDK: started there, killed by hand is drift, up --refresh starts it again, destroy stops it", async () => {
    const hosts = await startHosts(sandbox, 1, "p");
    try {
      const [a] = hosts.hosts;
      const lab = await Lab.create(sandbox, "multihost-process", processProgram(a));
      const up = await lab.up();
      expect(up.exitCode, show(up)).toBe(0);
      const outputsOf = async (type: string) => (await lab.resources()).find((r) => r.type.endsWith(type))?.outputs ?? {};
      const echo = await outputsOf(":Process");
      expect(echo).toMatchObject({ namespace: "srv", host: a.host, log: expect.stringMatching(/^\/tmp\/nslab-process-[0-9a-f]{16}\.log$/) });
      expect(await outputsOf(":Reachability")).toMatchObject({ reachable: true, protocol: "udp" });
      const pid = echo.pid as number;
      // In the host's "srv" (this machine has none), a program of the host's.
      expect(fs.statSync(`/proc/${pid}/ns/net`).ino).toBe(Number((await hosts.onHost(a, "stat", ["-L", "-c", "%i", "/run/netns/srv"])).trim()));
      expect(await sandbox.must("ip", ["netns", "list"])).not.toMatch(/^srv/m);
      const clean = await lab.driftCheck();
      expect(clean.exitCode, show(clean)).toBe(0);

      // Killed by hand on the host: the process is gone and the probe fails (drift).
      await hosts.onHost(a, "kill", ["-KILL", String(pid)]);
      const drift = await lab.driftCheck();
      expect(drift.exitCode, show(drift)).toBe(7);
      expect(drift.stdout).toMatch(/echo/);
      const repair = await lab.up(["--refresh"]);
      expect(repair.exitCode, show(repair)).toBe(0);
      const again = await outputsOf(":Process");
      expect(again.pid).not.toBe(pid);
      const quiet = await lab.driftCheck();
      expect(quiet.exitCode, show(quiet)).toBe(0);

      const destroyed = await lab.destroy();
      expect(destroyed.exitCode, show(destroyed)).toBe(0);
      expect(running(again.pid as number)).toBe(false);
      expect(await leftOn(hosts, a)).toEqual([]);
      fs.rmSync(String(echo.log), { force: true });
    } finally {
      await hosts.destroy();
    }
  });
});
