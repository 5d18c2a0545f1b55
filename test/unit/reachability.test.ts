import { describe, expect, it } from "vitest";
import { processKind } from "../../provider/process";
import { reachabilityKind, TIMEOUT_MS_DEFAULT } from "../../provider/reachability";
import { UNKNOWN } from "../../provider/validate";

const owner = "proj/dev/Reachability/p";
const check = (news: Record<string, unknown>) => reachabilityKind.check(undefined, { __owner: owner, ...news });

describe("Reachability check", () => {
  it("fills in the defaults: icmp, reachable, 2000 ms, the program's namespace", () => {
    const { inputs, failures } = check({ to: "10.0.0.2" });
    expect(failures).toEqual([]);
    expect(inputs).toEqual({ to: "10.0.0.2", protocol: "icmp", expect: "reachable", timeoutMs: TIMEOUT_MS_DEFAULT, __owner: owner });
  });

  it("normalises IPv6 addresses, so the same target compares equal", () => {
    expect(check({ to: "FD00:0:0::2", from: "ns1", protocol: "tcp", port: 80 }).inputs).toMatchObject({ to: "fd00::2", from: "ns1", port: 80 });
  });

  it.each([
    [{ to: "10.0.0.2", port: 80 }, "port", /protocol is "icmp", which has no ports/],
    [{ to: "10.0.0.2", protocol: "tcp" }, "port", /protocol "tcp" needs a port/],
    [{ to: "10.0.0.2", protocol: "udp", port: 0 }, "port", /integer from 1 to 65535, got 0/],
    [{ to: "10.0.0.2", protocol: "udp", port: 70000 }, "port", /integer from 1 to 65535/],
    [{ to: "10.0.0.2", protocol: "sctp" }, "protocol", /"icmp" \(ping\), "tcp" \(connect\) or "udp"/],
    [{ to: "10.0.0.2", expect: "maybe" }, "expect", /"reachable" or "unreachable", got "maybe"/],
    [{ to: "10.0.0.2", timeoutMs: 99 }, "timeoutMs", /integer from 100 to 60000, got 99/],
    [{ to: "10.0.0.2", timeoutMs: 60001 }, "timeoutMs", /integer from 100 to 60000/],
    [{ to: "10.0.0.2", timeoutMs: 1.5 }, "timeoutMs", /integer/],
    [{ to: "10.0.0.0/24" }, "to", /is not an IP address/],
    [{ to: "example.org" }, "to", /is not an IP address/],
    [{}, "to", /to is required/],
    [{ to: "0.0.0.0" }, "to", /to 0\.0\.0\.0 is an unspecified address, not one host's/],
    [{ to: "::" }, "to", /is an unspecified address/],
    [{ to: "fe80::1" }, "to", /to fe80::1 is a link-local address, which is only reached through a named interface/],
    [{ to: "fe80::1%eth0" }, "to", /to fe80::1%eth0 is a link-local address, which is only reached through a named interface \(fe80::1%eth0\), and a probe cannot use the one it names/],
    [{ to: "255.255.255.255" }, "to", /is a broadcast address/],
    [{ to: "224.0.0.1" }, "to", /is a multicast address/],
    [{ to: "ff02::1" }, "to", /is a multicast address/],
    [{ to: "10.0.0.2", from: "bad name" }, "from", /may only contain/],
  ])("refuses %j at %s", (news, property, reason) => {
    const { failures } = check(news);
    expect(failures.map((f) => f.property)).toContain(property);
    expect(failures.find((f) => f.property === property)!.reason).toMatch(reason);
  });

  it("leaves values unknown at preview alone", () => {
    const { inputs, failures } = check({ to: UNKNOWN, from: UNKNOWN, protocol: "tcp", port: UNKNOWN });
    expect(failures).toEqual([]);
    expect(inputs).toMatchObject({ to: UNKNOWN, from: UNKNOWN, port: UNKNOWN });
  });

  it("diff: equal inputs make no change; any changed input replaces (a new probe), without deleting first", () => {
    const { inputs } = check({ to: "10.0.0.2", from: "ns1", protocol: "tcp", port: 80 });
    const olds = { ...inputs, reachable: true };
    expect(reachabilityKind.diff("id", olds, inputs).changes).toBe(false);
    for (const [field, value] of [["to", "10.0.0.3"], ["from", "ns2"], ["port", 81], ["protocol", "udp"], ["expect", "unreachable"], ["timeoutMs", 500]] as const) {
      const d = reachabilityKind.diff("id", olds, { ...inputs, [field]: value });
      expect(d).toEqual({ changes: true, replaces: [field], stables: expect.any(Array), deleteBeforeReplace: false });
    }
  });

  it("diff: a refresh that observed the opposite (expect flipped) is a replacement, i.e. a new probe at up", () => {
    const { inputs } = check({ to: "10.0.0.2" });
    const observed = { ...inputs, expect: "unreachable" as const, reachable: false };
    expect(reachabilityKind.diff("id", observed, inputs).replaces).toEqual(["expect"]);
  });
});

describe("Process check", () => {
  const pcheck = (news: Record<string, unknown>) => processKind.check(undefined, { __owner: "proj/dev/Process/t", ...news });

  it("takes argv as given and fills in the timing defaults", () => {
    expect(pcheck({ command: ["python3", "tunnel.py", "tun0"], namespace: "a" })).toEqual({
      inputs: { command: ["python3", "tunnel.py", "tun0"], namespace: "a", startupMs: 300, stopTimeoutMs: 5000, __owner: "proj/dev/Process/t" },
      failures: [],
    });
    expect(pcheck({ command: ["srv"], readyText: "listening" }).inputs.startupMs).toBe(10_000);
  });

  it.each([
    [{}, "command", /command is required/],
    [{ command: [] }, "command", /command is required/],
    [{ command: "python3 x.py" }, "command", /command must be a list \(the program and its arguments, no shell\), got the string "python3 x.py": write e\.g\. \["python3","x\.py"\], or \["sh", "-c", "python3 x\.py"\]/],
    [{ command: ["", "x"] }, "command[0]", /non-empty string/],
    [{ command: ["a", 3] }, "command[1]", /must be a string/],
    [{ command: ["a"], startupMs: -1 }, "startupMs", /integer from 0 to 60000/],
    [{ command: ["a"], namespace: "../x" }, "namespace", /may only contain/],
  ])("refuses %j at %s", (news, property, reason) => {
    const { failures } = pcheck(news);
    expect(failures.find((f) => f.property === property)?.reason).toMatch(reason);
  });

  it("diff: any change replaces, stopping the old program first", () => {
    const { inputs } = pcheck({ command: ["a"] });
    const olds = { ...inputs, pid: 1, startTime: "1", log: "/tmp/x" };
    expect(processKind.diff("id", olds, inputs).changes).toBe(false);
    expect(processKind.diff("id", olds, { ...inputs, command: ["b"] })).toMatchObject({ replaces: ["command"], deleteBeforeReplace: true });
  });

  it("diff: an interface in its dependsOn made anew (a new generation) starts it again; a state from before generations records them without a restart", async () => {
    const { inputs } = pcheck({ command: ["a"], __links: ["7/8"] });
    expect(inputs.__links).toEqual(["7/8"]);
    const olds = { ...inputs, pid: 1, startTime: "1", log: "/tmp/x" };
    expect(processKind.diff("id", olds, inputs).changes).toBe(false);
    expect(processKind.diff("id", olds, { ...inputs, __links: ["9/8"] })).toMatchObject({ replaces: ["__links"], deleteBeforeReplace: true });
    // Preview: the generation of an interface that changes is not known yet.
    expect(processKind.diff("id", olds, { ...inputs, __links: UNKNOWN as never })).toMatchObject({ replaces: ["__links"] });
    // No dependsOn with interfaces: no change.
    expect(processKind.diff("id", olds, { ...inputs, __links: undefined }).changes).toBe(false);
    // Back up after up: false, or an interface added to or removed from its dependsOn (a
    // host of a BridgedNetwork): recorded in place, the program left running.
    for (const links of [["7+1/8"], ["7/8", "10/11"]]) expect(processKind.diff("id", olds, { ...inputs, __links: links }), links.join()).toMatchObject({ changes: true, replaces: [] });
    expect(processKind.diff("id", { ...olds, __links: ["7/8", "10/11"] }, inputs)).toMatchObject({ changes: true, replaces: [] });
    const { outs: kept } = await processKind.update!("id", olds, { ...inputs, __links: ["7+1/8"] });
    expect(kept).toMatchObject({ pid: 1, __links: ["7+1/8"] });
    const { __links: _l, ...legacy } = olds;
    expect(processKind.diff("id", legacy as never, inputs)).toMatchObject({ changes: true, replaces: [] });
    // That update keeps the program running and records the generations.
    const { outs } = await processKind.update!("id", legacy as never, inputs);
    expect(outs).toMatchObject({ pid: 1, startTime: "1", __links: ["7/8"] });
  });
});
