/**
 * Pure validation and normalisation of user input: every check here touches no kernel,
 * so `pulumi preview` catches bad input and nothing on the host changes. Each failure
 * names the property and says how to fix it.
 */
import * as ipaddr from "ipaddr.js";

/** One problem with one property, in the shape Pulumi's check expects. */
export interface Failure {
  property: string;
  reason: string;
}

/** Linux IFNAMSIZ - 1. */
export const IFNAME_MAX = 15;
/** Names nslab refuses for interfaces: they collide with `ip` keywords or special files. */
const RESERVED_IFNAMES = new Set([".", "..", "all", "default", "lo"]);
const IFNAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const NETNS_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** Longest namespace name nslab accepts (a file name under /run/netns, kept short for messages). */
export const NETNS_MAX = 64;
export const MTU_MIN = 68;
export const MTU_MAX = 65535;
export const IPV6_MTU_MIN = 1280;
/** A MAC address as check normalises it: six lower-case hex pairs. */
export const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * What the engine passes to check for a value not known yet during preview (an output
 * of a resource still to be made). It cannot be validated then; create sees the real value.
 */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True for a value the engine does not know yet (preview). */
export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

/** The allowed name closest to `key` (a different case, or at most two edits away), if any. */
export function closestName(key: string, allowed: readonly string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      row = next;
    }
    return row[b.length];
  };
  const lower = key.toLowerCase();
  const same = allowed.find((name) => name.toLowerCase() === lower);
  if (same) return same;
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of allowed) {
    const d = distance(lower, name.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

/** Collects failures while normalising one resource's inputs. */
export class Checker {
  readonly failures: Failure[] = [];

  fail(property: string, reason: string): undefined {
    this.failures.push({ property, reason });
    return undefined;
  }

  /**
   * Fails every key of `value` that is not one of `allowed` (undefined and null values
   * aside: what a program leaves out). `path` prefixes the property names ("a."); `what`
   * names what takes them ("a VethPair", "a veth end"); `hints` adds a word for a key
   * that belongs elsewhere.
   */
  knownKeys(value: Record<string, unknown>, allowed: readonly string[], path: string, what: string, hints: Record<string, string> = {}): void {
    for (const key of Object.keys(value)) {
      if (value[key] === undefined || value[key] === null || allowed.includes(key)) continue;
      const closest = closestName(key, allowed);
      const near = hints[key] ?? (closest && `did you mean ${path}${closest}?`);
      this.fail(
        `${path}${key}`,
        `${path}${key} is not a property of ${what}${near ? ` (${near})` : ""}; it takes ${allowed.filter((k) => !k.startsWith("__")).join(", ")}. Nothing would apply it: remove it or fix its name.`,
      );
    }
  }

  /** A required or optional string property. */
  string(value: unknown, property: string, required: boolean): string | undefined {
    if (isUnknown(value)) return value as never;
    if (value === undefined || value === null || value === "") {
      if (required) this.fail(property, `${property} is required.`);
      return undefined;
    }
    if (typeof value !== "string") return this.fail(property, `${property} must be a string, got ${JSON.stringify(value)}.`);
    return value;
  }

  /**
   * An interface name: 1-15 characters of [A-Za-z0-9_.-], not starting with '.' or '-'.
   * `existing`: it names an interface that is there already (a route's device), which
   * may be `lo`; one that nslab makes may not.
   */
  ifname(value: unknown, property: string, required = true, existing = false): string | undefined {
    if (isUnknown(value)) return value as never;
    const name = this.string(value, property, required);
    if (name === undefined) return undefined;
    if (name.length > IFNAME_MAX) {
      return this.fail(property, `${property} "${name}" is ${name.length} characters; Linux interface names have at most ${IFNAME_MAX}. Choose a shorter name.`);
    }
    if (!IFNAME_PATTERN.test(name)) {
      return this.fail(property, `${property} "${name}" may only contain letters, digits, '_', '.' and '-', and must start with a letter, digit or '_'.`);
    }
    if (RESERVED_IFNAMES.has(name) && !(existing && name === "lo")) return this.fail(property, `${property} "${name}" is reserved; choose another name.`);
    return name;
  }

  /** A namespace name (a file under /run/netns). */
  netns(value: unknown, property: string, required = false): string | undefined {
    if (isUnknown(value)) return value as never;
    const name = this.string(value, property, required);
    if (name === undefined) return undefined;
    if (name.length > NETNS_MAX) return this.fail(property, `${property} "${name}" is longer than ${NETNS_MAX} characters; choose a shorter name.`);
    if (!NETNS_PATTERN.test(name)) {
      return this.fail(property, `${property} "${name}" may only contain letters, digits, '_', '.' and '-', and must start with a letter, digit or '_'.`);
    }
    return name;
  }

  boolean(value: unknown, property: string, defaultValue: boolean): boolean;
  boolean(value: unknown, property: string, defaultValue?: boolean): boolean | undefined;
  boolean(value: unknown, property: string, defaultValue?: boolean): boolean | undefined {
    if (isUnknown(value)) return value as never;
    if (value === undefined || value === null) return defaultValue;
    if (typeof value !== "boolean") return this.fail(property, `${property} must be true or false, got ${JSON.stringify(value)}.`);
    return value;
  }

  /** An integer in [min, max]. */
  integer(value: unknown, property: string, min: number, max: number): number | undefined {
    if (isUnknown(value)) return value as never;
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      return this.fail(property, `${property} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}.`);
    }
    return value;
  }

  mtu(value: unknown, property: string): number | undefined {
    return this.integer(value, property, MTU_MIN, MTU_MAX);
  }

  /** A unicast Ethernet address, normalised to lower case. */
  mac(value: unknown, property: string): string | undefined {
    if (isUnknown(value)) return value as never;
    const raw = this.string(value, property, false);
    if (raw === undefined) return undefined;
    const mac = raw.toLowerCase();
    if (!MAC_PATTERN.test(mac)) return this.fail(property, `${property} "${raw}" is not a MAC address; write six hex pairs such as "02:00:00:00:00:01".`);
    if (parseInt(mac.slice(0, 2), 16) & 1) return this.fail(property, `${property} "${raw}" is a multicast address; the first octet must be even (e.g. "02:...").`);
    if (mac === "00:00:00:00:00:00") return this.fail(property, `${property} must not be all zeros.`);
    return mac;
  }

  /** Interface addresses ("192.168.1.1/24", "fd00::1/64"), canonical and de-duplicated. */
  addresses(value: unknown, property: string): string[] {
    if (isUnknown(value)) return value as never;
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.fail(property, `${property} must be a list of addresses with prefix length, such as ["192.168.1.1/24"].`);
      return [];
    }
    const out: string[] = [];
    value.forEach((item, i) => {
      if (isUnknown(item)) return void out.push(item as string);
      const cidr = this.interfaceAddress(item, `${property}[${i}]`);
      if (cidr !== undefined && !out.includes(cidr)) out.push(cidr);
    });
    return out;
  }

  /** One interface address with its prefix length, canonical. */
  interfaceAddress(value: unknown, property: string): string | undefined {
    if (isUnknown(value)) return value as never;
    const raw = this.string(value, property, true);
    if (raw === undefined) return undefined;
    const cidr = canonicalCidr(raw);
    if (cidr === undefined) {
      // An address whose prefix length is out of its family's range: say that, not that
      // it is no address.
      const [address, length] = raw.split("/");
      if (length !== undefined && /^\d+$/.test(length) && ipaddr.isValid(address)) {
        const max = ipaddr.parse(address).kind() === "ipv6" ? 128 : 32;
        if (Number(length) > max) return this.fail(property, `${property} "${raw}": the prefix length ${length} is more than an ${max === 32 ? "IPv4" : "IPv6"} address has (0 to ${max}), e.g. /${max === 32 ? 24 : 64}.`);
      }
      return this.fail(property, `${property} "${raw}" is not an address with prefix length; write e.g. "192.168.1.1/24" or "fd00::1/64".`);
    }
    // An IPv4 network's own address and its broadcast address are no host's (a /31 or
    // /32 has neither).
    const [addr, len] = ipaddr.parseCIDR(cidr);
    // Nor is a multicast group (the kernel refuses an IPv6 one at up: "Cannot assign
    // multicast address without IFA_F_MCAUTOJOIN").
    if (addr.range() === "multicast") {
      return this.fail(property, `${property} "${raw}" is a multicast group address, which no interface may have as its own; give a unicast address.`);
    }
    // IPv6's loopback and unspecified addresses (the kernel refuses ::1 on any device but
    // lo at up: "Cannot assign loopback address on this device").
    if (addr.kind() === "ipv6" && (addr.range() === "loopback" || addr.range() === "unspecified")) {
      return this.fail(property, `${property} "${raw}" is IPv6's ${addr.range()} address, which no interface of a lab may have; give a unicast address such as "fd00::1/64".`);
    }
    if (addr.kind() === "ipv4" && len <= 30) {
      const network = ipaddr.IPv4.networkAddressFromCIDR(cidr);
      const broadcast = ipaddr.IPv4.broadcastAddressFromCIDR(cidr);
      // The host next to it (the last octet of a /30 or wider network has room for one).
      const beside = (a: ipaddr.IPv4, step: number) => `"${[...a.octets.slice(0, 3), a.octets[3] + step].join(".")}/${len}"`;
      if (addr.toString() === network.toString()) {
        return this.fail(property, `${property} "${raw}" is the address of the network ${network}/${len} itself, which no host may have; give a host address such as ${beside(network, 1)}.`);
      }
      if (addr.toString() === broadcast.toString()) {
        return this.fail(property, `${property} "${raw}" is the broadcast address of ${network}/${len}, which no host may have; give a host address such as ${beside(broadcast, -1)}.`);
      }
    }
    return cidr;
  }

  /** IPv6 needs an MTU of at least 1280: the kernel refuses IPv6 addresses below it. */
  ipv6Mtu(addresses: string[], mtu: number | undefined, property: string): void {
    if (typeof mtu === "number" && mtu < IPV6_MTU_MIN && addresses.some((a) => !isUnknown(a) && familyOf(a) === "ipv6")) {
      this.fail(property, `${property} ${mtu} is below ${IPV6_MTU_MIN}, the minimum for the IPv6 addresses given; raise it or drop the IPv6 addresses.`);
    }
  }

  /** A network (host bits zero) such as "10.0.0.0/8", canonical. */
  network(value: unknown, property: string, required = true): string | undefined {
    if (isUnknown(value)) return value as never;
    const raw = this.string(value, property, required);
    if (raw === undefined) return undefined;
    const cidr = canonicalCidr(raw);
    if (cidr === undefined) return this.fail(property, `${property} "${raw}" is not a network; write e.g. "10.0.0.0/8" or "fd00:1::/64".`);
    const net = networkOf(cidr);
    if (net !== cidr) return this.fail(property, `${property} "${raw}" has host bits set; did you mean "${net}"?`);
    return cidr;
  }

  /** A single address without prefix, canonical. */
  address(value: unknown, property: string, required = false): string | undefined {
    if (isUnknown(value)) return value as never;
    const raw = this.string(value, property, required);
    if (raw === undefined) return undefined;
    if (!ipaddr.isValid(raw) || raw.includes("/")) return this.fail(property, `${property} "${raw}" is not an IP address; write e.g. "192.168.1.1" or "fd00::1".`);
    return canonicalAddress(raw);
  }
}

/** "fd00:0::1/64" -> "fd00::1/64"; undefined when not an address/prefix. */
export function canonicalCidr(text: string): string | undefined {
  if (!ipaddr.isValidCIDR(text)) return undefined;
  const [addr, len] = ipaddr.parseCIDR(text);
  return `${formatAddress(addr)}/${len}`;
}

export function canonicalAddress(text: string): string {
  return formatAddress(ipaddr.parse(text));
}

function formatAddress(addr: ipaddr.IPv4 | ipaddr.IPv6): string {
  return addr.kind() === "ipv6" ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();
}

/** The network of a canonical CIDR: "192.168.1.7/24" -> "192.168.1.0/24". */
export function networkOf(cidr: string): string {
  const [addr, len] = ipaddr.parseCIDR(cidr);
  const network = addr.kind() === "ipv6" ? ipaddr.IPv6.networkAddressFromCIDR(cidr) : ipaddr.IPv4.networkAddressFromCIDR(cidr);
  return `${formatAddress(network)}/${len}`;
}

/** "ipv4" or "ipv6" for an address or CIDR. */
export function familyOf(text: string): "ipv4" | "ipv6" {
  return ipaddr.parse(text.split("/")[0]).kind();
}
