/**
 * LinkImpairment: rate, burst, loss, delay and jitter of one interface, per direction,
 * changed in place and drift-checked. What each field uses in the kernel:
 *
 * - egress rate/burst: a `tbf` root qdisc on the device, with a handle derived from
 *   the owner's hash (4000: to 7fff:; see {@link marksOf}): the handle is the mark;
 * - ingress rate/burst: an nslab-owned `ifb` device in the same namespace (named from
 *   the owner's hash, alias = nslab's tag), an `ingress` qdisc on the device with a
 *   `u32` match-all filter (priority derived from the owner's hash) whose `mirred` action redirects every frame to
 *   the ifb, and a `tbf` root qdisc on the ifb;
 * - loss (both directions): an nslab-owned nftables table `netdev nslab_imp_<hash>`
 *   with a base chain on the device's `ingress` and/or `egress` hook holding one rule
 *   `numgen random mod 1000000 < K counter drop`: loss is applied in steps of 1e-6.
 *   Frames redirected to an ifb skip the netdev ingress hook (the kernel's
 *   skip_classify path), so when ingress also has a rate or delay, ingress loss moves to
 *   a table `inet nslab_imp_<hash>`: a `prerouting` chain (priority raw) with
 *   `iifname DEV numgen random ... drop`, which drops IPv4 and IPv6 packets only (routed
 *   or delivered locally), and to a table `bridge nslab_imp_<hash>` with the same rule on
 *   the bridge family's `prerouting` hook, for a device that is a bridge port: the IP
 *   layer sees a port's frames as the bridge's (`iifname` is the bridge, with or without
 *   br_netfilter), so only the bridge hook tells them apart (every frame, bridged or
 *   delivered locally, ARP too, as the netdev hook would). Both are written whatever
 *   the device is now, so that it may become a port, or stop being one, later;
 *   The egress hook drops before the qdisc: a forwarded packet or a kernel reply is lost
 *   silently, while a local application's own send of a dropped packet fails with
 *   ENOBUFS (TCP takes it as congestion, ping sends again, UDP ignores it unless it asked
 *   for IP_RECVERR);
 * - delay/jitter: a `netem` root qdisc (egress on the device, ingress on the ifb),
 *   with the tbf as its child when a rate is set too. Kernels without netem (no
 *   sch_netem) are detected before anything is written, and create/update fail then.
 *
 * Every change is in place: `tc qdisc replace`, `tc filter add/del` and atomic
 * `nft -f -` scripts; the interface itself is never touched (same ifindex, no flap).
 */
import { mayHaveRun, NslabError } from "./errors";
import * as kernel from "./kernel";
import { describe } from "./kernel";
import { HostArgs, machineKey } from "./host";
import { freshLink, LiveLink, requireNamespace } from "./link";
import { ownerLabel, recorded as ownedRecords, stackOf } from "./owned";
import { CommonInputs, compact, diffFields, FieldRule, LinkDependentInputs, LINKS_RULE, linksInput, ownerTag, resourceNameOf, ResourceKind } from "./resource";
import { Checker, isUnknown } from "./validate";

// ---- inputs ---------------------------------------------------------------------------------

/** One direction's impairments, normalised (canonical unit strings). */
export interface ImpairmentDirection {
  /** Rate in bits per second with a unit, canonical ("10mbit"). */
  rate?: string;
  /** tbf bucket size in bytes with a unit, canonical ("32kb" = 32768 bytes). */
  burst?: string;
  /** Fraction of packets dropped, 0..1, in steps of {@link LOSS_STEP}. */
  loss?: number;
  /** Added delay, canonical ("40ms"). */
  delay?: string;
  /** Delay variation (+/-), canonical ("5ms"); needs delay. */
  jitter?: string;
}

export interface ImpairmentInputs extends CommonInputs, LinkDependentInputs {
  device: string;
  namespace?: string;
  egress?: ImpairmentDirection;
  ingress?: ImpairmentDirection;
}

/**
 * Outputs: the inputs plus the helper objects nslab made. Those are null, not absent,
 * when there are none: an output a resource's state lacks is unknown to a preview, so a
 * program exporting it would show a change on every no-change `preview --refresh`.
 */
export interface ImpairmentOutputs extends ImpairmentInputs {
  /** The ifb device nslab made for ingress rate/delay, or null. */
  ifb?: string | null;
  /** The nftables table (family netdev, and inet and bridge for ingress loss behind an ifb) holding the loss rules, or null. */
  lossTable?: string | null;
  /**
   * The device's ingress (or clsact) qdisc was there before this resource redirected its
   * ingress: someone else's, so removing the redirect leaves it (only nslab's own filter
   * goes). Unset: nslab added it, and removes it with its filter when no other is left.
   */
  ingressQdiscFound?: true;
}

const DIRECTIONS = ["egress", "ingress"] as const;
type DirectionName = (typeof DIRECTIONS)[number];
const FIELDS = ["rate", "burst", "loss", "delay", "jitter"] as const;

/** Loss is applied as `numgen random mod LOSS_MODULUS < K`: a resolution of 1e-6. */
export const LOSS_MODULUS = 1_000_000;
export const LOSS_STEP = 1 / LOSS_MODULUS;
/**
 * tbf releases at most one bucket per timer tick, so the classic rule (tc-tbf(8)) is
 * burst >= rate / HZ. check is pure and cannot read the kernel's HZ: it assumes 250,
 * the most common distribution setting (100 would ask for 2.5 times more).
 */
export const TBF_HZ = 250;
/** A bucket must hold one full frame of a 1500-byte MTU (1500 + 14 bytes of Ethernet header). */
export const MIN_BURST_BYTES = 1514;
/** Burst used when only a rate is given: 32 KiB, or rate / HZ when that is larger. */
export const DEFAULT_BURST_BYTES = 32 * 1024;
/** tc takes a burst as a 32-bit byte count. */
export const MAX_BURST_BYTES = 4294967295;
/**
 * The most traffic a tbf bucket holds, in seconds at its rate: the kernel keeps it as a
 * 32-bit count of its clock's ticks, and a larger one wraps (a burst of 1e9 bytes at
 * 10mbit came back as 312805232). 137.4 s measured; 137 used.
 */
export const MAX_BURST_SECONDS = 137;
/** tbf queue: how long a packet may wait for tokens before it is dropped. */
export const TBF_LATENCY = "100ms";
/** How one resource's qdiscs and filter are told apart from everyone else's (qdiscs carry no alias or comment). */
export interface Marks {
  /** Handle of its root qdisc (tbf or netem) on the device and on its ifb: 4000: to 7fff:. */
  root: string;
  /** Handle of the tbf under a netem root: 4000: to 7fff:, never the root's. */
  child: string;
  /** Priority of its ingress redirect filter (decimal, 16384 to 32767). */
  prio: string;
}

/**
 * The marks of the resource owned by `owner`, from its hash: below the kernel's own
 * automatic handles (8000: and up) and above the small ones people type (1:, 10:).
 */
export function marksOf(owner: string): Marks {
  const h = parseInt(hashOf(owner).slice(0, 4), 16) & 0x3fff;
  return { root: `${(0x4000 + h).toString(16)}:`, child: `${(0x7fff - h).toString(16)}:`, prio: String(0x4000 + h) };
}

const RATE_UNITS: Record<string, number> = {
  bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12,
  kibit: 1024, mibit: 1024 ** 2, gibit: 1024 ** 3, tibit: 1024 ** 4,
  bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9, tbps: 8e12,
  kibps: 8 * 1024, mibps: 8 * 1024 ** 2, gibps: 8 * 1024 ** 3, tibps: 8 * 1024 ** 4,
};
/** Sizes as tc reads them: k/kb = 1024 bytes. */
const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };
const TIME_UNITS: Record<string, number> = { s: 1e6, sec: 1e6, secs: 1e6, ms: 1e3, msec: 1e3, msecs: 1e3, us: 1, usec: 1, usecs: 1 };

/** "10mbit" -> [10, "mbit"]; undefined when it is not a number followed by a unit. */
function splitUnit(text: string): [number, string] | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/.exec(text);
  return m ? [Number(m[1]), m[2].toLowerCase()] : undefined;
}

/** A rate in bits per second, or a reason it is not one. */
export function parseRate(text: string): number | string {
  const parts = splitUnit(text);
  if (!parts || !(parts[1] in RATE_UNITS)) return `"${text}" is not a rate; write a number and one of tc's units: ${Object.keys(RATE_UNITS).join(", ")} (bps = bytes per second), e.g. "10mbit".`;
  const bits = Math.round(parts[0] * RATE_UNITS[parts[1]]);
  if (bits < 8) return `"${text}" is below the smallest rate, 8bit (1 byte per second).`;
  if (bits % 8 !== 0) return `"${text}" is not a whole number of bytes per second (tbf counts bytes); use a multiple of 8bit.`;
  return bits;
}

/** Bits per second as the largest decimal unit that divides it: 10000000 -> "10mbit". */
export function formatRate(bits: number): string {
  for (const [unit, scale] of [["tbit", 1e12], ["gbit", 1e9], ["mbit", 1e6], ["kbit", 1e3]] as const) if (bits % scale === 0) return `${bits / scale}${unit}`;
  return `${bits}bit`;
}

/** A size in bytes, or a reason it is not one. */
export function parseSize(text: string): number | string {
  const parts = splitUnit(text);
  if (!parts || !(parts[1] in SIZE_UNITS)) return `"${text}" is not a size; write a number and one of b, kb, mb, gb (kb = 1024 bytes, as tc reads it), e.g. "32kb".`;
  const bytes = parts[0] * SIZE_UNITS[parts[1]];
  if (!Number.isInteger(bytes)) return `"${text}" is not a whole number of bytes.`;
  return bytes;
}

/** Bytes as the largest binary unit that divides it: 32768 -> "32kb". */
export function formatSize(bytes: number): string {
  for (const [unit, scale] of [["gb", 1024 ** 3], ["mb", 1024 ** 2], ["kb", 1024]] as const) if (bytes % scale === 0) return `${bytes / scale}${unit}`;
  return `${bytes}b`;
}

/** A duration in microseconds, or a reason it is not one. */
export function parseTime(text: string): number | string {
  const parts = splitUnit(text);
  if (!parts || !(parts[1] in TIME_UNITS)) return `"${text}" is not a duration; write a number and one of s, ms, us, e.g. "40ms".`;
  const us = parts[0] * TIME_UNITS[parts[1]];
  if (!Number.isInteger(us)) return `"${text}" is not a whole number of microseconds.`;
  return us;
}

/** Microseconds as the largest unit that divides it: 40000 -> "40ms". */
export function formatTime(us: number): string {
  if (us % 1e6 === 0) return `${us / 1e6}s`;
  if (us % 1e3 === 0) return `${us / 1e3}ms`;
  return `${us}us`;
}

/** The smallest burst tbf can shape `bits` per second with: rate / HZ, and one full frame. */
export function minimumBurst(bits: number): number {
  return Math.max(Math.ceil(bits / 8 / TBF_HZ), MIN_BURST_BYTES);
}

/** The burst used when none is given: 32 KiB, or the minimum rounded up to KiB when larger. */
export function defaultBurst(bits: number): number {
  return Math.max(DEFAULT_BURST_BYTES, Math.ceil(minimumBurst(bits) / 1024) * 1024);
}

function checkDirection(c: Checker, raw: unknown, name: DirectionName): ImpairmentDirection | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (isUnknown(raw)) return raw as never;
  if (typeof raw !== "object" || Array.isArray(raw)) {
    c.fail(name, `${name} must be an object such as { rate: "10mbit", loss: 0.01 }, got ${JSON.stringify(raw)}.`);
    return undefined;
  }
  const d = raw as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!(FIELDS as readonly string[]).includes(key)) c.fail(`${name}.${key}`, `${name}.${key} is not an impairment; the fields are ${FIELDS.join(", ")}.`);
  }
  const unit = <T>(prop: (typeof FIELDS)[number], parse: (t: string) => T | string, format: (v: T) => string): [string | undefined, T | undefined] => {
    const text = c.string(d[prop], `${name}.${prop}`, false);
    if (text === undefined || isUnknown(text)) return [text, undefined];
    const value = parse(text);
    if (typeof value === "string") return [c.fail(`${name}.${prop}`, `${name}.${prop} ${value}`), undefined];
    return [format(value), value];
  };
  const [rate, bits] = unit("rate", parseRate, formatRate);
  let [burst, bytes] = unit("burst", parseSize, formatSize);
  const [delay, delayUs] = unit("delay", parseTime, formatTime);
  const [jitter, jitterUs] = unit("jitter", parseTime, formatTime);
  // netem reads a delay (or jitter) of 0 back as none: it would never verify.
  for (const [field, us] of [["delay", delayUs], ["jitter", jitterUs]] as const) {
    if (us === 0) c.fail(`${name}.${field}`, `${name}.${field} 0 adds nothing; leave ${field} out for none.`);
  }
  let loss: number | undefined;
  if (isUnknown(d.loss)) loss = d.loss as never;
  else if (d.loss !== undefined && d.loss !== null) {
    if (typeof d.loss === "string" && d.loss.trim() !== "" && Number.isFinite(Number(d.loss))) {
      // A number that arrived as text (pulumi config set --path, a YAML value in quotes).
      c.fail(`${name}.loss`, `${name}.loss must be a number, got the string ${JSON.stringify(d.loss)}: pass Number(...) of it (a value from pulumi config is text unless set with --path and no quotes, or read with config.requireNumber).`);
    } else if (typeof d.loss !== "number" || !Number.isFinite(d.loss) || d.loss < 0 || d.loss > 1) {
      c.fail(`${name}.loss`, `${name}.loss must be a fraction from 0 to 1 (0.05 drops 5% of packets), got ${JSON.stringify(d.loss)}.`);
    } else if (Math.abs(d.loss * LOSS_MODULUS - Math.round(d.loss * LOSS_MODULUS)) > 1e-6) {
      c.fail(`${name}.loss`, `${name}.loss ${d.loss} is finer than nslab's resolution of ${LOSS_STEP} (nftables numgen random mod ${LOSS_MODULUS}); round it, e.g. to ${Math.round(d.loss * LOSS_MODULUS) / LOSS_MODULUS}.`);
    } else loss = d.loss;
  }
  if (burst !== undefined && !isUnknown(burst) && rate === undefined) {
    c.fail(`${name}.burst`, `${name}.burst is the tbf bucket of a rate limit; set ${name}.rate too, or remove burst.`);
  }
  if (bits !== undefined) {
    const largest = Math.min(MAX_BURST_BYTES, Math.floor((MAX_BURST_SECONDS * bits) / 8));
    // The default, within what the bucket holds at this rate (a slow rate holds less).
    if (bytes === undefined && burst === undefined) bytes = Math.max(minimumBurst(bits), Math.min(defaultBurst(bits), largest));
    if (minimumBurst(bits) > largest) {
      c.fail(
        `${name}.rate`,
        minimumBurst(bits) > MAX_BURST_BYTES
          ? `${name}.rate ${rate} is more than tbf can shape: it needs a burst of at least ${minimumBurst(bits)} bytes and holds at most ${MAX_BURST_BYTES}; the largest rate is ${formatRate(Math.floor((MAX_BURST_BYTES * 8 * TBF_HZ) / 1e9) * 1e9)}.`
          : `${name}.rate ${rate} is less than tbf can shape: one ${MIN_BURST_BYTES}-byte frame is more than ${MAX_BURST_SECONDS} s of traffic at that rate; the smallest rate is ${formatRate(Math.ceil((MIN_BURST_BYTES * 8) / MAX_BURST_SECONDS / 8) * 8)}.`,
      );
    } else if (bytes !== undefined && bytes < minimumBurst(bits)) {
      c.fail(
        `${name}.burst`,
        `${name}.burst ${burst} (${bytes} bytes) is too small for rate ${rate}: tbf needs at least ${minimumBurst(bits)} bytes (rate / HZ with HZ = ${TBF_HZ} assumed, and at least one ${MIN_BURST_BYTES}-byte frame); raise it to "${formatSize(Math.ceil(minimumBurst(bits) / 1024) * 1024)}" or remove burst for the default.`,
      );
    } else if (bytes !== undefined && bytes > largest) {
      c.fail(
        `${name}.burst`,
        `${name}.burst ${burst ?? formatSize(bytes)} (${bytes} bytes) is more than tbf holds at rate ${rate} (at most ${largest} bytes: ${MAX_BURST_BYTES} bytes, and ${MAX_BURST_SECONDS} s of traffic at the rate); lower it to "${formatSize(Math.floor(largest / 1024) * 1024)}" or remove burst for the default.`,
      );
    }
    if (bytes !== undefined && burst === undefined) burst = formatSize(bytes);
  }
  if (jitter !== undefined && delay === undefined) c.fail(`${name}.jitter`, `${name}.jitter varies a delay; set ${name}.delay too, or remove jitter.`);
  return compact({ rate, burst, loss, delay, jitter });
}

// ---- names and commands (pure) --------------------------------------------------------------

const hashOf = (owner: string) => ownerTag(owner).slice("nslab:".length);
/** The ifb nslab makes for the resource's ingress shaping: "ifb" + 12 hex digits of the owner hash. */
export const ifbName = (owner: string) => `ifb${hashOf(owner).slice(0, 12)}`;
/** The nftables table (family netdev) of the resource's loss rules. */
export const lossTable = (owner: string) => `nslab_imp_${hashOf(owner)}`;
const LOSS_CHAIN: Record<DirectionName, string> = { egress: "loss_out", ingress: "loss_in" };

/** What shapes one direction, in kernel units (bits/s, bytes, microseconds). */
export interface Shaping {
  rate?: number;
  burst?: number;
  delay?: number;
  jitter?: number;
}

/** The qdiscs nslab has on one device (its root and the tbf under a netem root). */
export interface LiveShaping extends Shaping {
  /** Kind of the resource's root qdisc (its handle, {@link Marks}), if there is one. */
  root?: "tbf" | "netem";
  /** True when a tbf of nslab's sits under its netem root. */
  child?: boolean;
  /** A root qdisc this resource did not make ("htb 1:"), if any; the kernel default (handle 0:) is none. */
  foreign?: string;
}

/** The kernel numbers of a normalised direction. */
export function shapingOf(d: ImpairmentDirection | undefined): Shaping {
  const num = (v: number | string) => (typeof v === "number" ? v : undefined);
  return compact({
    rate: d?.rate ? num(parseRate(d.rate)) : undefined,
    burst: d?.burst ? num(parseSize(d.burst)) : undefined,
    delay: d?.delay ? num(parseTime(d.delay)) : undefined,
    jitter: d?.jitter ? num(parseTime(d.jitter)) : undefined,
  });
}

const tbfArgs = (s: Shaping) => ["tbf", "rate", `${s.rate}bit`, "burst", String(s.burst), "latency", TBF_LATENCY];

/**
 * The bytes tc reports for a tbf burst, against what was asked. The kernel keeps the
 * burst as the time it takes at the rate and reports it in 64 ns ticks, cut down; tc
 * before iproute2 6.15 turns those into whole microseconds, cut down again, and back
 * into bytes. So a burst reads up to a microsecond and a tick of the rate short (at
 * 50mbit 32768 comes back as 32762, at 1380mbit 690176 as 690000), and a byte or two
 * either way from rounding.
 */
export function sameBurst(asked: number, reported: number, bits: number): boolean {
  return Math.abs(asked - reported) <= Math.ceil((bits / 8) * (1e-6 + 64e-9)) + 2;
}

function sameShaping(want: Shaping, live: LiveShaping): boolean {
  const burstOk = want.burst === undefined ? live.burst === undefined : live.burst !== undefined && sameBurst(want.burst, live.burst, want.rate ?? 0);
  return want.rate === live.rate && burstOk && want.delay === live.delay && (want.jitter ?? 0) === (live.jitter ?? 0) && !live.foreign;
}

/**
 * tc commands that turn the device's root qdiscs from `live` into `want`:
 * - rate only:  tc qdisc replace dev D root handle ROOT tbf rate R burst B latency 100ms
 * - delay only: tc qdisc replace dev D root handle ROOT netem delay D [J]
 * - both:       the netem root, and tc qdisc replace dev D parent ROOT1 handle CHILD tbf ...
 * - neither:    tc qdisc del dev D root (only when the root is the resource's; the kernel
 *   then puts its default qdisc back).
 * A root of another kind (or a netem gaining or losing its tbf) is deleted first,
 * since the kernel refuses to replace a qdisc by one of another kind under one handle.
 */
export function shapingCommands(dev: string, want: Shaping, live: LiveShaping, marks: Marks): string[][] {
  const kind = want.delay !== undefined ? "netem" : want.rate !== undefined ? "tbf" : undefined;
  // Nothing asked: only a root of nslab's goes; someone else's is left alone.
  if (!kind) return live.root ? [["qdisc", "del", "dev", dev, "root"]] : [];
  if (sameShaping(want, live)) return [];
  const commands: string[][] = [];
  const restructure = live.root !== kind || (kind === "netem" && !!live.child !== (want.rate !== undefined));
  if (live.root && restructure) commands.push(["qdisc", "del", "dev", dev, "root"]);
  if (kind === "netem") {
    const jitter = want.jitter ? [formatTime(want.jitter)] : [];
    commands.push(["qdisc", "replace", "dev", dev, "root", "handle", marks.root, "netem", "delay", formatTime(want.delay!), ...jitter]);
    if (want.rate !== undefined) commands.push(["qdisc", "replace", "dev", dev, "parent", `${marks.root}1`, "handle", marks.child, ...tbfArgs(want)]);
  } else if (kind === "tbf") {
    commands.push(["qdisc", "replace", "dev", dev, "root", "handle", marks.root, ...tbfArgs(want)]);
  }
  return commands;
}

/** The ingress filter that sends every frame arriving on `dev` to the ifb. */
export function redirectCommand(dev: string, ifb: string, marks: Marks): string[] {
  return ["filter", "add", "dev", dev, "ingress", "prio", marks.prio, "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb];
}

/** Which of the resource's loss tables exist: families netdev, inet and bridge. */
export interface LossTables {
  netdev: boolean;
  inet: boolean;
  bridge: boolean;
}

// A loss of 1 drops everything (numgen's values stop at LOSS_MODULUS - 1: `< 1000000` is refused).
const lossRule = (loss: number) => (loss >= 1 ? "counter drop" : `numgen random mod ${LOSS_MODULUS} < ${Math.round(loss * LOSS_MODULUS)} counter drop`);

/**
 * The atomic nft script that (re)writes the loss tables, or deletes them when no loss
 * is left; undefined when there is nothing to do. `redirected`: ingress goes through
 * the ifb, so ingress loss goes to the inet prerouting chain (see the file comment).
 */
export function lossScript(table: string, dev: string, loss: Partial<Record<DirectionName, number>>, redirected: boolean, existing: LossTables): string | undefined {
  const lines: string[] = [];
  for (const family of ["netdev", "inet", "bridge"] as const) if (existing[family]) lines.push(`delete table ${family} ${table}`);
  const netdev = DIRECTIONS.filter((d) => (loss[d] ?? 0) > 0 && !(d === "ingress" && redirected));
  if (netdev.length) {
    lines.push(`add table netdev ${table}`);
    for (const d of netdev) {
      lines.push(`add chain netdev ${table} ${LOSS_CHAIN[d]} { type filter hook ${d} device "${dev}" priority 0; policy accept; }`);
      lines.push(`add rule netdev ${table} ${LOSS_CHAIN[d]} ${lossRule(loss[d]!)}`);
    }
  }
  if ((loss.ingress ?? 0) > 0 && redirected) {
    lines.push(`add table inet ${table}`);
    lines.push(`add chain inet ${table} ${LOSS_CHAIN.ingress} { type filter hook prerouting priority raw; policy accept; }`);
    lines.push(`add rule inet ${table} ${LOSS_CHAIN.ingress} iifname "${dev}" ${lossRule(loss.ingress!)}`);
    // A bridge port's frames (bridged, or passed up as the bridge's): see the file comment.
    lines.push(`add table bridge ${table}`);
    lines.push(`add chain bridge ${table} ${LOSS_CHAIN.ingress} { type filter hook prerouting priority -300; policy accept; }`);
    lines.push(`add rule bridge ${table} ${LOSS_CHAIN.ingress} iifname "${dev}" ${lossRule(loss.ingress!)}`);
  }
  return lines.length ? lines.join("\n") + "\n" : undefined;
}

/** Kernel numbers back to canonical strings; the stated text is kept when it means the same. */
function liveDirection(stated: ImpairmentDirection | undefined, live: LiveShaping, loss: number | undefined): ImpairmentDirection | undefined {
  const want = shapingOf(stated);
  const rate = live.rate === undefined ? undefined : live.rate === want.rate ? stated!.rate : formatRate(live.rate);
  const burst =
    live.burst === undefined || live.rate === undefined
      ? undefined
      : want.burst !== undefined && sameBurst(want.burst, live.burst, live.rate)
        ? stated!.burst
        : formatSize(live.burst);
  const delay = live.delay === undefined ? undefined : live.delay === want.delay ? stated!.delay : formatTime(live.delay);
  const jitter = !live.jitter ? undefined : live.jitter === want.jitter ? stated!.jitter : formatTime(live.jitter);
  const lossOut = loss === undefined ? (stated?.loss === 0 ? 0 : undefined) : stated?.loss !== undefined && Math.round(stated.loss * LOSS_MODULUS) === Math.round(loss * LOSS_MODULUS) ? stated.loss : loss;
  const out = compact({ rate, burst, loss: lossOut, delay, jitter });
  return stated === undefined && Object.keys(out).length === 0 ? undefined : out;
}

// ---- reading the kernel ---------------------------------------------------------------------

interface QdiscJson {
  kind: string;
  handle: string;
  dev?: string;
  root?: boolean;
  parent?: string;
  options?: Record<string, any>;
}

interface FilterJson {
  pref?: number;
  kind?: string;
  options?: { actions?: { kind?: string; mirred_action?: string; to_dev?: string }[] };
}

/** nslab's qdiscs on one device, from `tc -json qdisc show` of its namespace. */
export function parseShaping(qdiscs: QdiscJson[], dev: string, marks: Marks): LiveShaping {
  const mine = qdiscs.filter((q) => q.dev === dev);
  const root = mine.find((q) => q.root);
  if (!root) return {};
  if (root.handle !== marks.root) return root.handle === "0:" ? {} : { foreign: `${root.kind} ${root.handle}` };
  const tbf = (q: QdiscJson): Shaping => ({ rate: Number(q.options?.rate) * 8, burst: Number(q.options?.burst) });
  if (root.kind === "tbf") return { root: "tbf", ...tbf(root) };
  if (root.kind === "netem") {
    const seconds = (v: unknown) => (typeof v === "number" && v > 0 ? Math.round(v * 1e6) : undefined);
    const child = mine.find((q) => q.parent === `${marks.root}1` && q.handle === marks.child && q.kind === "tbf");
    return compact({ root: "netem" as const, child: !!child, ...(child ? tbf(child) : {}), delay: seconds(root.options?.delay?.delay), jitter: seconds(root.options?.delay?.jitter) });
  }
  return { foreign: `${root.kind} ${root.handle}` };
}

type NftJson = { nftables: Record<string, any>[] };

/** The loss of one chain's single rule `[iifname DEV] numgen random mod M < K [counter] drop`; undefined otherwise. */
function chainLoss(nft: NftJson | undefined, chainName: string, hook: string, dev: string | undefined): number | undefined {
  const chain = nft?.nftables.find((x) => x.chain?.name === chainName)?.chain;
  const rules = (nft?.nftables ?? []).filter((x) => x.rule?.chain === chainName).map((x) => x.rule);
  if (!chain || chain.hook !== hook || rules.length !== 1) return undefined;
  let exprs = (rules[0].expr as Record<string, any>[]).filter((e) => !("counter" in e));
  if (dev !== undefined) {
    const iif = exprs[0]?.match;
    if (!(iif?.op === "==" && iif.left?.meta?.key === "iifname" && iif.right === dev)) return undefined;
    exprs = exprs.slice(1);
  }
  if (exprs.length === 1 && "drop" in exprs[0]) return 1;
  const m = exprs[0]?.match;
  if (exprs.length === 2 && "drop" in exprs[1] && m?.op === "<" && m.left?.numgen?.mode === "random" && m.left.numgen.mod === LOSS_MODULUS && typeof m.right === "number") {
    return m.right / LOSS_MODULUS;
  }
  return undefined;
}

/**
 * The loss each direction really gets, from `nft -j list table netdev|inet|bridge T`:
 * egress from the netdev egress chain; ingress from the netdev ingress chain, or, when
 * ingress is redirected to the ifb (the netdev hook is skipped then), from the bridge
 * prerouting chain for a bridge `port` and from the inet one for any other device.
 */
export function parseLoss(
  tables: { netdev?: NftJson; inet?: NftJson; bridge?: NftJson },
  dev: string,
  redirected: boolean,
  port: boolean,
): Partial<Record<DirectionName, number>> {
  return compact({
    egress: chainLoss(tables.netdev, LOSS_CHAIN.egress, "egress", undefined),
    ingress: redirected ? chainLoss(port ? tables.bridge : tables.inet, LOSS_CHAIN.ingress, "prerouting", dev) : chainLoss(tables.netdev, LOSS_CHAIN.ingress, "ingress", undefined),
  });
}

interface LiveState {
  egress: LiveShaping;
  ingress: LiveShaping;
  /** nslab's ifb, when it exists with nslab's alias. */
  ifb?: LiveLink;
  /** nslab's ifb as a run killed between `ip link add` and its alias left it: no alias, this resource's intent record. */
  ifbUnmarked?: LiveLink;
  /** A device with the ifb's name that is neither of those (someone's, or another kind). */
  ifbOther?: LiveLink;
  /** The device's ingress or clsact qdisc, if any. */
  ingressQdisc?: "ingress" | "clsact";
  /** nslab's redirect filter (to its ifb) is on the device. */
  redirect: boolean;
  /** A filter sits at nslab's priority (its redirect, or one changed by hand). */
  ourPrio: boolean;
  /** Any filter is on the device's ingress besides nslab's. */
  otherFilters: boolean;
  loss: Partial<Record<DirectionName, number>>;
  tables: LossTables;
}

const subject = (i: { device: string; namespace?: string }) => `impairment of ${describe("interface", i.device, i.namespace)}`;

async function readState(i: ImpairmentInputs): Promise<LiveState> {
  const s = subject(i);
  const ifb = ifbName(i.__owner);
  const qdiscs = await kernel.tcJson<QdiscJson[]>(["qdisc", "show"], i.namespace, s);
  const ingressQdisc = qdiscs.find((q) => q.dev === i.device && (q.kind === "ingress" || q.kind === "clsact"))?.kind as LiveState["ingressQdisc"];
  const filters = ingressQdisc ? await kernel.tcJson<FilterJson[]>(["filter", "show", "dev", i.device, "ingress"], i.namespace, s) : [];
  const redirects = (f: FilterJson) => (f.options?.actions ?? []).some((a) => a.kind === "mirred" && a.to_dev === ifb);
  const marks = marksOf(i.__owner);
  const ours = filters.filter((f) => String(f.pref) === marks.prio);
  const ifbLink = await freshLink(ifb, i.namespace);
  const ownIfb = ifbLink && ifbLink.kind === "ifb" && ifbLink.alias === ownerTag(i.__owner) ? ifbLink : undefined;
  const unmarked = ifbLink && !ownIfb && ifbLink.kind === "ifb" && !ifbLink.alias && (await kernel.intended(i.namespace, `link-${ifb}`)) === ownerTag(i.__owner) ? ifbLink : undefined;
  const table = async (family: string): Promise<NftJson | undefined> => {
    try {
      return await kernel.nftJson<NftJson>(["list", "table", family, lossTable(i.__owner)], i.namespace, s);
    } catch (err) {
      if (err instanceof NslabError && err.kind === "NotFound") return undefined;
      throw err;
    }
  };
  const [netdev, inet, bridge] = [await table("netdev"), await table("inet"), await table("bridge")];
  const redirect = ours.some(redirects);
  // Which chain applies to redirected ingress: looked up only then.
  const master = redirect ? (await freshLink(i.device, i.namespace))?.master : undefined;
  const port = master !== undefined && (await freshLink(master, i.namespace))?.kind === "bridge";
  return {
    egress: parseShaping(qdiscs, i.device, marks),
    ingress: ownIfb && redirect ? parseShaping(qdiscs, ifb, marks) : {},
    ifb: ownIfb,
    ifbUnmarked: unmarked,
    ifbOther: ifbLink && !ownIfb && !unmarked ? ifbLink : undefined,
    ingressQdisc,
    redirect,
    ourPrio: ours.length > 0,
    otherFilters: filters.some((f) => String(f.pref) !== marks.prio),
    loss: parseLoss({ netdev, inet, bridge }, i.device, redirect, port),
    tables: { netdev: !!netdev, inet: !!inet, bridge: !!bridge },
  };
}

/**
 * The inputs as the kernel has them now, in the words of `stated` where they agree. An
 * ifb set down (by hand) drops every frame redirected to it: its shaping counts as
 * missing (drift, which update repairs: ensureIfb sets it up).
 */
function liveInputs(stated: ImpairmentInputs, live: LiveState): ImpairmentInputs {
  return compact({
    ...stated,
    egress: liveDirection(stated.egress, live.egress, live.loss.egress),
    ingress: liveDirection(stated.ingress, live.ifb?.up === false ? {} : live.ingress, live.loss.ingress),
  });
}

function outputsOf(i: ImpairmentInputs, live: LiveState | undefined, ingressQdiscFound: true | undefined): ImpairmentOutputs {
  const tables = live?.tables.netdev || live?.tables.inet || live?.tables.bridge;
  return compact({ ...i, ifb: live?.ifb?.name ?? null, lossTable: tables ? lossTable(i.__owner) : null, ingressQdiscFound });
}

/** The recorded outputs without what outputsOf adds: the inputs, and whether the ingress qdisc was found. */
function recorded(props: ImpairmentOutputs): [ImpairmentInputs, true | undefined] {
  const { ifb: _ifb, lossTable: _table, ingressQdiscFound, ...stated } = props;
  return [stated, ingressQdiscFound];
}

// ---- writing --------------------------------------------------------------------------------

/** Whether a direction shapes (a rate or a delay: a qdisc of its own), not only drops. */
export const needsShaping = (d: ImpairmentDirection | undefined) => d?.rate !== undefined || d?.delay !== undefined;

/**
 * Fails at once, before anything is written, when a delay is asked for and the kernel
 * has no netem. The probe leaves nothing: a throwaway ifb in the target namespace gets
 * a netem qdisc and is deleted, whatever happened.
 * Equivalent to: ip link add P type ifb; tc qdisc add dev P root netem delay 1ms; ip link del P
 */
async function requireNetem(i: ImpairmentInputs): Promise<void> {
  const users = DIRECTIONS.filter((d) => i[d]?.delay !== undefined);
  if (users.length === 0) return;
  const s = subject(i);
  const probe = `nslp${process.pid.toString(36).slice(-4)}${Math.random().toString(36).slice(2, 6)}`;
  await kernel.ip(["link", "add", probe, "type", "ifb"], i.namespace, s);
  try {
    await kernel.tc(["qdisc", "add", "dev", probe, "root", "netem", "delay", "1ms"], i.namespace, s);
  } catch (err) {
    const stderr = err instanceof NslabError ? (err.details.stderr ?? "") : "";
    if (!/qdisc kind is unknown|Unknown qdisc/i.test(stderr)) throw err;
    throw new NslabError(
      "Unsupported",
      `${s}: ${users.map((d) => `${d}.delay`).join(" and ")} needs the kernel's netem qdisc (sch_netem, CONFIG_NET_SCH_NETEM), which this kernel does not have (tc: "${stderr.trim()}"). ` +
        `Without netem nslab can still apply rate and burst (tbf, and an ifb for ingress) and loss (nftables); remove delay and jitter, or run on a kernel with sch_netem (modprobe sch_netem).`,
    );
  } finally {
    await kernel.ip(["link", "del", "dev", probe], i.namespace, s).catch(() => undefined);
  }
}

/**
 * Ingress rate or delay on a bridge itself redirects what the bridge's own stack receives
 * (traffic it routes, and traffic to its addresses) through the ifb, and tc's redirect
 * clears a packet's conntrack entry (act_mirred). Where br_netfilter passes bridged
 * traffic to iptables/nftables, conntrack already ran in the bridge's prerouting and the
 * IP layer does not run it again: routed packets go on untracked, so NAT (NatRule) and
 * stateful rules miss them, and a masqueraded uplink drops the lab's traffic. Refused
 * before anything is written, naming the switches and the ways out. A bridge *port*'s
 * ingress is redirected before the bridge sees the frame, and is not affected.
 */
async function requireTrackedThroughIfb(i: ImpairmentInputs, device: LiveLink): Promise<void> {
  const s = subject(i);
  const { loaded, on: calls } = await kernel.bridgeNf(i.namespace, s);
  // The bridge's own switches act only where br_netfilter is loaded (its sysctls exist).
  const options = loaded ? (["nf_call_iptables", "nf_call_ip6tables"] as const).filter((o) => Number(device.info[o]) === 1) : [];
  if (calls.length === 0 && options.length === 0) return;
  const on = [...calls.map((c) => `${c}=1`), ...options.map((o) => `the bridge's option ${o} 1`)].join(", ");
  const inNs = i.namespace ? `ip netns exec ${i.namespace} ` : "";
  const fixes = [
    ...(calls.length ? [`${inNs}sysctl -w ${calls.map((c) => `${c}=0`).join(" ")}${i.namespace ? "" : " (this is the machine's own namespace: container runtimes may rely on it)"}`] : []),
    ...(options.length ? [`ip ${i.namespace ? `-n ${i.namespace} ` : ""}link set dev ${i.device} type bridge ${options.map((o) => `${o} 0`).join(" ")}`] : []),
  ];
  throw new NslabError(
    "InvalidArgument",
    `${s}: ingress rate and delay on a bridge go through an ifb, and br_netfilter is on here (${on}): the packets the bridge routes would lose their conntrack entry on the way, so NAT (NatRule) and stateful firewall rules would not apply to them. Shape the ingress of the bridge's ports, or the egress of the interface the traffic leaves by, instead; or switch br_netfilter's calls off (${fixes.join("; ")}) and run again.`,
  );
}

/**
 * Creates nslab's ifb (alias = tag, up) when absent, with an intent record around it: a run
 * killed between `ip link add` and the alias leaves an unmarked ifb the next run takes over
 * (nslab-orphans deletes it when no run does). Equivalent to: ip link add IFB type ifb;
 * ip link set dev IFB alias TAG up
 */
async function ensureIfb(i: ImpairmentInputs, live: LiveState): Promise<void> {
  const s = subject(i);
  const ifb = ifbName(i.__owner);
  if (live.ifb) {
    // Set down by hand: every frame redirected to it was dropped. Equivalent to: ip link set dev IFB up
    if (!live.ifb.up) await kernel.ip(["link", "set", "dev", ifb, "up"], i.namespace, s);
    return;
  }
  const tag = ownerTag(i.__owner);
  const intent = `link-${ifb}`;
  if (live.ifbUnmarked) {
    // Equivalent to: ip link set dev IFB alias TAG up, then the record removed (one request on another host)
    await kernel.ip(["link", "set", "dev", ifb, "alias", tag, "up"], i.namespace, s, undefined, { after: { netns: i.namespace, object: intent } });
    return;
  }
  if (live.ifbOther) {
    const what = live.ifbOther.kind === "ifb" ? "an ifb" : `a ${live.ifbOther.kind || "plain"} interface`;
    throw new NslabError(
      "AlreadyExists",
      `${s}: ${what} named ${ifb} (the name nslab gives this resource's ingress ifb) exists and this resource did not make it (adopt does not apply to it). Remove it (ip ${i.namespace ? `-n ${i.namespace} ` : ""}link del dev ${ifb}) and run again, or drop ingress rate/delay.`,
    );
  }
  await kernel
    .ipBatchRead(
      [
        ["link", "add", ifb, "type", "ifb"],
        ["link", "set", "dev", ifb, "alias", tag, "up"],
      ],
      i.namespace,
      s,
      undefined,
      { before: { netns: i.namespace, object: intent, owner: tag, by: i.__owner }, after: { netns: i.namespace, object: intent } },
    )
    .catch(async (err) => {
      // The record stays only when this run may have made the ifb (the alias failed after
      // `ip link add`, or the end was not seen): the next run takes that ifb over. A
      // refused `ip link add` (an ifb someone made meanwhile) made nothing of this one's.
      const made = mayHaveRun(err) || (err instanceof NslabError && / alias /.test(err.details.command ?? ""));
      if (!made) await kernel.intentDone(i.namespace, intent).catch(() => undefined);
      throw err;
    });
}

/**
 * Converges the kernel to `i` from what is there now. A direction it starts shaping (at
 * create, or an update that adds it: `olds` had none) refuses a root qdisc or ingress
 * filters of someone else's; one it shaped already takes them over (drift repaired).
 * `found` is set as soon as it is known whether the device's ingress qdisc is someone
 * else's (ImpairmentOutputs.ingressQdiscFound) or this resource's (`ours`: added now,
 * or kept as its own), so that a failed create removes only what it added.
 */
async function apply(i: ImpairmentInputs, creating: boolean, found: Found, olds?: ImpairmentOutputs): Promise<LiveState> {
  const starts = (d: DirectionName) => creating || !needsShaping(olds?.[d]);
  const s = subject(i);
  await requireNamespace(i, s, "");
  const device = await freshLink(i.device, i.namespace);
  if (!device) {
    throw new NslabError("NotFound", `${s}: the interface does not exist. Create it first (a VethPair end, Bridge or TapDevice) and pass dependsOn, so Pulumi orders the two.`);
  }
  await requireNetem(i);
  const live = await readState(i);
  if (starts("egress") && !i.adopt && needsShaping(i.egress) && live.egress.foreign) {
    throw new NslabError(
      "AlreadyExists",
      `${s}: the interface already has a root qdisc this resource did not make (${live.egress.foreign}; another LinkImpairment's, or someone's: one a \`tc qdisc replace\` by hand put there in place of this resource's own counts as someone's, and nslab does not delete it). Remove it (tc qdisc del dev ${i.device} root), declare one LinkImpairment per interface with both directions, drop egress rate/delay, or set adopt: true to replace it (destroy then restores the kernel's default qdisc).${qdiscOwner(i, live.egress.foreign)}`,
    );
  }
  if (starts("ingress") && !i.adopt && needsShaping(i.ingress) && live.otherFilters) {
    throw new NslabError(
      "AlreadyExists",
      `${s}: the interface's ingress already has filters this resource did not make (another LinkImpairment's, or someone's), which would see frames before its redirect. Remove them (tc filter del dev ${i.device} ingress), declare one LinkImpairment per interface, or set adopt: true to add the redirect anyway.`,
    );
  }
  const marks = marksOf(i.__owner);
  const ifb = ifbName(i.__owner);
  const tcCommands: string[][] = [];
  // Whose the ingress qdisc is: as recorded while this resource redirects ingress;
  // someone else's when it starts to and finds one there.
  // A qdisc gone meanwhile (deleted by hand, the interface made anew) is added now: nslab's.
  // Ingress read back as missing (its ifb set down or deleted by hand) while this
  // resource's filter is still on the device is no start: the qdisc stays as recorded.
  // (The filter's priority is this resource's own, and removing ingress shaping deletes
  // it.) An ifb that is there while none is recorded is a failed update's that added
  // ingress, retried: a start, as it was.
  const startsIngress = starts("ingress") && !(olds !== undefined && !creating && live.ourPrio && (!!olds.ifb || !live.ifb));
  // Only where ingress shaping starts on a bridge: one already in place is left to work
  // as it does (refusing its updates would remove nothing, and block every other change).
  if (startsIngress && needsShaping(i.ingress) && device.kind === "bridge") await requireTrackedThroughIfb(i, device);
  found.ingressQdisc = needsShaping(i.ingress) && live.ingressQdisc ? (startsIngress ? true : olds?.ingressQdiscFound) : undefined;
  found.ours = needsShaping(i.ingress) && !found.ingressQdisc;
  if (needsShaping(i.ingress)) {
    await ensureIfb(i, live);
    tcCommands.push(...shapingCommands(ifb, shapingOf(i.ingress), live.ifb ? live.ingress : {}, marks));
    if (!live.ingressQdisc) tcCommands.push(["qdisc", "add", "dev", i.device, "ingress"]);
    if (!live.redirect) {
      if (live.ourPrio) tcCommands.push(["filter", "del", "dev", i.device, "ingress", "prio", marks.prio]);
      tcCommands.push(redirectCommand(i.device, ifb, marks));
    }
  }
  tcCommands.push(...shapingCommands(i.device, shapingOf(i.egress), live.egress, marks));
  await kernel.tcBatch(tcCommands, i.namespace, s);
  if (!needsShaping(i.ingress)) await removeIngress(i, live, ingressQdiscOurs(olds, live));
  const loss = { egress: i.egress?.loss, ingress: i.ingress?.loss };
  if (DIRECTIONS.some((d) => (loss[d] ?? 0) !== (live.loss[d] ?? 0)) || needsShaping(i.ingress) !== live.redirect) {
    const script = lossScript(lossTable(i.__owner), i.device, loss, needsShaping(i.ingress), live.tables);
    // Equivalent to: nft -f - <<< "delete table netdev T; add table netdev T; add chain ...; add rule ..."
    if (script) await kernel.nftScript(script, i.namespace, s);
  }
  return verify(i, s);
}

/**
 * Whose nslab LinkImpairment a root qdisc (`foreign`: "tbf 6761:") on the interface is,
 * by the handle its owner gives it (marksOf), among the records on this machine: "" when
 * none. One of this stack is most often this resource under its old name.
 */
function qdiscOwner(i: ImpairmentInputs, foreign: string): string {
  const handle = foreign.split(" ")[1];
  const other = kernel
    .onThisMachine(() => ownedRecords())
    .find((r) => r.kind === "LinkImpairment" && r.owner !== i.__owner && r.outs?.device === i.device && (r.outs?.namespace ?? "") === (i.namespace ?? "") && machineKey(r.outs?.host as HostArgs | undefined) === machineKey(kernel.currentHost()) && marksOf(r.owner).root === handle);
  if (!other) return "";
  const name = resourceNameOf(other.owner) ?? other.owner;
  if (stackOf(other.owner) !== stackOf(i.__owner)) return ` It is the root qdisc of ${ownerLabel(other.owner)}.`;
  return ` It is the root qdisc of LinkImpairment "${name}" of this same stack: if this resource is that one renamed, give it the option aliases: [{ name: "${name}" }].`;
}

/** Re-reads the kernel and fails naming the first property it does not have as asked. */
async function verify(i: ImpairmentInputs, s: string): Promise<LiveState> {
  const after = await readState(i);
  const seen = liveInputs(i, after);
  for (const d of DIRECTIONS) {
    for (const f of FIELDS) {
      const want = i[d]?.[f];
      const have = seen[d]?.[f];
      if ((want ?? (f === "loss" ? 0 : undefined)) !== (have ?? (f === "loss" ? 0 : undefined))) {
        throw new NslabError("Verification", `${s}: ${d}.${f}: desire '${String(want ?? "(none)")}', current '${String(have ?? "(none)")}'`);
      }
    }
  }
  return after;
}

/** What apply learns about the device's ingress qdisc, as soon as it knows. */
interface Found {
  /** Someone else's (ImpairmentOutputs.ingressQdiscFound). */
  ingressQdisc?: true;
  /** This resource's: added by it now, or kept as its own. */
  ours?: boolean;
}

/**
 * Whether the device's ingress qdisc is this resource's, by what was recorded (`props`:
 * its outputs) and what is there: only a resource that shaped ingress (recorded so, or
 * its redirect filter still on the device after its ifb went) and did not find the
 * qdisc there added it. One that never shaped ingress, or stopped, never owns it: a
 * plain ingress qdisc someone adds to its device is theirs.
 */
function ingressQdiscOurs(props: ImpairmentOutputs | undefined, live: LiveState): boolean {
  return !props?.ingressQdiscFound && (needsShaping(props?.ingress) || live.ourPrio);
}

/**
 * Removes nslab's ingress redirect and its ifb, and the ingress qdisc too when it is this
 * resource's (`ours`, see ingressQdiscOurs) and nothing else uses it; a clsact is never nslab's.
 */
async function removeIngress(i: ImpairmentInputs, live: LiveState, ours: boolean): Promise<void> {
  const s = subject(i);
  // nslab's own qdisc, which nothing else uses: removed, with or without its filter (a
  // create that failed between adding the qdisc and the filter left it alone).
  const whole = ours && !live.otherFilters && live.ingressQdisc === "ingress";
  if (live.ourPrio || whole) {
    // Equivalent to: tc qdisc del dev D ingress (or, when the qdisc is someone else's or
    // others' filters are there: tc filter del dev D ingress prio PRIO)
    const command = whole ? ["qdisc", "del", "dev", i.device, "ingress"] : ["filter", "del", "dev", i.device, "ingress", "prio", marksOf(i.__owner).prio];
    await kernel.tc(command, i.namespace, s).catch((err) => {
      if (!(err instanceof NslabError && err.kind === "NotFound")) throw err;
    });
  }
  const ifb = live.ifb ?? live.ifbUnmarked;
  if (ifb) {
    // Equivalent to: ip link del dev IFB, then its intent record removed if a killed run left one
    const intent = `link-${ifb.name}`;
    await kernel.ip(["link", "del", "dev", ifb.name], i.namespace, s, undefined, { after: { netns: i.namespace, object: intent } }).catch(async (err) => {
      if (await freshLink(ifb.name, i.namespace)) throw err;
      await kernel.intentDone(i.namespace, intent);
    });
  }
}

/**
 * Removes everything of the resource's: its root qdisc, ingress redirect, ifb and loss
 * tables, and the ingress qdisc when `ours` says, from what is there, it is its own.
 */
async function removeAll(i: ImpairmentInputs, ours: (live: LiveState) => boolean): Promise<void> {
  if (i.namespace !== undefined && !(await kernel.hostNetnsExists(i.namespace))) return;
  const s = subject(i);
  const device = await freshLink(i.device, i.namespace);
  const live = await readState(i);
  if (device && live.egress.root) {
    // Equivalent to: tc qdisc del dev D root (the kernel puts its default qdisc back)
    await kernel.tc(["qdisc", "del", "dev", i.device, "root"], i.namespace, s).catch((err) => {
      if (!(err instanceof NslabError && err.kind === "NotFound")) throw err;
    });
  }
  await removeIngress(i, device ? live : { ...live, ourPrio: false }, ours(live));
  const script = lossScript(lossTable(i.__owner), i.device, {}, false, live.tables);
  if (script) await kernel.nftScript(script, i.namespace, s);
}

// ---- the resource kind ----------------------------------------------------------------------

// An interface made anew (or its ifb's) has none of its qdiscs: written again, in place.
const RULES: FieldRule[] = [{ name: "device", replace: true }, { name: "namespace", replace: true }, { name: "egress" }, { name: "ingress" }, LINKS_RULE];

export const impairmentKind: ResourceKind<ImpairmentInputs, ImpairmentOutputs> = {
  kind: "LinkImpairment",
  properties: ["device", "namespace", "egress", "ingress", "adopt", "__links"],

  check(_olds, news) {
    const c = new Checker();
    // Unknown properties fail in index.ts, as for every kind.
    const device = c.ifname(news.device, "device", true, true);
    const inputs: ImpairmentInputs = compact({
      device: device as string,
      namespace: c.netns(news.namespace, "namespace"),
      egress: checkDirection(c, news.egress, "egress"),
      ingress: checkDirection(c, news.ingress, "ingress"),
      adopt: c.boolean(news.adopt, "adopt", false),
      __links: linksInput(news.__links),
      __owner: String(news.__owner ?? `LinkImpairment:${device}`),
    });
    // Nothing to apply (no direction, or empty ones) is refused, not accepted to do nothing.
    const none = (d: unknown) => d === undefined || (!isUnknown(d) && typeof d === "object" && d !== null && Object.keys(d).length === 0);
    if (c.failures.length === 0 && none(inputs.egress) && none(inputs.ingress)) {
      c.fail("egress", `the impairment has nothing to apply: give egress and/or ingress, e.g. egress: { rate: "10mbit", loss: 0.01 } (the fields are ${FIELDS.join(", ")}), or remove the resource.`);
    }
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    return diffFields(olds as never, news as never, RULES);
  },

  async create(i) {
    const found: Found = {};
    try {
      const live = await apply(i, true, found);
      return { id: `${i.namespace ?? ""}/${i.device}/${hashOf(i.__owner)}`, outs: outputsOf(i, live, found.ingressQdisc) };
    } catch (err) {
      // Transactional: remove whatever of ours the failed attempt made.
      // The ingress qdisc only if this attempt added it (or would have: a batch that failed
      // after adding it); one there before, or found before ownership was known, stays.
      await removeAll(i, () => found.ours === true).catch(() => undefined);
      throw err;
    }
  },

  async read(id, props) {
    if (props.namespace !== undefined && !(await kernel.hostNetnsExists(props.namespace))) return {};
    if (!(await freshLink(props.device, props.namespace))) return {};
    const [stated, found] = recorded(props);
    const live = await readState(stated);
    const inputs = liveInputs(stated, live);
    return { id, props: outputsOf(inputs, live, found), inputs };
  },

  async exists(_id, props) {
    if (props.namespace !== undefined && !(await kernel.hostNetnsExists(props.namespace))) return false;
    // Its ifb and tables outlive the interface: looked for whether or not it is there.
    const [stated] = recorded(props);
    // Its root qdisc, ifb, redirect or loss tables: read reports any of them missing as drift.
    const live = await readState(stated);
    return !!(live.egress.root || live.ifb || live.ifbUnmarked || live.redirect || live.tables.netdev || live.tables.inet || live.tables.bridge);
  },

  async update(_id, olds, news) {
    const found: Found = {};
    const live = await apply(news, false, found, olds);
    return { outs: outputsOf(news, live, found.ingressQdisc) };
  },

  async delete(_id, props) {
    await removeAll(recorded(props)[0], (live) => ingressQdiscOurs(props, live));
  },
};
