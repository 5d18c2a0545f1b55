import * as pulumi from "@pulumi/pulumi";
import * as ipaddr from "ipaddr.js";
import { HostArgs, NslabComponent, placeKey } from "../base";
import { checkArgs, Shape } from "./args";
import { PlanError } from "./plan";
import { Vxlan } from "../vxlan";

/** One side of a {@link HostLink}: a bridge on a host, and that host's underlay address. */
export interface HostLinkSide {
  /** The machine; omitted means the one that runs `pulumi`. */
  host?: HostArgs;
  /** The bridge the side's VXLAN device joins (a `Bridge`'s name, on that host). */
  bridge: pulumi.Input<string>;
  /** The namespace of the bridge and of the underlay; omitted means the host's own. */
  namespace?: pulumi.Input<string>;
  /** This host's underlay address: the other side sends the encapsulated frames to it. */
  address: string;
  /** The VXLAN device's name on this side; default `vx<vni>`. */
  name?: string;
}

/** Arguments of {@link HostLink}. */
export interface HostLinkArgs {
  /** The VXLAN network identifier (1-16777215), the same on both sides. */
  vni: number;
  /** One side: its host, bridge and underlay address (its Vxlan sends to side b's). */
  a: HostLinkSide;
  /** The other side: its host, bridge and underlay address (its Vxlan sends to side a's). */
  b: HostLinkSide;
  /** UDP port of the tunnel; default 4789 (IANA's). */
  dstPort?: number;
  /**
   * Whether each side's device learns which MAC is behind the remote end; default true.
   * With only one remote per side there is nothing else to learn: off changes nothing
   * but the flooding of unknown destinations, which then all go to the one peer.
   */
  learning?: boolean;
  /**
   * The devices' MTU. Default: the kernel's, 50 bytes less than the underlay (IPv4); set
   * it (and the bridge's other ports' MTU) when the segment needs a fixed value.
   */
  mtu?: number;
}

const SIDE_ARGS: Shape = { host: "host", "bridge!": "input", namespace: "input", "address!": "string", name: "string" };
const HOST_LINK_ARGS: Shape = { "vni!": "number", "a!": SIDE_ARGS, "b!": SIDE_ARGS, dstPort: "number", learning: "boolean", mtu: "number" };

/** Refuses arguments that cannot make a link, naming the argument and the fix. */
export function checkHostLink(name: string, args: HostLinkArgs): void {
  checkArgs(`HostLink "${name}"`, args, HOST_LINK_ARGS);
  const fail = (why: string) => {
    throw new PlanError(`HostLink "${name}": ${why}`);
  };
  if (!Number.isInteger(args.vni) || args.vni < 1 || args.vni > 16777215) fail(`vni must be an integer from 1 to 16777215, got ${JSON.stringify(args.vni)}.`);
  for (const side of ["a", "b"] as const) {
    const address = args[side]?.address;
    if (typeof address !== "string" || !ipaddr.isValid(address)) fail(`${side}.address must be the host's underlay IP address (no prefix length), got ${JSON.stringify(address)}.`);
    if (ipaddr.parse(address).range() === "multicast") fail(`${side}.address ${address} is a multicast address; give the host's own unicast underlay address.`);
  }
  const [a, b] = [ipaddr.parse(args.a.address), ipaddr.parse(args.b.address)];
  if (a.kind() !== b.kind()) fail(`a.address ${args.a.address} is ${a.kind()} but b.address ${args.b.address} is ${b.kind()}; both ends of the underlay must be of one family.`);
  if (a.toString() === b.toString()) fail(`a.address and b.address are both ${args.a.address}; each side needs its own underlay address.`);
  // One machine is one ssh address and port, as the SDK's other place checks see it ({ port: 22 } and no port alike).
  const oneMachine = placeKey(undefined, args.a.host) === placeKey(undefined, args.b.host);
  if (oneMachine && (args.a.name ?? `vx${args.vni}`) === (args.b.name ?? `vx${args.vni}`) && args.a.namespace === args.b.namespace) {
    fail(`both sides are on the same host and namespace with one device name; give them different namespaces (or a.name/b.name).`);
  }
}

/**
 * Joins two bridges on two hosts into one Ethernet segment: a {@link Vxlan} on each side,
 * a port of the side's bridge, sending to the other side's underlay address. The way
 * containerlab's `vxlan` links and netlab's multi-server labs stitch machines, as
 * resources: previewed, checked for drift, removed with the lab.
 *
 *   [br0 + vx42] host a  ==== UDP 4789, vni 42 ====  host b [vx42 + br0]
 */
export class HostLink extends NslabComponent {
  /** The Vxlan on side a. */
  readonly a: Vxlan;
  /** The Vxlan on side b. */
  readonly b: Vxlan;

  constructor(name: string, args: HostLinkArgs, opts?: pulumi.ComponentResourceOptions) {
    checkHostLink(name, args);
    super("nslab:index:HostLink", name, {}, opts);
    const side = (self: HostLinkSide, other: HostLinkSide, role: "a" | "b") =>
      new Vxlan(
        `${name}-${role}`,
        {
          host: self.host,
          name: self.name ?? `vx${args.vni}`,
          namespace: self.namespace,
          vni: args.vni,
          local: self.address,
          remote: other.address,
          dstPort: args.dstPort ?? 4789,
          learning: args.learning,
          mtu: args.mtu,
          master: self.bridge,
        },
        { parent: this },
      );
    this.a = side(args.a, args.b, "a");
    this.b = side(args.b, args.a, "b");
    this.registerOutputs({});
  }

  /** Its two ends' generations: a resource that depends on the link is written again when one is made anew. @internal */
  linkGenerations(keyed = false): pulumi.Output<string | undefined>[] {
    return [...this.a.linkGenerations(keyed), ...this.b.linkGenerations(keyed)];
  }
}
