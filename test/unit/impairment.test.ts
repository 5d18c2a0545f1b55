/**
 * LinkImpairment's pure parts: validation and normalisation in check (each failure
 * names the property and the fix), the diff, unit parsing and formatting, and the tc
 * and nft commands generated for every shape, netem (delay/jitter) included, since this
 * kernel cannot run netem. test/kernel/impairment.test.ts runs them on the kernel.
 */
import { describe, expect, it } from "vitest";
import {
  defaultBurst,
  formatRate,
  formatSize,
  formatTime,
  impairmentKind as imp,
  lossScript,
  marksOf,
  minimumBurst,
  parseLoss,
  parseRate,
  parseShaping,
  parseSize,
  parseTime,
  redirectCommand,
  sameBurst,
  shapingCommands,
} from "../../provider/impairment";
import { UNKNOWN } from "../../provider/validate";

/** Marks of one resource, fixed here for readable commands (marksOf derives them from the owner). */
const M = { root: "4e53:", child: "71ac:", prio: "20051" };

const check = (news: Record<string, unknown>) => imp.check(undefined, { device: "wan0", __owner: "p/s/LinkImpairment/x", ...news });

describe("LinkImpairment check", () => {
  it("normalises units, fills in the default burst, keeps loss as given", () => {
    const r = check({ namespace: "wan", egress: { rate: "10Mbit", loss: 0.05, delay: "0.04s", jitter: "5000us" }, ingress: { rate: "2mbit", burst: "16384b" } });
    expect(r.failures).toEqual([]);
    expect(r.inputs).toEqual({
      device: "wan0",
      namespace: "wan",
      egress: { rate: "10mbit", burst: "32kb", loss: 0.05, delay: "40ms", jitter: "5ms" },
      ingress: { rate: "2mbit", burst: "16kb" },
      adopt: false,
      __owner: "p/s/LinkImpairment/x",
    });
    expect(check({ egress: { rate: "1MBps" } }).inputs.egress).toEqual({ rate: "8mbit", burst: "32kb" });
    expect(check({ egress: { rate: "1gbit" } }).inputs.egress).toEqual({ rate: "1gbit", burst: "489kb" }); // 1e9 / 8 / 250 = 500000 bytes
    expect(check({ egress: {} }).inputs.egress).toEqual({});
  });

  it("passes values not known yet at preview through", () => {
    const r = check({ device: UNKNOWN, namespace: UNKNOWN, egress: { rate: UNKNOWN }, ingress: UNKNOWN });
    expect(r.failures).toEqual([]);
    expect(r.inputs.egress).toEqual({ rate: UNKNOWN });
  });

  const bad: [string, Record<string, unknown>, string, RegExp][] = [
    ["device missing", { device: undefined }, "device", /device is required/],
    ["device not an interface name", { device: "wan 0" }, "device", /may only contain letters/],
    ["device too long", { device: "a-very-long-device" }, "device", /at most 15/],
    ["unknown rate unit", { egress: { rate: "10mbps/s" } }, "egress.rate", /not a rate; write a number and one of tc's units: bit, kbit, mbit/],
    ["rate without unit", { egress: { rate: "1000" } }, "egress.rate", /not a rate/],
    ["rate not whole bytes", { egress: { rate: "100bit" } }, "egress.rate", /whole number of bytes per second/],
    ["unknown burst unit", { egress: { rate: "1mbit", burst: "32kbyte" } }, "egress.burst", /not a size; write a number and one of b, kb, mb, gb/],
    ["burst too small", { egress: { rate: "100mbit", burst: "10kb" } }, "egress.burst", /too small for rate 100mbit: tbf needs at least 50000 bytes \(rate \/ HZ with HZ = 250 assumed.*raise it to "49kb"/],
    ["burst below a frame", { ingress: { rate: "1mbit", burst: "1000b" } }, "ingress.burst", /at least 1514 bytes/],
    ["burst without rate", { egress: { burst: "32kb" } }, "egress.burst", /set egress.rate too, or remove burst/],
    ["negative loss", { egress: { loss: -0.1 } }, "egress.loss", /fraction from 0 to 1/],
    ["loss above 1", { ingress: { loss: 1.5 } }, "ingress.loss", /fraction from 0 to 1/],
    ["loss as a percentage string", { ingress: { loss: "5%" } }, "ingress.loss", /fraction from 0 to 1/],
    ["loss as a number in a string (from pulumi config)", { egress: { loss: "1" } }, "egress.loss", /egress\.loss must be a number, got the string "1": pass Number\(\.\.\.\) of it/],
    ["loss finer than the resolution", { egress: { loss: 0.0000001 } }, "egress.loss", /finer than nslab's resolution of 0.000001/],
    ["unknown delay unit", { egress: { delay: "40 minutes" } }, "egress.delay", /not a duration; write a number and one of s, ms, us/],
    ["jitter without delay", { egress: { jitter: "5ms" } }, "egress.jitter", /varies a delay; set egress.delay too, or remove jitter/],
    // netem reads 0 back as none: it would never verify.
    ["a delay of 0", { egress: { delay: "0ms" } }, "egress.delay", /egress\.delay 0 adds nothing; leave delay out for none/],
    ["a jitter of 0", { ingress: { delay: "10ms", jitter: "0us" } }, "ingress.jitter", /ingress\.jitter 0 adds nothing/],
    // Nothing to apply: refused, not accepted to do nothing.
    ["no direction", {}, "egress", /the impairment has nothing to apply: give egress and\/or ingress/],
    ["empty directions", { egress: {}, ingress: {} }, "egress", /nothing to apply/],
    ["unknown field", { egress: { latency: "5ms" } }, "egress.latency", /not an impairment; the fields are rate, burst, loss, delay, jitter/],
    ["direction not an object", { ingress: "10mbit" }, "ingress", /must be an object/],
    // What tc would refuse ("illegal value for burst"), or the kernel keep wrapped.
    ["burst above 32 bits", { egress: { rate: "10mbit", burst: "10gb" } }, "egress.burst", /10gb \(10737418240 bytes\) is more than tbf holds at rate 10mbit \(at most 171250000 bytes: 4294967295 bytes, and 137 s of traffic at the rate\); lower it to "/],
    ["burst above 137 s at the rate", { egress: { rate: "10mbit", burst: "1gb" } }, "egress.burst", /more than tbf holds at rate 10mbit/],
    ["rate too low for one frame", { egress: { rate: "80bit" } }, "egress.rate", /80bit is less than tbf can shape: one 1514-byte frame is more than 137 s of traffic at that rate; the smallest rate is 96bit/],
    ["rate too high for any burst", { egress: { rate: "100tbit" } }, "egress.rate", /100tbit is more than tbf can shape: it needs a burst of at least 50000000000 bytes and holds at most 4294967295; the largest rate is 8589gbit/],
  ];
  for (const [name, news, property, reason] of bad) {
    it(`refuses ${name}, naming ${property}`, () => {
      const r = check(news);
      expect(r.failures.map((f) => f.property)).toContain(property);
      expect(r.failures.find((f) => f.property === property)!.reason).toMatch(reason);
    });
  }
});

describe("LinkImpairment check: a slow rate without burst", () => {
  it("gets a default burst the bucket can hold (at most 137 s of traffic), and no failure", () => {
    const r = check({ egress: { rate: "1kbit" } });
    expect(r.failures).toEqual([]);
    expect(r.inputs.egress).toMatchObject({ rate: "1kbit", burst: "17125b" });
  });
});

describe("LinkImpairment diff", () => {
  const base = check({ namespace: "wan", egress: { rate: "10mbit" } }).inputs;
  it("is empty for the same inputs, in place for every impairment, a replacement for device or namespace", () => {
    expect(imp.diff("id", base, base).changes).toBe(false);
    for (const change of [{ egress: { rate: "20mbit", burst: "32kb" } }, { egress: undefined }, { ingress: { loss: 0.1 } }]) {
      expect(imp.diff("id", base, { ...base, ...change })).toMatchObject({ changes: true, replaces: [] });
    }
    expect(imp.diff("id", base, { ...base, device: "wan1" })).toMatchObject({ replaces: ["device"], deleteBeforeReplace: true });
    expect(imp.diff("id", base, { ...base, namespace: "lan" }).replaces).toEqual(["namespace"]);
  });
});

describe("units", () => {
  it("parse as tc does and format canonically", () => {
    expect(parseRate("10mbit")).toBe(10_000_000);
    expect(parseRate("1.5Mbit")).toBe(1_500_000);
    expect(parseRate("1kibit")).toBe(1024);
    expect(parseRate("1kbps")).toBe(8000); // bps = bytes per second, as in tc
    expect(formatRate(1_500_000)).toBe("1500kbit");
    expect(formatRate(8)).toBe("8bit");
    expect(parseSize("32kb")).toBe(32768);
    expect(parseSize("1m")).toBe(1048576);
    expect(formatSize(1514)).toBe("1514b");
    expect(parseTime("40ms")).toBe(40_000);
    expect(parseTime("1.5ms")).toBe(1500);
    expect(formatTime(1500)).toBe("1500us");
    expect(formatTime(2_000_000)).toBe("2s");
    expect(minimumBurst(10_000_000)).toBe(5000);
    expect(minimumBurst(1_000_000)).toBe(1514);
    expect(defaultBurst(10_000_000)).toBe(32768);
    // tc reports 32767 for 32kb at 10mbit: the kernel keeps the burst as time.
    expect(sameBurst(32768, 32767, 10_000_000)).toBe(true);
    expect(sameBurst(32768, 65535, 10_000_000)).toBe(false);
    // Up to a microsecond and a 64 ns tick of the rate short (as read on Linux 6.18 with iproute2 6.1's tc).
    expect(sameBurst(32768, 32762, 50_000_000)).toBe(true);
    expect(sameBurst(690176, 690000, 1_380_000_000)).toBe(true);
    expect(sameBurst(1261568, 1261250, 2_500_000_000)).toBe(true);
    expect(sameBurst(500253, 500125, 1_000_000_000)).toBe(true);
    expect(sameBurst(500736, 500625, 1_000_000_000)).toBe(true);
    expect(sameBurst(1_000_000, 998750, 10_000_000_000)).toBe(true);
    expect(sameBurst(32768, 32700, 50_000_000)).toBe(false);
  });
});

describe("tc commands", () => {
  it("marks: one root handle, child handle and filter priority per owner, below the kernel's automatic handles", () => {
    const owners = Array.from({ length: 200 }, (_, i) => `p/s/LinkImpairment/l${i}`);
    for (const owner of owners) {
      const m = marksOf(owner);
      expect(m).toEqual(marksOf(owner));
      for (const handle of [m.root, m.child]) expect(parseInt(handle, 16)).toBeGreaterThanOrEqual(0x4000), expect(parseInt(handle, 16)).toBeLessThanOrEqual(0x7fff);
      expect(m.child).not.toBe(m.root);
      expect(Number(m.prio)).toBe(parseInt(m.root, 16));
    }
    expect(new Set(owners.map((o) => marksOf(o).root)).size).toBeGreaterThan(195); // 14 bits of hash: rare clashes
  });

  const tbf = (rate: number, burst: number) => ["tbf", "rate", `${rate}bit`, "burst", String(burst), "latency", "100ms"];
  it("rate: a tbf root qdisc, replaced in place, deleted when removed", () => {
    expect(shapingCommands("wan0", { rate: 10e6, burst: 32768 }, {}, M)).toEqual([["qdisc", "replace", "dev", "wan0", "root", "handle", "4e53:", ...tbf(10e6, 32768)]]);
    expect(shapingCommands("wan0", { rate: 20e6, burst: 32768 }, { root: "tbf", rate: 10e6, burst: 32767 }, M)).toEqual([
      ["qdisc", "replace", "dev", "wan0", "root", "handle", "4e53:", ...tbf(20e6, 32768)],
    ]);
    expect(shapingCommands("wan0", { rate: 10e6, burst: 32768 }, { root: "tbf", rate: 10e6, burst: 32767 }, M)).toEqual([]);
    expect(shapingCommands("wan0", {}, { root: "tbf", rate: 10e6, burst: 32767 }, M)).toEqual([["qdisc", "del", "dev", "wan0", "root"]]);
    expect(shapingCommands("wan0", {}, {}, M)).toEqual([]);
    expect(shapingCommands("wan0", {}, { foreign: "htb 1:" }, M)).toEqual([]); // not ours, no impairment asked: left alone
  });

  it("delay: a netem root, with the tbf as its child when a rate is set too", () => {
    expect(shapingCommands("wan0", { delay: 40_000, jitter: 5_000 }, {}, M)).toEqual([["qdisc", "replace", "dev", "wan0", "root", "handle", "4e53:", "netem", "delay", "40ms", "5ms"]]);
    expect(shapingCommands("ifbx", { delay: 40_000, rate: 10e6, burst: 32768 }, {}, M)).toEqual([
      ["qdisc", "replace", "dev", "ifbx", "root", "handle", "4e53:", "netem", "delay", "40ms"],
      ["qdisc", "replace", "dev", "ifbx", "parent", "4e53:1", "handle", "71ac:", ...tbf(10e6, 32768)],
    ]);
    // From a tbf root to netem: the kernel refuses another kind under one handle, so delete first.
    expect(shapingCommands("wan0", { delay: 40_000 }, { root: "tbf", rate: 10e6, burst: 32767 }, M)).toEqual([
      ["qdisc", "del", "dev", "wan0", "root"],
      ["qdisc", "replace", "dev", "wan0", "root", "handle", "4e53:", "netem", "delay", "40ms"],
    ]);
    // Only the delay changes: netem is changed in place, its tbf child kept.
    expect(shapingCommands("wan0", { delay: 20_000, rate: 10e6, burst: 32768 }, { root: "netem", child: true, delay: 40_000, rate: 10e6, burst: 32767 }, M)).toEqual([
      ["qdisc", "replace", "dev", "wan0", "root", "handle", "4e53:", "netem", "delay", "20ms"],
      ["qdisc", "replace", "dev", "wan0", "parent", "4e53:1", "handle", "71ac:", ...tbf(10e6, 32768)],
    ]);
    // The rate goes, the delay stays: netem is rebuilt without its child.
    expect(shapingCommands("wan0", { delay: 40_000 }, { root: "netem", child: true, delay: 40_000, rate: 10e6, burst: 32767 }, M)).toEqual([
      ["qdisc", "del", "dev", "wan0", "root"],
      ["qdisc", "replace", "dev", "wan0", "root", "handle", "4e53:", "netem", "delay", "40ms"],
    ]);
    expect(shapingCommands("wan0", {}, { root: "netem", delay: 40_000 }, M)).toEqual([["qdisc", "del", "dev", "wan0", "root"]]);
  });

  it("ingress: a u32 match-all filter redirecting to the ifb", () => {
    expect(redirectCommand("wan0", "ifb0123", M)).toEqual(["filter", "add", "dev", "wan0", "ingress", "prio", "20051", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "ifb0123"]);
  });

  it("reads nslab's qdiscs back, netem included, and tells the kernel default and others' qdiscs apart", () => {
    const qdiscs = [
      { kind: "tbf", handle: "4e53:", dev: "a", root: true, options: { rate: 1250000, burst: 32767, lat: 100000 } },
      { kind: "noqueue", handle: "0:", dev: "b", root: true, options: {} },
      { kind: "htb", handle: "1:", dev: "c", root: true, options: {} },
      { kind: "tbf", handle: "5000:", dev: "e", root: true, options: { rate: 1250000, burst: 32767 } },
      { kind: "netem", handle: "4e53:", dev: "d", root: true, options: { limit: 1000, delay: { delay: 0.04, jitter: 0.005, correlation: 0 } } },
      { kind: "tbf", handle: "71ac:", dev: "d", parent: "4e53:1", options: { rate: 250000, burst: 16383 } },
    ];
    expect(parseShaping(qdiscs, "a", M)).toEqual({ root: "tbf", rate: 10e6, burst: 32767 });
    expect(parseShaping(qdiscs, "b", M)).toEqual({});
    expect(parseShaping(qdiscs, "c", M)).toEqual({ foreign: "htb 1:" });
    expect(parseShaping(qdiscs, "e", M)).toEqual({ foreign: "tbf 5000:" }); // another resource's
    expect(parseShaping(qdiscs, "d", M)).toEqual({ root: "netem", child: true, rate: 2e6, burst: 16383, delay: 40_000, jitter: 5_000 });
  });
});

describe("nft loss scripts", () => {
  it("netdev chains per direction, the inet and bridge prerouting chains behind an ifb, atomic rewrites and deletes", () => {
    expect(lossScript("T", "wan0", { egress: 0.05 }, false, { netdev: false, inet: false, bridge: false })).toBe(
      [
        "add table netdev T",
        'add chain netdev T loss_out { type filter hook egress device "wan0" priority 0; policy accept; }',
        "add rule netdev T loss_out numgen random mod 1000000 < 50000 counter drop",
        "",
      ].join("\n"),
    );
    expect(lossScript("T", "wan0", { egress: 0.05, ingress: 0.000001 }, true, { netdev: true, inet: false, bridge: false })).toBe(
      [
        "delete table netdev T",
        "add table netdev T",
        'add chain netdev T loss_out { type filter hook egress device "wan0" priority 0; policy accept; }',
        "add rule netdev T loss_out numgen random mod 1000000 < 50000 counter drop",
        "add table inet T",
        "add chain inet T loss_in { type filter hook prerouting priority raw; policy accept; }",
        'add rule inet T loss_in iifname "wan0" numgen random mod 1000000 < 1 counter drop',
        "add table bridge T",
        "add chain bridge T loss_in { type filter hook prerouting priority -300; policy accept; }",
        'add rule bridge T loss_in iifname "wan0" numgen random mod 1000000 < 1 counter drop',
        "",
      ].join("\n"),
    );
    expect(lossScript("T", "wan0", { egress: 0 }, false, { netdev: true, inet: true, bridge: true })).toBe("delete table netdev T\ndelete table inet T\ndelete table bridge T\n");
    expect(lossScript("T", "wan0", {}, false, { netdev: false, inet: false, bridge: false })).toBeUndefined();
    // A loss of 1 drops everything (numgen cannot be compared with < 1000000).
    expect(lossScript("T", "wan0", { egress: 1 }, false, { netdev: false, inet: false, bridge: false })).toContain("add rule netdev T loss_out counter drop\n");
  });

  it("reads the loss back only from a rule nslab would write", () => {
    const rule = (chain: string, expr: unknown[]) => ({ rule: { chain, expr } });
    const numgen = (k: number) => ({ match: { op: "<", left: { numgen: { mode: "random", mod: 1000000, offset: 0 } }, right: k } });
    const netdev = {
      nftables: [
        { chain: { name: "loss_out", hook: "egress" } },
        rule("loss_out", [numgen(200000), { counter: { packets: 1, bytes: 2 } }, { drop: null }]),
        { chain: { name: "loss_in", hook: "ingress" } },
        rule("loss_in", [numgen(10), { accept: null }]),
      ],
    };
    const inet = { nftables: [{ chain: { name: "loss_in", hook: "prerouting" } }, rule("loss_in", [{ match: { op: "==", left: { meta: { key: "iifname" } }, right: "wan0" } }, numgen(5000), { drop: null }])] };
    const bridge = { nftables: [{ chain: { name: "loss_in", hook: "prerouting" } }, rule("loss_in", [{ match: { op: "==", left: { meta: { key: "iifname" } }, right: "wan0" } }, numgen(7000), { drop: null }])] };
    expect(parseLoss({ netdev, inet, bridge }, "wan0", false, false)).toEqual({ egress: 0.2 });
    expect(parseLoss({ netdev, inet, bridge }, "wan0", true, false)).toEqual({ egress: 0.2, ingress: 0.005 });
    // A bridge port's frames reach only the bridge family's hook.
    expect(parseLoss({ netdev, inet, bridge }, "wan0", true, true)).toEqual({ egress: 0.2, ingress: 0.007 });
    expect(parseLoss({ netdev, inet }, "wan0", true, true)).toEqual({ egress: 0.2 });
    expect(parseLoss({ netdev: { nftables: [{ chain: { name: "loss_out", hook: "egress" } }] } }, "wan0", false, false)).toEqual({}); // flushed
    expect(parseLoss({ netdev: { nftables: [{ chain: { name: "loss_out", hook: "egress" } }, rule("loss_out", [{ counter: { packets: 0, bytes: 0 } }, { drop: null }])] } }, "wan0", false, false)).toEqual({ egress: 1 });
  });
});
