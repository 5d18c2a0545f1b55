/**
 * Reachability: connectivity kept as state. Nothing is made in the kernel; the resource
 * is a probe from a namespace to an address (ICMP echo, a TCP connect, a UDP exchange)
 * and an expectation ("reachable" or "unreachable").
 *
 * - create probes and fails, saying what was tried and what came back, when the
 *   expectation does not hold. It probes again when its own inputs change, when a
 *   resource in its dependsOn is updated or made anew (its `__made` token changes) and
 *   when an interface there comes back up (its generation): `__links`, sdk/base.ts
 *   writesOf.
 * - read probes again. When the result no longer matches, it reports `expect` as what
 *   was observed (and `reachable` with it): the refresh shows
 *   `expect: "unreachable" => "reachable"` and a drift check exits 7. Since every input
 *   replaces, `pulumi up --refresh` then re-probes through create, which fails again
 *   with the same clear message while the traffic is still broken.
 * - delete does nothing: there is nothing in the kernel to remove.
 */
import * as ipaddr from "ipaddr.js";
import { NslabError } from "./errors";
import * as kernel from "./kernel";
import { ProbeResult } from "./kernel";
import { CommonInputs, compact, diffFields, FieldRule, LinkDependentInputs, LINKS_RULE, linksInput, resourceNameOf, ResourceKind } from "./resource";
import { Checker, familyOf, isUnknown } from "./validate";

export type ReachabilityProtocol = "icmp" | "tcp" | "udp";
export type ReachabilityExpectation = "reachable" | "unreachable";

export interface ReachabilityInputs extends CommonInputs, LinkDependentInputs {
  /** Namespace the probe runs in; undefined for the program's. */
  from?: string;
  /** Address probed, canonical. */
  to: string;
  protocol: ReachabilityProtocol;
  /** TCP or UDP port; absent for icmp. */
  port?: number;
  expect: ReachabilityExpectation;
  timeoutMs: number;
}
export interface ReachabilityOutputs extends ReachabilityInputs {
  /** What the last probe saw: true when the far end answered. */
  reachable: boolean;
}

export const TIMEOUT_MS_DEFAULT = 2_000;
export const TIMEOUT_MS_MIN = 100;
export const TIMEOUT_MS_MAX = 60_000;
const PROTOCOLS: ReachabilityProtocol[] = ["icmp", "tcp", "udp"];
const EXPECTATIONS: ReachabilityExpectation[] = ["reachable", "unreachable"];

// Every input replaces: a changed probe is a new proof, made by create. An interface on
// the way made anew or back up (LINKS_RULE): probed again, by update (which runs create).
const RULES: FieldRule[] = [...["from", "to", "protocol", "port", "expect", "timeoutMs"].map((name) => ({ name, replace: true })), LINKS_RULE];

/** `icmp to 10.0.0.2`, `tcp port 80 on 10.0.0.2`. */
function target(i: Pick<ReachabilityInputs, "protocol" | "to" | "port">): string {
  return i.protocol === "icmp" ? `icmp (ping) to ${i.to}` : `${i.protocol} port ${i.port} on ${i.to}`;
}

/** `Reachability "ns1-to-web": from namespace "ns1", tcp port 80 on 10.0.2.2`. */
function subject(i: ReachabilityInputs): string {
  const name = resourceNameOf(i.__owner);
  return `Reachability${name ? ` "${name}"` : ""}: from ${i.from ? `namespace "${i.from}"` : "the program's namespace"}${kernel.where()}, ${target(i)}`;
}

/** Runs the probe the inputs describe. */
export async function probe(i: ReachabilityInputs): Promise<ProbeResult> {
  if (i.protocol === "icmp") return kernel.ping(i.to, i.from, i.timeoutMs, subject(i));
  return kernel.transportProbe({ protocol: i.protocol, to: i.to, port: i.port!, timeoutMs: i.timeoutMs }, i.from, subject(i));
}

const observed = (r: ProbeResult): ReachabilityExpectation => (r.reachable ? "reachable" : "unreachable");

export const reachabilityKind: ResourceKind<ReachabilityInputs, ReachabilityOutputs> = {
  kind: "Reachability",
  properties: ["from", "to", "protocol", "port", "expect", "timeoutMs", "__links"],

  check(_olds, news) {
    const c = new Checker();
    let protocol = c.string(news.protocol, "protocol", false) ?? "icmp";
    if (!isUnknown(protocol) && !PROTOCOLS.includes(protocol as ReachabilityProtocol)) {
      protocol = c.fail("protocol", `protocol must be "icmp" (ping), "tcp" (connect) or "udp" (a datagram that a listener answers), got ${JSON.stringify(news.protocol)}.`) ?? "icmp";
    }
    let expect = c.string(news.expect, "expect", false) ?? "reachable";
    if (!isUnknown(expect) && !EXPECTATIONS.includes(expect as ReachabilityExpectation)) {
      expect = c.fail("expect", `expect must be "reachable" or "unreachable", got ${JSON.stringify(news.expect)}.`) ?? "reachable";
    }
    const port = c.integer(news.port, "port", 1, 65535);
    if (!isUnknown(protocol)) {
      if (protocol === "icmp" && news.port !== undefined && news.port !== null) c.fail("port", `port ${JSON.stringify(news.port)} is given but protocol is "icmp", which has no ports; remove port or set protocol "tcp" or "udp".`);
      if (protocol !== "icmp" && (news.port === undefined || news.port === null)) c.fail("port", `protocol "${protocol}" needs a port (1-65535), e.g. port: 80.`);
    }
    const timeoutMs = c.integer(news.timeoutMs, "timeoutMs", TIMEOUT_MS_MIN, TIMEOUT_MS_MAX) ?? TIMEOUT_MS_DEFAULT;
    const to = c.address(news.to, "to", true) as string;
    // Not one host: the unspecified address reaches the prober itself (always
    // "reachable"), and a broadcast or multicast answer says nothing about one host.
    if (typeof to === "string" && !isUnknown(to) && ipaddr.isValid(to)) {
      const range = ipaddr.process(to).range();
      if (["unspecified", "broadcast", "multicast"].includes(range)) c.fail("to", `to ${to} is a${range === "unspecified" ? "n unspecified" : ` ${range}`} address, not one host's; probe a host's own address.`);
      // A link-local address is reached through a named interface, which a probe has no
      // way to give: it failed after timeoutMs with "no reply".
      if (range === "linkLocal" && to.includes(":")) {
        const zone = to.includes("%");
        c.fail("to", `to ${to} is a link-local address, which is only reached through a named interface (${zone ? to : `${to}%eth0`}), and a probe ${zone ? "cannot use the one it names" : "names none"}; probe one of the host's global addresses.`);
      }
    }
    const inputs = compact({
      from: c.netns(news.from, "from"),
      to,
      protocol: protocol as ReachabilityProtocol,
      port: protocol === "icmp" ? undefined : port,
      expect: expect as ReachabilityExpectation,
      timeoutMs,
      __links: linksInput(news.__links),
      __owner: String(news.__owner ?? `Reachability:${news.from ?? ""}:${news.to}`),
    });
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    // Nothing to clash with: the new probe may run before the old resource goes.
    return diffFields(olds as never, news as never, RULES, false);
  },

  async create(i) {
    await kernel.requireNetns(i.from, subject(i), "from ");
    const seen = await probe(i);
    if (observed(seen) !== i.expect) {
      throw new NslabError(
        "Verification",
        `${subject(i)}: expected ${i.expect}, but ${seen.reachable ? "it answered" : "it did not answer"}: ${seen.detail}. ` +
          (i.expect === "reachable"
            ? "Check addresses, routes, forwarding, firewall rules and (for tcp/udp) that a listener runs; order the probe after what it depends on (dependsOn)."
            : "Something lets this traffic through; if that is intended, set expect: \"reachable\"."),
      );
    }
    const family = familyOf(i.to);
    return { id: `${i.from ?? ""}>${i.protocol}:${family === "ipv6" ? `[${i.to}]` : i.to}${i.port ? `:${i.port}` : ""}`, outs: { ...i, reachable: seen.reachable } };
  },

  async read(id, props) {
    // The namespace the probe runs from is gone: so is the proof.
    if (props.from !== undefined && !(await kernel.hostNetnsExists(props.from))) return {};
    const { reachable: _last, ...stated } = props;
    const seen = await probe(stated);
    const inputs: ReachabilityInputs = { ...stated, expect: observed(seen) };
    return { id, props: { ...inputs, reachable: seen.reachable }, inputs };
  },

  async update(_id, _olds, news) {
    // Only __links changes in place (a dependency written, an interface back up): probe again.
    return reachabilityKind.create(news);
  },

  async delete() {
    // Nothing in the kernel.
  },
};
