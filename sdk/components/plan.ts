/**
 * Pure planning for components: interface names and address allocation. No resources, no
 * kernel: table- and property-tested in test/unit/plan.test.ts.
 */
import { createHash } from "node:crypto";
import * as ipaddr from "ipaddr.js";
import { ProgramError } from "../errors";

/** Linux IFNAMSIZ - 1. */
export const IFNAME_MAX = 15;
const HASH_CHARS = 4;

/**
 * A readable, stable interface name from its parts: "lan-web1" when the joined parts
 * fit in 15 characters, otherwise a readable prefix and 4 hex of a hash of the whole
 * ("backbone-n-3f2a"). It depends only on the parts, so adding or removing other hosts
 * renames nobody.
 */
export function interfaceName(...parts: string[]): string {
  const joined = parts.map((p) => p.replace(/[^A-Za-z0-9_.-]/g, "")).join("-");
  if (joined.length <= IFNAME_MAX) return joined;
  const hash = createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, HASH_CHARS);
  return `${joined.slice(0, IFNAME_MAX - HASH_CHARS - 1).replace(/[-.]+$/, "")}-${hash}`;
}

/** A host of a network as the plan needs it. */
export interface HostSpec {
  /** The host's name. */
  name: string;
  /** A fixed address (without prefix) instead of the next free one. */
  address?: string;
}

/** The addresses of one network: gateway and hosts. */
export interface NetworkPlan {
  /** The network, canonical. */
  cidr: string;
  /** Its prefix length. */
  prefixLength: number;
  /** The gateway's address (without prefix), if any. */
  gateway?: string;
  /** Each host's address (without prefix), in declaration order. */
  hosts: PlannedHost[];
}

/** A host and the address planned for it. */
export interface PlannedHost {
  /** The host's name. */
  name: string;
  /** Its address (without prefix). */
  address: string;
}

/**
 * Thrown for bad component arguments; names the component, the argument and the fix,
 * and the line of the program that declared it (printed without a stack trace: a
 * {@link ProgramError}).
 */
export class PlanError extends ProgramError {
  /** Always "PlanError". */
  override readonly name: string = "PlanError";
}

function usable(cidr: string): { network: bigint; first: bigint; last: bigint; family: "ipv4" | "ipv6"; len: number } {
  const [addr, len] = ipaddr.parseCIDR(cidr);
  const bits = addr.kind() === "ipv6" ? 128 : 32;
  const base = toBig(addr);
  const size = 1n << BigInt(bits - len);
  const network = (base >> BigInt(bits - len)) << BigInt(bits - len);
  if (addr.kind() === "ipv4") {
    // Skip the network and broadcast addresses (a /31 or /32 has no hosts to spare).
    return size <= 2n
      ? { network, first: network, last: network + size - 1n, family: "ipv4", len }
      : { network, first: network + 1n, last: network + size - 2n, family: "ipv4", len };
  }
  // The subnet-router anycast address (all host bits zero) is no host's, except on a
  // /127 or /128 (RFC 6164: Linux keeps no anycast address there).
  return len >= 127 ? { network, first: network, last: network + size - 1n, family: "ipv6", len } : { network, first: network + 1n, last: network + size - 1n, family: "ipv6", len };
}

function toBig(addr: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  return addr.toByteArray().reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

function fromBig(value: bigint, family: "ipv4" | "ipv6"): string {
  const bytes: number[] = [];
  for (let i = 0; i < (family === "ipv4" ? 4 : 16); i++) {
    bytes.unshift(Number(value & 0xffn));
    value >>= 8n;
  }
  const addr = ipaddr.fromByteArray(bytes);
  return family === "ipv6" ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();
}

/**
 * Why `address` cannot be given to an interface of `cidr` ("" when it can): not an
 * address, of the other family, outside the network, or the network's own address
 * (IPv4's network and broadcast addresses; IPv6's subnet-router anycast address, the
 * one with all host bits zero). `cidr` must be valid.
 */
export function unusableReason(address: string, cidr: string): string {
  if (!ipaddr.isValid(address)) return `is not an IP address`;
  const range = usable(cidr);
  const addr = ipaddr.parse(address);
  if (addr.kind() !== range.family) return `is ${addr.kind() === "ipv4" ? "an IPv4" : "an IPv6"} address, and ${cidr} is ${range.family === "ipv4" ? "IPv4" : "IPv6"}`;
  if (!addr.match(ipaddr.parseCIDR(cidr))) return `is outside ${cidr}`;
  const value = toBig(addr);
  if (value < range.first || value > range.last) {
    if (value === range.network) return range.family === "ipv6" ? `is ${cidr}'s subnet-router anycast address (all host bits zero), which the kernel answers on every router of the subnet` : `is ${cidr}'s network address`;
    return `is ${cidr}'s broadcast address`;
  }
  return "";
}

/**
 * `address` in its canonical spelling, checked to be usable on an interface of `cidr`.
 * @throws PlanError naming `owner` and `who` ("gateway", `host "a"`), the reason and the fix.
 */
export function addressIn(owner: string, who: string, address: string, cidr: string): string {
  const why = unusableReason(address, cidr);
  if (why) throw new PlanError(`${owner}: ${who} ${address} ${why}; use an address inside the subnet.`);
  return fromBig(toBig(ipaddr.parse(address)), usable(cidr).family);
}

/**
 * How hosts without a fixed address get one:
 * - "sequential" (default): the next free address in declaration order, compact and
 *   predictable (.1, .2, .3 as in the walkthrough). Appending hosts moves nobody;
 *   removing one from the middle moves the hosts after it (pin them with `address`).
 * - "stable": a hash of the host's name over the range. Adding or removing any host
 *   never moves another; two names landing on one address fail at preview, naming both.
 *   The range starts after the gateway's address when `gateway: true` takes the first
 *   one, so switching `gateway: true` on or off moves every such host (pin the ones
 *   that must stay with `address`).
 */
export type Allocation = "sequential" | "stable";

/**
 * Allocates addresses in `cidr`: the gateway (when asked for with `true`) takes the
 * first usable address; a host or gateway with a fixed address keeps it; the other
 * hosts are placed as `allocation` says.
 * @throws PlanError for a bad CIDR, an address outside it, a duplicate, or too many hosts.
 */
export function planNetwork(owner: string, cidr: string, hosts: HostSpec[], gateway?: boolean | string, allocation: Allocation = "sequential"): NetworkPlan {
  if (!ipaddr.isValidCIDR(cidr)) throw new PlanError(`${owner}: cidr "${cidr}" is not a network; write e.g. "192.168.1.0/24".`);
  const range = usable(cidr);
  const givenBase = toBig(ipaddr.parseCIDR(cidr)[0]);
  if (givenBase !== range.network) {
    throw new PlanError(`${owner}: cidr "${cidr}" has host bits set; did you mean "${fromBig(range.network, range.family)}/${range.len}"?`);
  }
  const names = new Set<string>();
  for (const h of hosts) {
    if (names.has(h.name)) throw new PlanError(`${owner}: host "${h.name}" is listed twice; host names must be unique in a network.`);
    names.add(h.name);
  }
  const taken = new Map<string, string>();
  const take = (address: string, who: string) => {
    const canonical = fromBig(toBig(ipaddr.parse(address)), range.family);
    const other = taken.get(canonical);
    if (other) throw new PlanError(`${owner}: ${who} and ${other} both have address ${canonical}; give one of them another address.`);
    taken.set(canonical, who);
    return canonical;
  };
  let gatewayAddress: string | undefined;
  if (typeof gateway === "string") {
    addressIn(owner, "gateway", gateway, cidr);
    gatewayAddress = take(gateway, "the gateway");
  }
  for (const h of hosts) {
    if (h.address === undefined) continue;
    addressIn(owner, `host "${h.name}" address`, h.address, cidr);
    take(h.address, `host "${h.name}"`);
  }
  let next = range.first;
  const nextFree = (who: string): string => {
    while (next <= range.last && taken.has(fromBig(next, range.family))) next++;
    if (next > range.last) {
      const capacity = range.last - range.first + 1n;
      throw new PlanError(`${owner}: ${cidr} holds ${capacity} addresses but ${hosts.length} hosts${gateway ? " and a gateway" : ""} need one each; use a larger cidr (a shorter prefix).`);
    }
    return take(fromBig(next, range.family), who);
  };
  if (gateway === true) {
    // The first usable address, as documented: a host pinned there would move the gateway.
    const first = fromBig(range.first, range.family);
    const holder = taken.get(first);
    if (holder) throw new PlanError(`${owner}: ${holder} is pinned to ${first}, the address gateway: true takes (the first usable one); pin the host elsewhere, or give gateway an address of its own.`);
    gatewayAddress = nextFree("the gateway");
  }
  // "stable": a host's address is a hash of its name over the free part of the range,
  // so it never depends on the other hosts; two names that land on one address are an
  // error that says which to pin.
  const hashed = (name: string): string => {
    const start = gateway === true ? range.first + 1n : range.first;
    const span = range.last - start + 1n;
    if (span <= 0n) return nextFree(`host "${name}"`);
    const slot = BigInt(`0x${createHash("sha256").update(name).digest("hex").slice(0, 24)}`) % span;
    const address = fromBig(start + slot, range.family);
    const other = taken.get(address);
    if (other) {
      throw new PlanError(
        `${owner}: with allocation "stable", host "${name}" hashes to ${address}, which ${other} already has; pin one of them with address, rename one, or use a larger cidr.`,
      );
    }
    return take(address, `host "${name}"`);
  };
  const planned = hosts.map((h) => ({
    name: h.name,
    address: h.address !== undefined ? fromBig(toBig(ipaddr.parse(h.address)), range.family) : allocation === "stable" ? hashed(h.name) : nextFree(`host "${h.name}"`),
  }));
  return { cidr: `${fromBig(range.network, range.family)}/${range.len}`, prefixLength: range.len, gateway: gatewayAddress, hosts: planned };
}

/** True when two CIDRs share any address. */
export function overlaps(a: string, b: string): boolean {
  const [aa, al] = ipaddr.parseCIDR(a);
  const [ba, bl] = ipaddr.parseCIDR(b);
  if (aa.kind() !== ba.kind()) return false;
  return al <= bl ? ba.match(aa, al) : aa.match(ba, bl);
}
