/** The examples not covered elsewhere, and the README's demo command. */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";
import { startHosts } from "../helpers/sshd";

describe("examples and demo", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  sandboxPerTest((s) => (sandbox = s));

  it("01-namespaces: two isolated namespaces, each with only lo, up", async () => {
    lab = await Lab.fromExample(sandbox, "01-namespaces");
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await lab.outputs()).toEqual({ namespaces: ["ns1", "ns2"], paths: ["/run/netns/ns1", "/run/netns/ns2"] });
    for (const ns of ["ns1", "ns2"]) {
      const links = JSON.parse(await sandbox.must("ip", ["-n", ns, "-j", "link", "show"]));
      expect(links.map((l: { ifname: string }) => l.ifname)).toEqual(["lo"]);
      expect(links[0].flags).toContain("UP");
      // Isolation: the namespace has its own (empty) routing table and forwarding switch.
      expect((await sandbox.must("ip", ["-n", ns, "route", "show"])).trim()).toBe("");
    }
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  // Every example with a Pulumi.yaml, with the config it needs in the sandbox.
  const EXAMPLE_CONFIG: Record<string, Record<string, string>> = { "04-routing-nat": { uplink: "uplink", simulateUplink: "true", probeConnectivity: "true" } };
  // 09-multi-host needs two machines: its own test below gives it two sshd hosts.
  const programs = fs.readdirSync(path.join(REPO, "examples")).filter((e) => fs.existsSync(path.join(REPO, "examples", e, "Pulumi.yaml")) && e !== "09-multi-host");

  it("09-multi-host: on two sshd hosts, a namespace on one pings those on the other at the first try; quiet refresh; destroy leaves nothing on either", async () => {
    const hosts = await startHosts(sandbox, 2, "x");
    try {
      const [a, b] = hosts.hosts;
      lab = await Lab.fromExample(sandbox, "09-multi-host", { config: { hostA: JSON.stringify(a.host), hostB: JSON.stringify(b.host) } });
      const up = await lab.up();
      expect(up.exitCode, show(up)).toBe(0);
      expect(await lab.outputs()).toEqual({ addresses: { a1: "10.50.0.11", a2: "10.50.0.12", b1: "10.50.0.21", b2: "10.50.0.22" } });
      for (const to of ["10.50.0.21", "10.50.0.22", "10.50.0.12"]) await hosts.onHost(a, "ip", ["netns", "exec", "a1", "ping", "-c", "1", "-W", "2", to]);
      await hosts.onHost(b, "ip", ["netns", "exec", "b2", "ping", "-c", "1", "-W", "2", "10.50.0.11"]);
      const quiet = await lab.pulumi(["preview", "--refresh", "--non-interactive", "--expect-no-changes", "--diff"]);
      expect(quiet.exitCode, show(quiet)).toBe(0);
      expect(quiet.stdout).not.toMatch(/diff:|=>|--outputs:--/);
      expect((await lab.destroy()).exitCode).toBe(0);
      for (const h of [a, b]) {
        expect((await hosts.onHost(h, "ip", ["netns", "list"])).trim()).toBe("");
        expect(await hosts.onHost(h, "ip", ["-o", "link", "show"])).not.toMatch(/br0|vx42|-br@/);
      }
    } finally {
      await hosts.destroy();
    }
  });

  it.each(programs)("%s: a no-change `preview --refresh` prints no diff at all, with or without --diff", async (example) => {
    lab = await Lab.fromExample(sandbox, example, { config: EXAMPLE_CONFIG[example] });
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    // The compact view marks changed properties "[diff: ...]"; the --diff view prints
    // each as "name: old => new" under "--outputs:--".
    const compact = await lab.pulumi(["preview", "--refresh", "--non-interactive", "--expect-no-changes"]);
    expect(compact.exitCode, show(compact)).toBe(0);
    expect(compact.stdout).not.toContain("diff:");
    const detailed = await lab.pulumi(["preview", "--refresh", "--non-interactive", "--expect-no-changes", "--diff"]);
    expect(detailed.exitCode, show(detailed)).toBe(0);
    expect(detailed.stdout).not.toMatch(/diff:|=>|--outputs:--/);
    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("scripts/demo brings scenario 4 up, proves its connectivity matrix, shows it working, destroys it, leaves nothing", async () => {
    const r = await sandbox.run(path.join(REPO, "scripts/demo"), [], { timeoutMs: 300_000 });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    // 13 objects and the 12 probes of the connectivity matrix (Reachability).
    expect(r.stdout).toMatch(/\+ 25 created/);
    expect(r.stdout).toContain("12 Reachability resources: 9 reachable, 3 unreachable, each as expected at up");
    expect(r.stdout).toMatch(/"gateway": "192.168.1.1"/);
    expect(r.stdout).toMatch(/^ns1 +\(self\) +[0-9.]+ ms +[0-9.]+ ms +[0-9.]+ ms +[0-9.]+ ms/m);
    expect(r.stdout).toMatch(/^wan +-- +-- +-- +[0-9.]+ ms +\(self\)/m);
    expect(r.stdout).toMatch(/server saw 10\.0\.2\.15:\d+ +\(masquerade\)/);
    expect(r.stdout).toMatch(/server saw 10\.0\.2\.2:\d+ +\(port forward to ns2:80\)/);
    expect(r.stdout).toContain("no drift");
    expect(r.stdout).toMatch(/- 25 deleted/);
    expect(r.stdout).toContain("nothing: no namespaces, no links but lo, no nft tables");
    expect(await sandbox.residue()).toEqual([]);
  });
});
