import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, NslabLink, OnHostArgs } from "./base";
import { checkMaster, declaredBridges } from "./bridge";
import { captureCall } from "./callsites";

/** One end of a veth pair. */
export interface VethEndArgs {
  /**
   * Interface name (`ip link add name NAME ...`): 1-15 characters of letters, digits,
   * '_', '.', '-'. Changing it replaces the pair.
   */
  name: pulumi.Input<string>;
  /**
   * Namespace the end lives in (`... netns NS`); omitted means the namespace the
   * program runs in. Pass a `Namespace`'s `.name` so Pulumi creates it first.
   * Changing it replaces the pair (moving an end would drop its addresses).
   */
  namespace?: pulumi.Input<string>;
  /**
   * Addresses with prefix length, IPv4 or IPv6 (`ip addr add 192.168.1.1/24 dev NAME`).
   * Default none. Updated in place: only the difference is added or removed.
   */
  addresses?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Ethernet address (`ip link set dev NAME address MAC`), unicast, e.g.
   * "02:00:00:00:00:01". Default: a stable, locally administered MAC derived from the
   * project, stack, resource name and end ("a" or "b"), the same every time the pair is
   * recreated (an adopted end keeps its own). Updated in place.
   */
  mac?: pulumi.Input<string>;
  /**
   * A bridge in the same namespace that this end is a port of
   * (`ip link set dev NAME master BR`). Pass a `Bridge`'s `.name`. Updated in place
   * (attach, move, or detach with `nomaster`).
   */
  master?: pulumi.Input<string>;
  /** Administrative state (`ip link set dev NAME up|down`). Default true. Updated in place. */
  up?: pulumi.Input<boolean>;
}

/** An end as the outputs report it. */
export interface VethEndState {
  /** The interface's name. */
  name: string;
  /** The namespace it lives in; undefined for the program's namespace. */
  namespace?: string;
  /** Addresses with prefix length, in canonical form. */
  addresses: string[];
  /** The live MAC address (the kernel's when none was set). */
  mac: string;
  /** The bridge it is a port of, if any. */
  master?: string;
  /** Administrative state: true when up. */
  up: boolean;
}

export interface VethPairArgs extends AdoptArgs, OnHostArgs {
  /** End "a" (created first: `ip link add name A ... type veth peer name B ...`). */
  a: pulumi.Input<VethEndArgs>;
  /** End "b", the peer. */
  b: pulumi.Input<VethEndArgs>;
  /** MTU of both ends (`mtu N`), 68-65535. Default: the kernel's (1500). Updated in place. */
  mtu?: pulumi.Input<number>;
}

/**
 * A veth pair: two virtual Ethernet interfaces joined back to back, a packet sent into
 * one leaves the other ("a network cable with a NIC at each end", scenario 2). Each end
 * can live in its own namespace and can be a bridge port (scenario 3).
 *
 * Equivalent to `ip link add name A netns NSA type veth peer name B netns NSB`, then
 * addresses, master and `up` on each end. nslab marks both ends with an alias and
 * deletes only ends carrying its mark.
 */
export class VethPair extends NslabLink {
  /** End a, with its live MAC. */
  declare readonly a: pulumi.Output<VethEndState>;
  /** End b, with its live MAC. */
  declare readonly b: pulumi.Output<VethEndState>;
  /** The MTU set on both ends, if any. */
  declare readonly mtu: pulumi.Output<number | undefined>;

  constructor(name: string, args: VethPairArgs, opts?: pulumi.CustomResourceOptions) {
    // A JavaScript program may leave the arguments out: check then says what is missing.
    args ??= {} as VethPairArgs;
    // Each end passes through a check that its bridge (if this program declares it) is in
    // the end's namespace, so `pulumi preview` reports a mismatch.
    const bridges = declaredBridges();
    const call = captureCall();
    const end = (e: pulumi.Input<VethEndArgs>, label: "a" | "b") =>
      pulumi.all([e, args.host]).apply(([v, host]) => {
        checkMaster(bridges, `VethPair "${name}"`, `${label}.`, v?.master, v?.namespace, host, call);
        return v;
      });
    // Every argument goes to check, a misspelt one too, so that preview names it.
    super("VethPair", name, { ...args, a: end(args.a, "a"), b: end(args.b, "b") }, opts);
  }
}
