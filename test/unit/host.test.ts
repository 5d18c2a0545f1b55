/**
 * `host` (provider/host.ts, index.ts): validation at check, identity in diff, and the
 * quoting of remote commands, which a real POSIX shell must split back into the same
 * arguments.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { dispatch } from "../../provider";
import { checkHost, hostLabel, remoteCommand, shellQuote } from "../../provider/host";
import { shellEnded, sshError, sshFailed } from "../../provider/ssh";
import { Checker, UNKNOWN } from "../../provider/validate";
import * as pulumi from "@pulumi/pulumi";
import { BridgedNetwork, NatGateway, Router } from "../../sdk/components";
import { checkHostLink } from "../../sdk/components/hostlink";

const check = (value: unknown, kind = "Namespace") => {
  const c = new Checker();
  const host = checkHost(c, value, kind);
  return { host, failures: c.failures };
};

describe("host", () => {
  it("normalises a good host and labels it", () => {
    expect(check({ ssh: "root@192.0.2.2", port: 22, identityFile: "/root/.ssh/lab", knownHostsFile: "/root/.ssh/lab_known_hosts" })).toEqual({
      host: { ssh: "root@192.0.2.2", identityFile: "/root/.ssh/lab", knownHostsFile: "/root/.ssh/lab_known_hosts" },
      failures: [],
    });
    expect(check({ ssh: "lab.example.org", port: 2222 }).host).toEqual({ ssh: "lab.example.org", port: 2222 });
    expect(check({ ssh: "admin@fd00::2" }).failures).toEqual([]);
    expect(hostLabel({ ssh: "root@192.0.2.2", port: 2222 })).toBe("root@192.0.2.2:2222");
    expect(check(undefined)).toEqual({ host: undefined, failures: [] });
  });

  it.each([
    [{ ssh: "-oProxyCommand=touch /tmp/x" }, "host.ssh", /must be "user@address"/],
    [{ ssh: "root@bad host" }, "host.ssh", /must be "user@address"/],
    [{ ssh: "ro ot@192.0.2.2" }, "host.ssh", /must be "user@address"/],
    [{}, "host.ssh", /must be "user@address"/],
    [{ ssh: "root@192.0.2.2", port: 70000 }, "host.port", /integer from 1 to 65535/],
    [{ ssh: "root@192.0.2.2", identityFile: "lab" }, "host.identityFile", /absolute path/],
    [{ ssh: "root@192.0.2.2", knownHostsFile: "/a b" }, "host.knownHostsFile", /without spaces/],
    [{ ssh: "root@192.0.2.2", user: "x" }, "host", /unknown field\(s\) user/],
    ["root@192.0.2.2", "host", /must be an object like \{ ssh: "root@192.0.2.2" \}/],
  ])("refuses %j, naming %s", (value, property, reason) => {
    const { failures } = check(value);
    expect(failures).toHaveLength(1);
    expect(failures[0].property).toBe(property);
    expect(failures[0].reason).toMatch(reason);
  });

  it("a kind that cannot run on another host refuses host rather than ignoring it", () => {
    const { failures } = check({ ssh: "root@192.0.2.2" }, "Gadget");
    expect(failures).toEqual([{ property: "host", reason: expect.stringMatching(/^Gadget cannot run on another host yet .*Remove host/) }]);
  });

  it.each(["TapDevice", "LinkImpairment", "Reachability", "Process"])("%s takes a host", async (kind) => {
    expect(check({ ssh: "root@192.0.2.2" }, kind)).toEqual({ host: { ssh: "root@192.0.2.2" }, failures: [] });
  });

  it("Reachability takes every protocol on another host (udp and tcp by bash there, icmp by ping)", async () => {
    const host = { ssh: "root@192.0.2.2" };
    const checked = async (args: Record<string, unknown>) =>
      (await dispatch("Reachability", "check", [undefined, { __owner: "p/s/Reachability/web", to: "10.0.0.2", ...args }])) as { inputs: Record<string, unknown>; failures: { property: string; reason: string }[] };
    const udp = await checked({ protocol: "udp", port: 53, host });
    expect(udp.failures).toEqual([]);
    expect(udp.inputs).toMatchObject({ protocol: "udp", port: 53, host });
    expect((await checked({ protocol: "udp", port: 53 })).failures).toEqual([]);
    expect((await checked({ protocol: "tcp", port: 80, host })).inputs).toMatchObject({ protocol: "tcp", port: 80, host });
    const icmp = await checked({ host });
    expect(icmp.failures).toEqual([]);
    expect(icmp.inputs).toMatchObject({ protocol: "icmp", host });
  });

  it("Process with host needs an absolute cwd and logFile there (no program folder to resolve against), naming the property and the fix", async () => {
    const host = { ssh: "root@192.0.2.2" };
    const checked = async (args: Record<string, unknown>) =>
      (await dispatch("Process", "check", [undefined, { __owner: "p/s/Process/echo", command: ["sleep", "300"], ...args }])) as { inputs: Record<string, unknown>; failures: { property: string; reason: string }[] };
    expect((await checked({ host, cwd: "srv", logFile: "echo.log" })).failures).toEqual([
      { property: "cwd", reason: expect.stringMatching(/^cwd "srv" is relative, but host is set: .*Give an absolute path on that host .*or omit cwd to run in "\/"/) },
      { property: "logFile", reason: expect.stringMatching(/^logFile "echo.log" is relative, but host is set: .*or omit logFile for \/tmp\/nslab-process-<hash>\.log there/) },
    ]);
    const ok = await checked({ host, cwd: "/srv", logFile: "/var/log/echo.log", namespace: "site" });
    expect(ok.failures).toEqual([]);
    expect(ok.inputs).toMatchObject({ command: ["sleep", "300"], cwd: "/srv", logFile: "/var/log/echo.log", namespace: "site", host });
    // Without host, relative paths are the program folder's, as before.
    expect((await checked({ cwd: "srv", logFile: "echo.log" })).failures).toEqual([]);
    // A host not known yet (preview): decided at up.
    expect((await checked({ host: UNKNOWN, cwd: "srv" })).failures.filter((f) => f.property === "cwd")).toEqual([]);
  });

  it("check keeps the host in the inputs; diff replaces on another machine, and only then; another key updates", async () => {
    const checked = (await dispatch("Namespace", "check", [undefined, { name: "b1", __owner: "p/s/Namespace/b1", host: { ssh: "root@192.0.2.2", port: 22 } }])) as { inputs: Record<string, unknown> };
    expect(checked.inputs).toEqual({ name: "b1", adopt: false, __owner: "p/s/Namespace/b1", host: { ssh: "root@192.0.2.2" } });
    const olds = { ...checked.inputs, path: "/run/netns/b1", __made: "aaaaaaaa" };
    expect(await dispatch("Namespace", "diff", ["b1", olds, checked.inputs])).toMatchObject({ changes: false, replaces: [], stables: expect.arrayContaining(["host"]) });
    const moved = { ...checked.inputs, host: { ssh: "root@192.0.2.3" } };
    expect(await dispatch("Namespace", "diff", ["b1", olds, moved])).toMatchObject({ changes: true, replaces: ["host"] });
    const local = { ...checked.inputs, host: undefined };
    expect(await dispatch("Namespace", "diff", ["b1", olds, local])).toMatchObject({ changes: true, replaces: ["host"] });
    expect(await dispatch("Namespace", "diff", ["b1", olds, { ...checked.inputs, host: { ssh: "root@192.0.2.2", port: 2222 } }])).toMatchObject({ changes: true, replaces: ["host"] });
    // The same machine reached with another key or known-hosts file: updated in place.
    for (const host of [{ ssh: "root@192.0.2.2", identityFile: "/root/.ssh/new" }, { ssh: "root@192.0.2.2", knownHostsFile: "/root/.ssh/hosts2" }]) {
      expect(await dispatch("Namespace", "diff", ["b1", olds, { ...checked.inputs, host }])).toMatchObject({ changes: true, replaces: [] });
    }
  });

  it("quotes every argument so that the remote shell splits the line back into the same argv", () => {
    const argv = ["ip", "-n", "ns 1", "it's", "$(touch /tmp/pwned)", "`id`", "a;b", "", "*", "x\ny", "--net=/run/netns/a", 'dq"', "\\"];
    expect(shellQuote("plain-word_1.2:3/4=5@6")).toBe("plain-word_1.2:3/4=5@6");
    const r = spawnSync("sh", ["-c", `for a in ${remoteCommand(argv)}; do printf '%s\\0' "$a"; done`], { encoding: "utf8" });
    expect(r.stdout.split("\0").slice(0, -1)).toEqual(argv);
  });

  it("HostLink refuses arguments that cannot make a link, naming them", () => {
    const side = (address: string) => ({ bridge: "br0", address, host: { ssh: `root@${address}` } });
    expect(() => checkHostLink("l", { vni: 0, a: side("192.0.2.1"), b: side("192.0.2.2") })).toThrow(/HostLink "l": vni must be an integer from 1 to 16777215/);
    expect(() => checkHostLink("l", { vni: 42, a: side("192.0.2.1/24"), b: side("192.0.2.2") })).toThrow(/a\.address must be the host's underlay IP address/);
    expect(() => checkHostLink("l", { vni: 42, a: side("192.0.2.1"), b: side("fd00::2") })).toThrow(/both ends of the underlay must be of one family/);
    expect(() => checkHostLink("l", { vni: 42, a: side("192.0.2.1"), b: { ...side("192.0.2.1") } })).toThrow(/both 192\.0\.2\.1/);
    expect(() => checkHostLink("l", { vni: 42, a: side("192.0.2.1"), b: side("192.0.2.2") })).not.toThrow();
    // One machine with one device name in one namespace, whether or not port 22 is spelled out.
    const one = { ssh: "root@192.0.2.9" };
    expect(() => checkHostLink("l", { vni: 42, a: { ...side("192.0.2.1"), host: one }, b: { ...side("192.0.2.2"), host: { ...one, port: 22 } } })).toThrow(/both sides are on the same host and namespace/);
  });

  it("components pass their host to every resource they make, and key their namespaces by host", async () => {
    const made: { type: string; name: string; inputs: Record<string, any> }[] = [];
    pulumi.runtime.setMocks(
      { newResource: (args) => (made.push({ type: args.type, name: args.name, inputs: args.inputs }), { id: `${args.name}-id`, state: args.inputs }), call: (args) => args.inputs },
      "nslab-unit",
      "unit",
    );
    const host = { ssh: "root@192.0.2.2" };
    const lan = new BridgedNetwork("hn", { cidr: "10.9.0.0/24", hosts: ["a", { name: "b", impairment: { egress: { rate: "10mbit" } } }], gateway: true, gatewayOnBridge: false, host });
    // The same namespace names on this machine are other namespaces: no clash.
    const here = new BridgedNetwork("hn-here", { cidr: "10.8.0.0/24", hosts: ["a", "b"] });
    new Router("hr", { attach: [{ network: lan }], host });
    new NatGateway("hg", { sources: [lan], uplink: "wan0", host, uplinkImpairment: { egress: { loss: 0.01 } } });
    await new Promise((r) => setTimeout(r, 100));
    const resources = made.filter((m) => m.type.startsWith("pulumi-nodejs:dynamic/nslab:"));
    const remote = resources.filter((m) => m.name.startsWith("hn-") && !m.name.startsWith("hn-here") || m.name.startsWith("hr-") || m.name.startsWith("hg-"));
    expect(remote.map((m) => m.type.split(":").pop()).sort()).toEqual(
      ["Bridge", "Namespace", "Namespace", "VethPair", "VethPair", "LinkImpairment", "Route", "Route", "Namespace", "IpForwarding", "VethPair", "IpForwarding", "NatRule", "LinkImpairment"].sort(),
    );
    for (const m of remote) expect(m.inputs.host, m.name).toEqual(host);
    for (const m of resources.filter((r) => r.name.startsWith("hn-here"))) expect(m.inputs.host, m.name).toBeUndefined();
    expect(lan.host).toEqual(host);
    expect(lan.hosts.map((h) => h.host)).toEqual([host, host]);
    expect(here.hosts.map((h) => h.host)).toEqual([undefined, undefined]);
    // On one machine, a namespace made twice is still refused, naming the machine.
    expect(() => new BridgedNetwork("hn2", { cidr: "10.7.0.0/24", hosts: ["a"], host })).toThrow(/host "a" would create namespace "a" on root@192\.0\.2\.2, which BridgedNetwork "hn" already creates/);
    // Networks stay lab-wide: one on another machine may be joined to this one by a HostLink.
    expect(() => new BridgedNetwork("hn3", { cidr: "10.9.0.0/25", hosts: ["z"], host: { ssh: "root@192.0.2.3" } })).toThrow(/cidr 10\.9\.0\.0\/25 overlaps 10\.9\.0\.0\/24 of BridgedNetwork "hn"/);
    // A router joins networks of its own machine.
    expect(() => new Router("hr2", { attach: [{ network: here, address: "10.8.0.254" }], host })).toThrow(/^Router "hr2": network "hn-here" is on the machine that runs pulumi, the router on root@192\.0\.2\.2; .*HostLink/);
  });
});

describe("ssh's own failures, in words", () => {
  const host = { ssh: "root@192.0.2.2" };
  it("a master connection that went (sshd stopped mid-run) is said so, not in ssh's mux words; what else ssh said is kept", () => {
    const mux = "muxclient: master hello exchange failed\nmux_client_request_session: read from master failed: Broken pipe\n";
    expect(sshFailed(255, mux)).toBe(true);
    expect(sshFailed(255, "muxclient: master hello exchange failed\n")).toBe(true);
    const err = sshError(host, 'Namespace "a"', mux);
    expect(err.message).toBe('Namespace "a" on root@192.0.2.2: cannot reach root@192.0.2.2 over SSH: the connection to root@192.0.2.2 ended (its sshd stopped, the machine restarted, or the network dropped). Check that sshd runs on root@192.0.2.2 and that this machine reaches it.');
    const refused = sshError(host, 'Namespace "a"', `${mux}ssh: connect to host 192.0.2.2 port 22: Connection refused\n`);
    expect(refused.message).toContain("over SSH: ssh: connect to host 192.0.2.2 port 22: Connection refused. Check");
    expect(refused.message).not.toMatch(/mux/);
  });

  it("a remote shell that ends under its commands (sshd stopped mid-run) fails them as ssh's own failure, with the same fix as the commands sent after it", () => {
    const quiet = shellEnded(host, 255, "");
    expect(sshFailed(255, quiet)).toBe(true);
    expect(sshError(host, 'namespace "x"', quiet).message).toBe(
      'namespace "x" on root@192.0.2.2: cannot reach root@192.0.2.2 over SSH: ssh: the connection to root@192.0.2.2 ended (its sshd stopped, the machine restarted, or the network dropped). Check that sshd runs on root@192.0.2.2 and that this machine reaches it.',
    );
    const closed = shellEnded(host, 255, "Connection to 192.0.2.2 closed by remote host.\n");
    expect(sshFailed(255, closed)).toBe(true);
    expect(sshError(host, 'namespace "x"', closed).message).toContain("over SSH: Connection to 192.0.2.2 closed by remote host. Check that sshd runs");
    // A shell that ended otherwise (a command of its own killed it) is no ssh failure.
    expect(sshFailed(1, shellEnded(host, 1, ""))).toBe(false);
  });
});
