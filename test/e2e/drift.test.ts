import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { pings } from "../helpers/net";
import { Sandbox } from "../helpers/sandbox";

const DRIFT = path.join(REPO, "scripts/drift-check");

describe("drift check for CI (scripts/drift-check)", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  sandboxPerTest((s) => (sandbox = s));

  it("reports seven kinds of hand-made drift per resource and property, exits 7, and 0 once repaired", async () => {
    lab = await Lab.fromExample(sandbox, "04-routing-nat", { config: { uplink: "uplink", simulateUplink: "true" } });
    expect((await lab.up()).exitCode).toBe(0);
    const check = (...flags: string[]) => sandbox.run(DRIFT, [...flags, "--cwd", lab!.dir, "--stack", lab!.stack], { env: lab!.env() });

    const clean = await check();
    expect(clean.exitCode, show(clean)).toBe(0);
    expect(clean.stdout).toContain("no drift");
    const cleanState = await check("--against-state");
    expect(cleanState.exitCode, show(cleanState)).toBe(0);
    expect(cleanState.stdout).toContain("no drift: the live lab matches the stack's state");

    const ns = (name: string, ...args: string[]) => sandbox.must("ip", ["netns", "exec", name, ...args]);
    await ns("ns1", "ip", "addr", "add", "192.168.1.99/24", "dev", "veth-ns1"); // 1. an address added
    await sandbox.must("ip", ["link", "set", "veth-ns1-br", "nomaster"]); // 3. a port detached
    await ns("ns2", "ip", "route", "del", "default"); // 4. a route deleted
    await ns("ns2", "ip", "link", "set", "veth-ns2", "down"); // 2. a link down
    const web = JSON.parse(await sandbox.must("nft", ["-j", "list", "chain", "inet", "nslab", "prerouting"])).nftables.find((x: any) => x.rule).rule;
    await sandbox.must("nft", ["delete", "rule", "inet", "nslab", "prerouting", "handle", String(web.handle)]); // 5. a NAT rule deleted
    await sandbox.must("sysctl", ["-w", "net.ipv4.ip_forward=0"]); // 6. forwarding off
    await sandbox.must("ip", ["netns", "delete", "wan"]); // 7. a namespace (and the veth into it) deleted

    const drift = await check();
    expect(drift.exitCode, show(drift)).toBe(7);
    const report = drift.stdout;
    expect(report).toMatch(/VethPair "ns1-br0" differs \(pulumi up would update it in place\)/);
    expect(report).toMatch(/a\.addresses: live \["192\.168\.1\.2\/24","192\.168\.1\.99\/24"\], program \["192\.168\.1\.2\/24"\]/);
    expect(report).toMatch(/b\.master: live \(unset\), program "br0"/);
    expect(report).toMatch(/VethPair "ns2-br0" differs[\s\S]*?a\.up: live false, program true/);
    expect(report).toContain('Route "ns2-default" is missing from the live system');
    expect(report).toContain('NatRule "web" is missing from the live system');
    expect(report).toMatch(/IpForwarding "forwarding" differs[\s\S]*?ipv4: live false, program true/);
    expect(report).toContain('Namespace "wan" is missing from the live system');
    expect(report).toContain('VethPair "uplink" is missing from the live system');

    // The same drift against the stack's state, without running the program.
    const fast = await check("--against-state");
    expect(fast.exitCode, show(fast)).toBe(7);
    const byState = fast.stdout;
    expect(byState).toMatch(/^drift: \d+ resources differ from the stack's state/);
    expect(byState).toMatch(/VethPair "ns1-br0" differs\n[\s\S]*?a\.addresses: live \["192\.168\.1\.2\/24","192\.168\.1\.99\/24"\], recorded \["192\.168\.1\.2\/24"\]/);
    expect(byState).toMatch(/b\.master: live \(unset\), recorded "br0"/);
    expect(byState).toMatch(/VethPair "ns2-br0" differs[\s\S]*?a\.up: live false, recorded true/);
    expect(byState).toContain('Route "ns2-default" is missing from the live system');
    expect(byState).toContain('NatRule "web" is missing from the live system');
    expect(byState).toMatch(/IpForwarding "forwarding" differs[\s\S]*?ipv4: live false, recorded true/);
    expect(byState).toContain('Namespace "wan" is missing from the live system');
    expect(byState).toContain('VethPair "uplink" is missing from the live system');

    const repair = await lab.up(["--refresh"]);
    expect(repair.exitCode, show(repair)).toBe(0);
    const after = await check();
    expect(after.exitCode, show(after)).toBe(0);
    expect((await check("--against-state")).exitCode).toBe(0);
    expect(await pings(sandbox, "ns2", "10.0.2.2")).toBe(true);

    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
