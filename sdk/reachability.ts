import * as pulumi from "@pulumi/pulumi";
import { HostArgs, NslabResource, OnHostArgs, writesOf } from "./base";
import { ProgramError } from "./errors";

/** Arguments of {@link Reachability}. Changing any of them replaces the resource: a new probe. */
export interface ReachabilityArgs extends OnHostArgs {
  /** Namespace the probe runs in; omitted means the program's. */
  from?: pulumi.Input<string>;
  /** The address probed, IPv4 or IPv6 (no prefix length), e.g. "10.0.2.2" or "fd00::2". */
  to: pulumi.Input<string>;
  /**
   * "icmp" (default): one echo request (`ping -c 1`). "tcp": a connection to `port` is
   * opened and closed. "udp": one datagram is sent to `port` and any reply counts, so
   * the far end needs a listener that answers (an echo service, DNS, ...); a listener
   * that stays silent looks like a drop. With `host`, "icmp" runs `ping` there, "tcp" a
   * bash `/dev/tcp` connect and "udp" a bash `/dev/udp` datagram whose reply `dd` reads
   * (no Node.js needed there).
   */
  protocol?: pulumi.Input<"icmp" | "tcp" | "udp">;
  /** The TCP or UDP port, 1-65535: required for tcp and udp, refused for icmp. */
  port?: pulumi.Input<number>;
  /**
   * "reachable" (default): the far end must answer. "unreachable": it must not
   * (isolation is a property too); no answer, a refused connection and an ICMP error
   * all count as unreachable.
   */
  expect?: pulumi.Input<"reachable" | "unreachable">;
  /** How long the probe waits for an answer, 100-60000 ms. Default 2000. */
  timeoutMs?: pulumi.Input<number>;
}

/**
 * Connectivity as state: a probe from a namespace to an address, and what it must
 * find. Nothing is made in the kernel.
 *
 * `pulumi up` probes when it creates the resource and fails, naming from, to,
 * protocol, port, the expectation and what came back (ping's line, "connection
 * refused", "timed out after 2000 ms"), when the expectation does not hold. It probes
 * again when its own inputs change, when a resource it depends on is updated or made
 * anew (a listener's Process moved to another port, a LinkImpairment set to drop
 * everything), and when an interface there comes back up, so such an `up` fails while
 * the probe fails: what its `dependsOn` lists, the members of nslab components there,
 * and what those list in their own `dependsOn` (sdk/base.ts writesOf; not followed:
 * your own components, members a component gets after the probe is declared). Every
 * refresh probes again: when the result no longer matches, the refresh reports `expect` as observed (`expect: "unreachable" =>
 * "reachable"` in a preview), so `pulumi preview --refresh --expect-no-changes` and
 * `scripts/drift-check` exit 7 on a lab whose traffic broke while every object is
 * intact, and `pulumi up --refresh` probes again (and fails again while it is broken).
 *
 * Order a probe after what it depends on with `dependsOn` (routes, NAT, a listener's
 * {@link Process}). Probes run inside `from` without a shell; TCP and UDP probes of one
 * namespace that run at the same time share one probe process.
 *
 * ```ts
 * new nslab.Reachability("ns1-to-web", { from: ns1.name, to: "10.0.2.2", protocol: "tcp", port: 80 }, { dependsOn: [route, nat] });
 * ```
 */
export class Reachability extends NslabResource {
  /** The namespace the probe runs in; undefined for the program's. */
  declare readonly from: pulumi.Output<string | undefined>;
  /** The address probed, canonical. */
  declare readonly to: pulumi.Output<string>;
  /** "icmp", "tcp" or "udp". */
  declare readonly protocol: pulumi.Output<"icmp" | "tcp" | "udp">;
  /** The port (tcp and udp). */
  declare readonly port: pulumi.Output<number | undefined>;
  /** What the probe must find. */
  declare readonly expect: pulumi.Output<"reachable" | "unreachable">;
  /** The probe's timeout in milliseconds. */
  declare readonly timeoutMs: pulumi.Output<number>;
  /** What the last probe saw: true when the far end answered. */
  declare readonly reachable: pulumi.Output<boolean>;

  constructor(name: string, args: ReachabilityArgs, opts?: pulumi.CustomResourceOptions) {
    // A JavaScript program may leave the arguments out: check then says what is missing.
    args ??= {} as ReachabilityArgs;
    // Every output is named here (undefined until the provider fills in defaults).
    // Probed again when a resource in dependsOn is written or made anew, or an interface there comes back up.
    super("Reachability", name, { from: undefined, protocol: undefined, port: undefined, expect: undefined, timeoutMs: undefined, ...args, reachable: undefined, __links: writesOf(opts?.dependsOn) }, opts);
  }
}

/** A host of a {@link reachabilityMatrix}: a {@link BridgedNetwork}'s hosts fit as they are. */
export interface MatrixHost {
  /** A short name, used in resource names (`<matrix>-<from>-to-<to>`). */
  name: string;
  /** The namespace probes from this host run in; omitted means the program's. */
  namespace?: pulumi.Input<string>;
  /** The address other hosts probe. */
  address: string;
  /** The machine probes from this host run on (a {@link BridgedNetwork}'s, when on another one). */
  host?: HostArgs;
}

/** Where a probe of a {@link reachabilityMatrix} runs from: a {@link MatrixHost} without the need for an address. */
export interface MatrixSource {
  /** A short name, used in resource names. */
  name: string;
  /** The namespace the probe runs in; omitted means the program's. */
  namespace?: pulumi.Input<string>;
  /** Not used for probing from this host; accepted so that a {@link MatrixHost} fits. */
  address?: string;
  /** The machine the probe runs on; omitted means the one that runs `pulumi`. */
  host?: HostArgs;
}

/** One probe of a {@link reachabilityMatrix} given as pairs. */
export interface MatrixPair {
  /** The host the probe runs from (its address, if given, is not used). */
  from: MatrixSource;
  /** The host probed (its namespace is not used). */
  to: Pick<MatrixHost, "name" | "address">;
  /** Overrides the matrix's expectation for this pair. */
  expect?: "reachable" | "unreachable";
  /** Overrides the matrix's protocol for this pair. */
  protocol?: "icmp" | "tcp" | "udp";
  /** Overrides the matrix's port for this pair. */
  port?: number;
}

/** A {@link reachabilityMatrix} from every host to every other. */
export interface MatrixOfHosts {
  /** The hosts: n of them make n x (n - 1) probes. */
  hosts: MatrixHost[];
}

/** A {@link reachabilityMatrix} of the pairs listed. */
export interface MatrixOfPairs {
  /** The probes, one per pair. */
  pairs: MatrixPair[];
}

/** What a {@link reachabilityMatrix} covers: every host to every other, or a list of pairs. */
export type MatrixSpec = MatrixOfHosts | MatrixOfPairs;

/** Probe settings shared by every probe of a {@link reachabilityMatrix}. */
export interface MatrixOptions {
  /** Default "icmp". */
  protocol?: "icmp" | "tcp" | "udp";
  /** For tcp and udp. */
  port?: number;
  /** Default "reachable". */
  expect?: "reachable" | "unreachable";
  /** Default 2000. */
  timeoutMs?: number;
}

/** One probe of a matrix, as made. */
export interface MatrixEntry {
  /** The host probed from. */
  from: string;
  /** The host probed. */
  to: string;
  /** Its address. */
  address: string;
  /** What the probe must find. */
  expect: "reachable" | "unreachable";
  /** The resource. */
  resource: Reachability;
}

/**
 * Reachability resources for a whole matrix: with `{ hosts }` from every host to every
 * other (n x (n - 1) probes), with `{ pairs }` for the pairs listed. Each is named
 * `<name>-<from>-to-<to>`; `opts` (e.g. `dependsOn` on the network) applies to all.
 *
 * ```ts
 * const lan = new nslab.BridgedNetwork("lan", { cidr: "10.0.0.0/24", hosts: ["a", "b", "c"] });
 * nslab.reachabilityMatrix("lan", { hosts: lan.hosts }, {}, { dependsOn: [lan] });
 * ```
 */
export function reachabilityMatrix(name: string, spec: MatrixSpec, options: MatrixOptions = {}, opts?: pulumi.CustomResourceOptions): MatrixEntry[] {
  // Hosts are told apart by name (it names the probes): two of one name are refused, not merged.
  if ("hosts" in spec) {
    const names = spec.hosts.map((h) => h.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) {
      throw new ProgramError(`reachabilityMatrix "${name}": two hosts are named "${twice}" (hosts of two networks, say); the probes are named by host, so give each host its own name in the list (e.g. { ...host, name: "lan2-${twice}" }), or list pairs.`);
    }
  }
  const pairs: MatrixPair[] =
    "hosts" in spec ? spec.hosts.flatMap((from) => spec.hosts.filter((to) => to !== from && to.name !== from.name).map((to) => ({ from, to }))) : spec.pairs;
  const seen = new Set<string>();
  return pairs.map((pair) => {
    const resourceName = `${name}-${pair.from.name}-to-${pair.to.name}`;
    if (seen.has(resourceName)) throw new ProgramError(`reachabilityMatrix "${name}": the pair ${pair.from.name} -> ${pair.to.name} is listed twice; list each pair once.`);
    seen.add(resourceName);
    const expect = pair.expect ?? options.expect ?? "reachable";
    const resource = new Reachability(
      resourceName,
      { from: pair.from.namespace, to: pair.to.address, protocol: pair.protocol ?? options.protocol, port: pair.port ?? options.port, expect, timeoutMs: options.timeoutMs, host: pair.from.host },
      opts,
    );
    return { from: pair.from.name, to: pair.to.name, address: pair.to.address, expect, resource };
  });
}
