/**
 * Reachability as state (issue 18): probes that must hold at up, drift when traffic
 * breaks with every object intact, a clear failure at create; Process resources for
 * the listeners; the tun tunnel example up, proven, destroyed, nothing left.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { pings } from "../helpers/net";
import { running } from "../helpers/proc";
import { Sandbox } from "../helpers/sandbox";

const DRIFT = path.join(REPO, "scripts/drift-check");

/** Two namespaces on one veth (IPv4 and IPv6); ns2 runs a TCP listener and a UDP echo (Process). */
const TWO_HOSTS = `
import * as nslab from "nslab";
const ns1 = new nslab.Namespace("ns1");
const ns2 = new nslab.Namespace("ns2");
const link = new nslab.VethPair("link", {
  a: { name: "eth0", namespace: ns1.name, addresses: ["10.0.0.1/24", "fd00::1/64"] },
  b: { name: "eth0", namespace: ns2.name, addresses: ["10.0.0.2/24", "fd00::2/64"] },
});
const TCP = "import socket\\ns=socket.socket(socket.AF_INET6)\\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\\ns.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\\ns.bind(('::',8080))\\ns.listen(64)\\nprint('listening')\\nwhile True:\\n  c,_=s.accept(); c.close()";
const UDP = "import socket\\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\\ns.bind(('0.0.0.0',5353))\\nprint('listening')\\nwhile True:\\n  d,a=s.recvfrom(2048); s.sendto(d,a)";
const web = new nslab.Process("web", { namespace: ns2.name, command: ["python3", "-u", "-c", TCP], readyText: "listening" }, { dependsOn: [link] });
const echo = new nslab.Process("echo", { namespace: ns2.name, command: ["python3", "-u", "-c", UDP], readyText: "listening" }, { dependsOn: [link] });
const after = { dependsOn: [link, web, echo] };
const probes = [
  new nslab.Reachability("ping", { from: ns1.name, to: "10.0.0.2" }, after),
  new nslab.Reachability("ping6", { from: ns1.name, to: "fd00:0::2" }, after),
  new nslab.Reachability("tcp", { from: ns1.name, to: "10.0.0.2", protocol: "tcp", port: 8080 }, after),
  new nslab.Reachability("tcp6", { from: ns1.name, to: "fd00::2", protocol: "tcp", port: 8080 }, after),
  new nslab.Reachability("tcp-closed", { from: ns1.name, to: "10.0.0.2", protocol: "tcp", port: 8081, expect: "unreachable" }, after),
  new nslab.Reachability("udp", { from: ns1.name, to: "10.0.0.2", protocol: "udp", port: 5353 }, after),
  new nslab.Reachability("udp-closed", { from: ns1.name, to: "10.0.0.2", protocol: "udp", port: 5354, expect: "unreachable" }, after),
  new nslab.Reachability("nobody", { from: ns1.name, to: "10.0.0.99", expect: "unreachable", timeoutMs: 300 }, after),
];
export const results = probes.map((p) => ({ to: p.to, protocol: p.protocol, port: p.port, expect: p.expect, reachable: p.reachable }));
export const pids = [web.pid, echo.pid];
`;


/** Field 22 of /proc/PID/stat (start time), or undefined. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Processes whose command line contains `text` (the host's /proc: processes outlive the sandbox). */
function processesWith(text: string): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/cmdline`, "utf8").includes(text) && running(Number(d));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("Reachability and Process", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  // Programs a failed test left running would outlive the sandbox: stop exactly those.
  const started: number[] = [];
  sandboxPerTest((s) => (sandbox = s));
  afterEach(async () => {
    // Also those of a test that failed before it read its outputs: the state has them.
    const recorded = lab ? await lab.resources().catch(() => []) : [];
    for (const r of recorded) {
      const out = r.outputs as { pid?: number; startTime?: string } | undefined;
      if (r.type === "pulumi-nodejs:dynamic/nslab:Process" && out?.pid && out.startTime && startTimeOf(out.pid) === out.startTime) started.push(out.pid);
    }
    for (const pid of started.splice(0)) if (running(pid)) process.kill(pid, "SIGKILL");
  });

  it("icmp, tcp and udp probes, reachable and unreachable, hold at up; a drop rule by hand is drift (exit 7), removing it is clean; destroy stops the listeners", async () => {
    lab = await Lab.create(sandbox, "reach", TWO_HOSTS);
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const outputs = await lab.outputs();
    const pids = outputs.pids as number[];
    started.push(...pids);
    expect(pids.every(running)).toBe(true);
    expect(outputs.results).toEqual([
      { to: "10.0.0.2", protocol: "icmp", expect: "reachable", reachable: true },
      { to: "fd00::2", protocol: "icmp", expect: "reachable", reachable: true },
      { to: "10.0.0.2", protocol: "tcp", port: 8080, expect: "reachable", reachable: true },
      { to: "fd00::2", protocol: "tcp", port: 8080, expect: "reachable", reachable: true },
      { to: "10.0.0.2", protocol: "tcp", port: 8081, expect: "unreachable", reachable: false },
      { to: "10.0.0.2", protocol: "udp", port: 5353, expect: "reachable", reachable: true },
      { to: "10.0.0.2", protocol: "udp", port: 5354, expect: "unreachable", reachable: false },
      { to: "10.0.0.99", protocol: "icmp", expect: "unreachable", reachable: false },
    ]);
    // What the probes say, the traffic says too.
    expect(await pings(sandbox, "ns1", "10.0.0.2")).toBe(true);

    const check = () => sandbox.run(DRIFT, ["--cwd", lab.dir, "--stack", lab.stack], { env: lab.env() });
    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);

    // Every object intact, IPv4 from ns1 dropped at ns2's input.
    const nft = (...args: string[]) => sandbox.must("ip", ["netns", "exec", "ns2", "nft", ...args]);
    await nft("add", "table", "inet", "handmade");
    await nft("add", "chain", "inet", "handmade", "input", "{ type filter hook input priority 0 ; }");
    await nft("add", "rule", "inet", "handmade", "input", "ip", "saddr", "10.0.0.1", "drop");
    expect(await pings(sandbox, "ns1", "10.0.0.2")).toBe(false);

    const drift = await lab.driftCheck();
    expect(drift.exitCode, show(drift)).toBe(7);
    for (const name of ["ping", "tcp", "udp"]) {
      expect(drift.stdout).toMatch(new RegExp(`nslab:Reachability: \\(replace\\)\\n\\s+\\[id=[^\\]]*\\]\\n\\s+\\[urn=[^\\]]*::${name}\\][\\s\\S]*?expect\\s*: "unreachable" => "reachable"`));
    }
    // The IPv6 probes, the closed ports and the isolated address still hold.
    for (const name of ["ping6", "tcp6", "tcp-closed", "udp-closed", "nobody"]) {
      expect(drift.stdout).not.toMatch(new RegExp(`::${name}\\][\\s\\S]{0,200}?expect\\s*:`));
    }
    const report = await check();
    expect(report.exitCode, show(report)).toBe(7);
    expect(report.stdout).toMatch(/Reachability "ping" differs[\s\S]*?expect: live "unreachable", program "reachable"/);
    expect(report.stdout).toMatch(/Reachability "udp" differs \(pulumi up would replace it\)\n\s+expect: live "unreachable", program "reachable"/);
    expect(report.stdout).toMatch(/^drift: 3 resources differ from the program/);

    // An up while it is still broken probes again and fails, saying what came back.
    const broken = await lab.up(["--refresh"]);
    expect(broken.exitCode, show(broken)).not.toBe(0);
    expect(broken.stdout + broken.stderr).toMatch(/Reachability "tcp": from namespace "ns1", tcp port 8080 on 10\.0\.0\.2: expected reachable, but it did not answer: timed out after 2000 ms/);

    await nft("delete", "table", "inet", "handmade");
    const repaired = await lab.driftCheck();
    expect(repaired.exitCode, show(repaired)).toBe(0);
    const clean2 = await check();
    expect(clean2.exitCode, show(clean2)).toBe(0);
    expect(clean2.stdout).toContain("no drift");
    const up2 = await lab.up(["--refresh"]);
    expect(up2.exitCode, show(up2)).toBe(0);
    expect((await lab.outputs()).pids).toEqual(pids);

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(pids.filter(running)).toEqual([]);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a failed expectation at create names from, to, protocol, port and what came back, and leaves nothing", async () => {
    const cases: [string, RegExp][] = [
      [
        `new nslab.Reachability("web", { from: ns1.name, to: "10.0.0.2", protocol: "tcp", port: 9 }, { dependsOn: [link] });`,
        /Reachability "web": from namespace "ns1", tcp port 9 on 10\.0\.0\.2: expected reachable, but it did not answer: connection refused/,
      ],
      [
        `new nslab.Reachability("isolated", { from: ns1.name, to: "10.0.0.2", expect: "unreachable" }, { dependsOn: [link] });`,
        /Reachability "isolated": from namespace "ns1", icmp \(ping\) to 10\.0\.0\.2: expected unreachable, but it answered: 64 bytes from 10\.0\.0\.2: icmp_seq=1/,
      ],
      [
        `new nslab.Reachability("far", { from: ns1.name, to: "10.9.9.9", protocol: "udp", port: 53, timeoutMs: 500 }, { dependsOn: [link] });`,
        /Reachability "far": from namespace "ns1", udp port 53 on 10\.9\.9\.9: expected reachable, but it did not answer: network is unreachable \(ENETUNREACH\)/,
      ],
    ];
    for (const [probe, message] of cases) {
      lab = await Lab.create(
        sandbox,
        "reach-fail",
        `import * as nslab from "nslab";
const ns1 = new nslab.Namespace("ns1");
const ns2 = new nslab.Namespace("ns2");
const link = new nslab.VethPair("link", {
  a: { name: "eth0", namespace: ns1.name, addresses: ["10.0.0.1/24"] },
  b: { name: "eth0", namespace: ns2.name, addresses: ["10.0.0.2/24"] },
});
${probe}
`,
      );
      const up = await lab.up();
      expect(up.exitCode, show(up)).not.toBe(0);
      expect(up.stdout + up.stderr).toMatch(message);
      const types = (await lab.resources()).map((r) => r.type);
      expect(types).toContain("pulumi-nodejs:dynamic/nslab:VethPair");
      expect(types).not.toContain("pulumi-nodejs:dynamic/nslab:Reachability");
      expect((await lab.destroy()).exitCode).toBe(0);
      expect(await sandbox.residue()).toEqual([]);
    }
  });

  it("bad probe arguments fail at preview naming the resource and property", async () => {
    const cases: [string, RegExp][] = [
      [`{ to: "10.0.0.2", port: 80 }`, /Reachability resource 'bad': property port value \{80\} has a problem: port 80 is given but protocol is "icmp", which has no ports/],
      [`{ to: "10.0.0.300" }`, /Reachability resource 'bad': property to value \{10\.0\.0\.300\} has a problem: to "10\.0\.0\.300" is not an IP address/],
      [`{ to: "10.0.0.2", protocol: "tcp" }`, /Reachability resource 'bad': property port .*has a problem: protocol "tcp" needs a port/],
      [`{ to: "10.0.0.2", timeoutMs: 10 }`, /Reachability resource 'bad': property timeoutMs value \{10\} has a problem: timeoutMs must be an integer from 100 to 60000, got 10/],
    ];
    lab = await Lab.create(sandbox, "reach-bad", "");
    for (const [args, message] of cases) {
      lab.write(`import * as nslab from "nslab";\nnew nslab.Reachability("bad", ${args} as any);\n`);
      const preview = await lab.preview();
      expect(preview.exitCode, show(preview)).not.toBe(0);
      expect(preview.stdout + preview.stderr).toMatch(message);
    }
  });

  it("a probe runs again when a resource it depends on is updated or made anew (a listener moved, an impairment set to drop everything, whose removal the README's destroy --target-dependents unblocks, one inside a component, the listener's link set down), and a lab recorded before write tokens is stamped once, writing nothing", async () => {
    const program = (port: number, loss: number, lanLoss: number, linkUp = true, shaped = true) => `
import * as nslab from "nslab";
const ns1 = new nslab.Namespace("ns1");
const ns2 = new nslab.Namespace("ns2");
const link = new nslab.VethPair("link", {
  a: { name: "eth0", namespace: ns1.name, addresses: ["10.0.0.1/24"] },
  b: { name: "eth0", namespace: ns2.name, addresses: ["10.0.0.2/24"], up: ${linkUp} },
});
const TCP = "import socket\\ns=socket.socket()\\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\\ns.bind(('0.0.0.0',${port}))\\ns.listen(64)\\nprint('listening')\\nwhile True:\\n  c,_=s.accept(); c.close()";
const web = new nslab.Process("web", { namespace: ns2.name, command: ["python3", "-u", "-c", TCP], readyText: "listening" }, { dependsOn: [link] });
${shaped ? `const shaper = new nslab.LinkImpairment("shaper", { device: "eth0", namespace: ns2.name, egress: { loss: ${loss} } }, { dependsOn: [link] });` : ""}
new nslab.Reachability("web", { from: ns1.name, to: "10.0.0.2", protocol: "tcp", port: 8080, timeoutMs: 500 }, { dependsOn: [web${shaped ? ", shaper" : ""}] });
const lan = new nslab.BridgedNetwork("lan", { cidr: "192.168.7.0/24", hosts: ["h1", { name: "h2", impairment: { ingress: { loss: ${lanLoss} } } }] });
new nslab.Reachability("lan", { from: "h1", to: lan.hosts[1].address, timeoutMs: 500 }, { dependsOn: [lan] });
export const pid = web.pid;
`;
    lab = await Lab.create(sandbox, "reach-deps", program(8080, 0, 0));
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    started.push((await lab.outputs()).pid as number);
    const quiet = () => lab.pulumi(["preview", "--non-interactive", "--expect-no-changes"]);
    const unchanged = await quiet();
    expect(unchanged.exitCode, show(unchanged)).toBe(0);

    // The listener moved to another port: the probe of 8080 runs again and fails.
    lab.write(program(8081, 0, 0));
    const moved = await lab.up();
    expect(moved.exitCode, show(moved)).not.toBe(0);
    expect(moved.stdout + moved.stderr).toMatch(/Reachability "web": from namespace "ns1", tcp port 8080 on 10\.0\.0\.2: expected reachable, but it did not answer: connection refused/);
    lab.write(program(8080, 0, 0));
    const back = await lab.up();
    expect(back.exitCode, show(back)).toBe(0);
    started.push((await lab.outputs()).pid as number);

    // An impairment updated in place to drop everything.
    lab.write(program(8080, 1, 0));
    const dropped = await lab.up();
    expect(dropped.exitCode, show(dropped)).not.toBe(0);
    expect(dropped.stdout + dropped.stderr).toMatch(/Reachability "web": [^\n]*expected reachable, but it did not answer: timed out after 500 ms/);
    // Removing that impairment from the program is blocked by the failing probe (README,
    // "A removal that a failing probe blocks"); the way out it gives works: destroy the
    // impairment with its dependents, then up.
    lab.write(program(8080, 1, 0, true, false));
    const blocked = await lab.up();
    expect(blocked.exitCode, show(blocked)).not.toBe(0);
    const shaperUrn = (await lab.resources()).find((r) => r.urn.endsWith("::shaper"))!.urn;
    const targeted = await lab.pulumi(["destroy", "--yes", "--skip-preview", "--non-interactive", "--target", shaperUrn, "--target-dependents"]);
    expect(targeted.exitCode, show(targeted)).toBe(0);
    const unblocked = await lab.up();
    expect(unblocked.exitCode, show(unblocked)).toBe(0);
    expect(await sandbox.must("ip", ["netns", "exec", "ns2", "nft", "list", "ruleset"])).toBe("");
    lab.write(program(8080, 1, 0));
    const again = await lab.up();
    expect(again.exitCode, show(again)).not.toBe(0);
    // And one inside a component in the dependsOn.
    lab.write(program(8080, 0, 1));
    const lanDropped = await lab.up();
    expect(lanDropped.exitCode, show(lanDropped)).not.toBe(0);
    expect(lanDropped.stdout + lanDropped.stderr).toMatch(/Reachability "lan": from namespace "h1", icmp \(ping\) to 192\.168\.7\.\d+: expected reachable, but it did not answer/);
    // The link set down: the probe depends on it only through the listener and the impairment.
    lab.write(program(8080, 0, 0, false));
    const down = await lab.up();
    expect(down.exitCode, show(down)).not.toBe(0);
    expect(down.stdout + down.stderr).toMatch(/Reachability "web": [^\n]*expected reachable, but it did not answer/);
    lab.write(program(8080, 0, 0));
    const repaired = await lab.up();
    expect(repaired.exitCode, show(repaired)).toBe(0);
    const settled = await quiet();
    expect(settled.exitCode, show(settled)).toBe(0);

    // The state as an nslab from before write tokens wrote it: no __made anywhere.
    const pid = (await lab.outputs()).pid as number;
    const exported = JSON.parse((await lab.ok(["stack", "export"])).stdout);
    for (const r of exported.deployment.resources) if (r.outputs) delete r.outputs.__made;
    const file = path.join(lab.dir, "legacy.json");
    fs.writeFileSync(file, JSON.stringify(exported));
    await lab.ok(["stack", "import", "--file", file]);
    const routes = await sandbox.must("ip", ["-n", "h1", "route"]);
    const legacy = await quiet();
    expect(legacy.exitCode, show(legacy)).not.toBe(0);
    const told = await sandbox.run(DRIFT, ["--cwd", lab.dir, "--stack", lab.stack], { env: lab.env() });
    expect(told.exitCode, show(told)).toBe(7);
    expect(told.stdout).toMatch(/Namespace "ns1" differs \(pulumi up would update it in place\)\n\s+recorded by an nslab from before write tokens: pulumi up records one and writes nothing else \(once\)/);
    const stamped = await lab.up();
    expect(stamped.exitCode, show(stamped)).toBe(0);
    expect(stamped.stdout).toMatch(/~ \d+ updated/);
    // Nothing written to the kernel: the same program, the same routes; and quiet from then on.
    expect((await lab.outputs()).pid).toBe(pid);
    expect(running(pid)).toBe(true);
    expect(await sandbox.must("ip", ["-n", "h1", "route"])).toBe(routes);
    const nslabs = (await lab.resources()).filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/nslab:"));
    expect(nslabs.filter((r) => typeof r.outputs?.__made !== "string").map((r) => r.urn)).toEqual([]);
    const after = await quiet();
    expect(after.exitCode, show(after)).toBe(0);
    expect(await pings(sandbox, "ns1", "10.0.0.2")).toBe(true);

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(running(pid)).toBe(false);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a Process that exits at once fails its create with the end of its log; one killed by hand is drift, and up --refresh starts it again", async () => {
    lab = await Lab.create(
      sandbox,
      "proc",
      `import * as nslab from "nslab";
const ns = new nslab.Namespace("ns1");
const sleeper = new nslab.Process("sleeper", { namespace: ns.name, command: ["sleep", "600"] });
export const pid = sleeper.pid;
export const log = sleeper.log;
`,
    );
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const first = (await lab.outputs()).pid as number;
    started.push(first);
    expect(running(first)).toBe(true);
    // It runs in the namespace: its network namespace is ns1's.
    const inode = (await sandbox.must("stat", ["-L", "-c", "%i", "/run/netns/ns1"])).trim();
    expect(fs.readlinkSync(`/proc/${first}/ns/net`)).toBe(`net:[${inode}]`);
    expect((await lab.driftCheck()).exitCode).toBe(0);

    process.kill(first, "SIGKILL");
    for (let i = 0; i < 100 && running(first); i++) await new Promise((r) => setTimeout(r, 20));
    const drift = await lab.driftCheck();
    expect(drift.exitCode, show(drift)).toBe(7);
    expect(drift.stdout).toMatch(/\+\s+pulumi-nodejs:dynamic\/nslab:Process: \(create\)[\s\S]*::sleeper\]/);
    const repair = await lab.up(["--refresh"]);
    expect(repair.exitCode, show(repair)).toBe(0);
    const second = (await lab.outputs()).pid as number;
    started.push(second);
    expect(second).not.toBe(first);
    expect(running(second)).toBe(true);

    lab.edit(`command: ["sleep", "600"]`, `command: ["sh", "-c", "echo cannot start: no config >&2; exit 3"]`);
    const failed = await lab.up();
    expect(failed.exitCode, show(failed)).not.toBe(0);
    expect(failed.stdout + failed.stderr).toMatch(/Process "sleeper" \(sh -c echo cannot start: no config >&2; exit 3\) in namespace "ns1": exited within 300 ms of starting; its log \(.*\) ends: cannot start: no config/);
    // The replace stopped the old program first.
    expect(running(second)).toBe(false);
    // Only the old one stays in the state, marked for the replacement Pulumi still owes.
    const procs = (await lab.resources()).filter((r) => r.type === "pulumi-nodejs:dynamic/nslab:Process");
    expect(procs.map((r) => (r as { pendingReplacement?: boolean }).pendingReplacement)).toEqual([true]);
    expect(processesWith("cannot start: no config")).toEqual([]);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("a Process in a namespace deleted by hand (which the program keeps alive) is drift of its namespace: up --refresh makes namespace, pair and program anew (the first ping passes), and refresh then destroy stops it", async () => {
    lab = await Lab.create(
      sandbox,
      "process-netns",
      `
import * as nslab from "nslab";
const sw = new nslab.Namespace("sw", { name: "psw" });
const h = new nslab.Namespace("h", { name: "ph" });
const link = new nslab.VethPair("h-link", { a: { name: "eth0", namespace: h.name, addresses: ["10.71.0.2/24"] }, b: { name: "ph-sw", namespace: sw.name, addresses: ["10.71.0.1/24"] } });
const app = new nslab.Process("app", { namespace: h.name, command: ["sleep", "3600.5"] }, { dependsOn: [link] });
export const pid = app.pid;
`,
    );
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const first = (await lab.outputs()).pid as number;
    started.push(first);
    expect(await pings(sandbox, "psw", "10.71.0.2")).toBe(true);

    // An address added by hand is drift of the pair; whether it restarts the Process waits
    // for the pair's update (its generation is unknown to the preview): the drift check
    // says "may", and the update restarts nothing.
    await sandbox.must("ip", ["-n", "ph", "addr", "add", "10.71.0.99/24", "dev", "eth0"]);
    const added = await sandbox.run(path.join(REPO, "scripts/drift-check"), ["--cwd", lab.dir, "--stack", lab.stack], { env: lab.env() });
    expect(added.exitCode, show(added)).toBe(7);
    expect(added.stdout).toMatch(/VethPair "h-link" differs \(pulumi up would update it in place\)\n\s+a\.addresses: live \["10\.71\.0\.2\/24","10\.71\.0\.99\/24"\]/);
    expect(added.stdout).toMatch(/Process "app" may be restarted by pulumi up\n\s+something in its dependsOn is itself to be updated/);
    expect(added.stdout).not.toMatch(/was made anew or is back up/);
    const fixed = await lab.up(["--refresh"]);
    expect(fixed.exitCode, show(fixed)).toBe(0);
    expect((await lab.outputs()).pid).toBe(first);
    expect(running(first)).toBe(true);
    expect(await pings(sandbox, "psw", "10.71.0.2")).toBe(true);

    await sandbox.must("ip", ["netns", "delete", "ph"]);
    // The program still runs, in the unnamed namespace, with the pair's end in it.
    expect(running(first)).toBe(true);
    const drift = await lab.driftCheck();
    expect(drift.exitCode, show(drift)).toBe(7);
    expect(drift.stdout).toMatch(/Process::app\][\s\S]*?namespace\s*: "ph" => "ph \(deleted by hand\)"/);
    const repair = await lab.up(["--refresh"]);
    expect(repair.exitCode, show(repair)).toBe(0);
    expect(await pings(sandbox, "psw", "10.71.0.2")).toBe(true);
    const second = (await lab.outputs()).pid as number;
    started.push(second);
    expect(second).not.toBe(first);
    expect(running(first)).toBe(false);
    const [inode, named] = (await sandbox.must("stat", ["-L", "-c", "%i", `/proc/${second}/ns/net`, "/run/netns/ph"])).trim().split("\n");
    expect(inode).toBe(named);
    const clean = await lab.driftCheck();
    expect(clean.exitCode, show(clean)).toBe(0);

    // Again, then a refresh alone and destroy: the state kept the program, and destroy stops it.
    await sandbox.must("ip", ["netns", "delete", "ph"]);
    expect((await lab.pulumi(["refresh", "--yes", "--non-interactive"])).exitCode).toBe(0);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(running(second)).toBe(false);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("08-tun-tunnel: overlay ping both ways, the underlay carries only UDP, Reachability proves both directions; destroy leaves no process and nothing else", async () => {
    lab = await Lab.fromExample(sandbox, "08-tun-tunnel");
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    const outputs = await lab.outputs();
    const pids = outputs.tunnelPids as number[];
    started.push(...pids);
    expect(pids.every(running)).toBe(true);
    expect(outputs.overlay).toEqual([
      { from: "site-a", to: "10.200.0.2", reachable: true },
      { from: "site-b", to: "10.200.0.1", reachable: true },
    ]);

    // A capture on the underlay while pings cross the overlay both ways.
    // IPv4 only: the underlay also carries its own link housekeeping (ARP, IPv6 router
    // solicitations), none of it overlay traffic.
    const capture = sandbox.spawn("ip", ["netns", "exec", "site-a", "timeout", "60", "tcpdump", "-n", "-l", "-i", "under0", "-c", "8", "ip"]);
    let captured = "";
    capture.stdout!.on("data", (d) => (captured += d));
    let listening = "";
    capture.stderr!.on("data", (d) => (listening += d));
    for (let i = 0; i < 100 && !listening.includes("listening on"); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await pings(sandbox, "site-a", "10.200.0.2")).toBe(true);
    expect(await pings(sandbox, "site-b", "10.200.0.1")).toBe(true);
    expect(await pings(sandbox, "site-a", "10.200.0.2")).toBe(true);
    expect(await pings(sandbox, "site-b", "10.200.0.1")).toBe(true);
    const exited = await new Promise<number | null>((resolve) => capture.on("close", resolve));
    expect(exited, listening).toBe(0);
    const packets = captured.trim().split("\n");
    expect(packets).toHaveLength(8);
    // Each overlay ping (84 bytes of IPv4 + ICMP) crosses inside one UDP datagram; no
    // overlay address and no ICMP is seen in the clear.
    for (const line of packets) expect(line).toMatch(/ IP 172\.16\.0\.[12]\.40000 > 172\.16\.0\.[12]\.40000: UDP, length 84$/);
    expect(captured).not.toMatch(/10\.200\.0|ICMP/);
    // Without the tunnel programs the overlay is dark: the underlay is the only path.
    expect((await sandbox.must("ip", ["netns", "exec", "site-a", "ip", "route", "get", "10.200.0.2"])).split(" ")).toContain("tun0");

    // The TUN devices made anew (owner set: a replacement). The programs held the old
    // ones, so they are started again (the Process takes the generation of the tun in its
    // dependsOn), and the overlay passes at the first try.
    lab.edit(`mode: "tun",`, `mode: "tun",\n    owner: 0,`);
    const replaced = await lab.up();
    expect(replaced.exitCode, show(replaced)).toBe(0);
    const after = (await lab.outputs()).tunnelPids as number[];
    started.push(...after);
    expect(after.filter((pid) => pids.includes(pid))).toEqual([]);
    expect(pids.filter(running)).toEqual([]);
    expect(await pings(sandbox, "site-a", "10.200.0.2")).toBe(true);
    expect(await pings(sandbox, "site-b", "10.200.0.1")).toBe(true);
    const quiet = await lab.driftCheck();
    expect(quiet.exitCode, show(quiet)).toBe(0);

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(pids.filter(running)).toEqual([]);
    expect(after.filter(running)).toEqual([]);
    expect(processesWith("tunnel.py")).toEqual([]);
    expect(await sandbox.residue()).toEqual([]);
  });
});
