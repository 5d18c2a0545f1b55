import * as fs from "node:fs";
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

    // The seven drifts, in the report against the program (default) and against the
    // stack's state (without running the program); they differ in what the live value
    // is compared with ("program" or "recorded") and what pulumi up would do.
    const expectSevenDrifts = (report: string, other: "program" | "recorded") => {
      const inPlace = other === "program" ? " \\(pulumi up would update it in place\\)" : "";
      expect(report).toMatch(new RegExp(`VethPair "ns1-br0" differs${inPlace}\\n`));
      expect(report).toContain(`a.addresses: live ["192.168.1.2/24","192.168.1.99/24"], ${other} ["192.168.1.2/24"]`);
      expect(report).toContain(`b.master: live (unset), ${other} "br0"`);
      expect(report).toMatch(new RegExp(`VethPair "ns2-br0" differs[\\s\\S]*?a\\.up: live false, ${other} true`));
      expect(report).toContain('Route "ns2-default" is missing from the live system');
      expect(report).toContain('NatRule "web" is missing from the live system');
      expect(report).toMatch(new RegExp(`IpForwarding "forwarding" differs[\\s\\S]*?ipv4: live false, ${other} true`));
      expect(report).toContain('Namespace "wan" is missing from the live system');
      expect(report).toContain('VethPair "uplink" is missing from the live system');
    };
    const drift = await check();
    expect(drift.exitCode, show(drift)).toBe(7);
    expectSevenDrifts(drift.stdout, "program");
    const byState = await check("--against-state");
    expect(byState.exitCode, show(byState)).toBe(7);
    expect(byState.stdout).toMatch(/^drift: \d+ resources differ from the stack's state/);
    expectSevenDrifts(byState.stdout, "recorded");

    // A pulumi killed while it saved (kill -9) can leave the state's metadata file empty:
    // every command then fails reading it, and nslab's tools say what to do.
    const sidecar = (await sandbox.must("find", [lab.stateDir, "-name", `${lab.stack}.json.attrs`])).trim();
    expect(sidecar).not.toBe("");
    await sandbox.must("truncate", ["-s", "0", sidecar]);
    const broken = await check();
    expect(broken.exitCode, show(broken)).not.toBe(0);
    expect(broken.stderr).toContain("failed to load checkpoint: EOF");
    // The command, with this stack's backend folder in it: run as given, it repairs.
    const fix = /find \S+ -name '\*\.attrs' -size 0 -delete/.exec(broken.stderr)?.[0];
    expect(fix).toBe(`find ${lab.stateDir}/.pulumi/stacks -name '*.attrs' -size 0 -delete`);
    await sandbox.must("sh", ["-c", fix!]);
    expect(fs.existsSync(sidecar)).toBe(false);

    const repair = await lab.up(["--refresh"]);
    expect(repair.exitCode, show(repair)).toBe(0);
    const after = await check();
    expect(after.exitCode, show(after)).toBe(0);
    expect((await check("--against-state")).exitCode).toBe(0);
    expect(await pings(sandbox, "ns2", "10.0.2.2")).toBe(true);

    expect((await lab.destroy()).exitCode).toBe(0);
    expect(await sandbox.residue()).toEqual([]);

    // A stack with nothing deployed (destroyed here; never deployed alike) is no clean
    // lab: against the program every resource is missing (the stack itself is not listed),
    // against the state there is nothing to compare. Both fail.
    const empty = await check();
    expect(empty.exitCode, show(empty)).toBe(7);
    expect(empty.stdout).toContain('Namespace "wan" is missing from the live system');
    expect(empty.stdout).not.toMatch(/Stack "/);
    const emptyState = await check("--against-state");
    expect(emptyState.exitCode, show(emptyState)).toBe(7);
    expect(emptyState.stdout).toContain("the stack's state records no nslab resource, so there is no lab to compare");

    // A preview that fails saying why only in the engine's stderr stream (severity
    // info#err; here, no program to run: neither Pulumi.yaml nor package.json names one,
    // and there is no index.js or index.ts): nslab-drift prints it. It printed nothing.
    await sandbox.must("sed", ["-i", "/^main:/d", path.join(lab.dir, "Pulumi.yaml")]);
    fs.writeFileSync(path.join(lab.dir, "package.json"), JSON.stringify({ name: "drift-no-program" }));
    fs.renameSync(path.join(lab.dir, "index.ts"), path.join(lab.dir, "index.ts.away"));
    const noProgram = await check();
    expect(noProgram.exitCode, show(noProgram)).not.toBe(0);
    expect(noProgram.exitCode, show(noProgram)).not.toBe(7);
    expect(noProgram.stderr).toMatch(/failed to locate the entry point/);
  });
});
