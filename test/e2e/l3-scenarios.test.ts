import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { pings } from "../helpers/net";
import { Sandbox } from "../helpers/sandbox";

const WHOAMI = path.join(REPO, "examples/04-routing-nat/whoami.py");

/** Starts whoami.py serving in a namespace; resolves once it listens. */
async function serve(sandbox: Sandbox, ns: string, port: number) {
  const child = sandbox.spawn("ip", ["netns", "exec", ns, "python3", WHOAMI, "serve", String(port)]);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`whoami server exited ${code}`)));
  });
  return child;
}

async function ask(sandbox: Sandbox, ns: string, host: string, port: number): Promise<string> {
  return (await sandbox.must("ip", ["netns", "exec", ns, "python3", WHOAMI, "ask", host, String(port)])).trim();
}

describe("layer 3 through the real Pulumi engine", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  sandboxPerTest((s) => (sandbox = s));

  it("scenario 4: bridge + forwarding + masquerade to a simulated uplink, a port forward in, destroy restores everything", async () => {
    const forwardBefore = (await sandbox.must("sysctl", ["-n", "net.ipv4.ip_forward"])).trim();
    lab = await Lab.fromExample(sandbox, "04-routing-nat", {
      config: { uplink: "uplink", simulateUplink: "true" },
    });
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await lab.outputs()).toMatchObject({ gateway: "192.168.1.1", uplinkInterface: "uplink", forwardingWas: forwardBefore });
    expect((await sandbox.must("sysctl", ["-n", "net.ipv4.ip_forward"])).trim()).toBe("1");

    // Out: ns1 reaches the wan host, which sees the uplink's address, not 192.168.1.2.
    expect(await pings(sandbox, "ns1", "10.0.2.2")).toBe(true);
    const wanServer = await serve(sandbox, "wan", 80);
    expect(await ask(sandbox, "ns1", "10.0.2.2", 80)).toMatch(/ saw 10\.0\.2\.15:\d+$/);
    wanServer.kill();

    // In: uplink:8080 is forwarded to ns2:80; ns2 sees the real client.
    const ns2Server = await serve(sandbox, "ns2", 80);
    expect(await ask(sandbox, "wan", "10.0.2.15", 8080)).toMatch(/ saw 10\.0\.2\.2:\d+$/);
    ns2Server.kill();

    expect((await lab.driftCheck()).exitCode).toBe(0);
    // A NAT rule deleted by hand is drift; up --refresh puts it back.
    const rules = JSON.parse(await sandbox.must("nft", ["-j", "list", "chain", "inet", "nslab", "postrouting"])).nftables;
    const masq = rules.find((x: any) => x.rule).rule;
    await sandbox.must("nft", ["delete", "rule", "inet", "nslab", "postrouting", "handle", String(masq.handle)]);
    expect((await lab.driftCheck()).exitCode).toBe(7);
    expect((await lab.up(["--refresh"])).exitCode).toBe(0);
    const again = await serve(sandbox, "wan", 80);
    expect(await ask(sandbox, "ns1", "10.0.2.2", 80)).toMatch(/ saw 10\.0\.2\.15:/);
    again.kill();

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect((await sandbox.must("sysctl", ["-n", "net.ipv4.ip_forward"])).trim()).toBe(forwardBefore);
    expect(await sandbox.residue()).toEqual([]);
  });

  it("two subnets joined by a router namespace without NAT; a route deleted by hand is drift and is repaired", async () => {
    lab = await Lab.create(
      sandbox,
      "router",
      `
import * as nslab from "nslab";
const rtr = new nslab.Namespace("rtr");
const left = new nslab.Namespace("left");
const right = new nslab.Namespace("right");
const l = new nslab.VethPair("left-rtr", {
  a: { name: "eth0", namespace: left.name, addresses: ["10.1.0.2/24"] },
  b: { name: "rtr-left", namespace: rtr.name, addresses: ["10.1.0.1/24"] },
});
const r = new nslab.VethPair("right-rtr", {
  a: { name: "eth0", namespace: right.name, addresses: ["10.2.0.2/24"] },
  b: { name: "rtr-right", namespace: rtr.name, addresses: ["10.2.0.1/24"] },
});
new nslab.IpForwarding("rtr-forwarding", { namespace: rtr.name, ipv4: true });
new nslab.Route("left-to-right", { namespace: left.name, destination: "10.2.0.0/24", gateway: "10.1.0.1" }, { dependsOn: [l] });
new nslab.Route("right-to-left", { namespace: right.name, destination: "10.1.0.0/24", gateway: "10.2.0.1" }, { dependsOn: [r] });
`,
    );
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await pings(sandbox, "left", "10.2.0.2")).toBe(true);
    expect(await pings(sandbox, "right", "10.1.0.2")).toBe(true);

    await sandbox.must("ip", ["-n", "left", "route", "del", "10.2.0.0/24"]);
    expect(await pings(sandbox, "left", "10.2.0.2")).toBe(false);
    const drift = await lab.driftCheck();
    expect(drift.exitCode, show(drift)).toBe(7);
    const repair = await lab.up(["--refresh"]);
    expect(repair.exitCode, show(repair)).toBe(0);
    expect(await pings(sandbox, "left", "10.2.0.2")).toBe(true);
    expect((await lab.driftCheck()).exitCode).toBe(0);

    // Two resources for one switch are refused at preview.
    lab.write(
      `
import * as nslab from "nslab";
const rtr = new nslab.Namespace("rtr");
new nslab.IpForwarding("one", { namespace: rtr.name, ipv4: true });
new nslab.IpForwarding("two", { namespace: rtr.name, ipv4: true });
`,
    );
    const dup = await lab.preview();
    expect(dup.exitCode).not.toBe(0);
    expect(dup.stdout + dup.stderr).toMatch(/ipv4 forwarding in namespace "rtr" is already managed by IpForwarding "one"/);
    // In the program's own namespace (no Output among the arguments), the same words: not
    // under Pulumi's "error serializing property" prefix, which named the wrong property.
    lab.write(
      `
import * as nslab from "nslab";
new nslab.IpForwarding("one", { ipv4: true });
new nslab.IpForwarding("two", { ipv4: true });
`,
    );
    const own = await lab.preview();
    expect(own.exitCode).not.toBe(0);
    expect(own.stdout + own.stderr).toMatch(/error: IpForwarding "two": ipv4 forwarding in the program's namespace is already managed by IpForwarding "one"/);
    expect(own.stdout + own.stderr).not.toMatch(/error serializing property/);

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
