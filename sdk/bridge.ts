import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, NslabResource } from "./base";

export interface BridgeArgs extends AdoptArgs {
  /** Interface name (`ip link add name NAME type bridge`), 1-15 characters. Changing it replaces the bridge. */
  name: pulumi.Input<string>;
  /** Namespace of the bridge; omitted means the program's. Changing it replaces the bridge. */
  namespace?: pulumi.Input<string>;
  /**
   * Addresses on the bridge itself, e.g. a gateway ("192.168.1.1/24"). Default none.
   * Updated in place.
   */
  addresses?: pulumi.Input<pulumi.Input<string>[]>;
  /** MTU, 68-65535 (`mtu N`). Default: the kernel's. Updated in place. */
  mtu?: pulumi.Input<number>;
  /**
   * Spanning tree (`type bridge stp_state 0|1`). Default false. Updated in place.
   */
  stp?: pulumi.Input<boolean>;
  /**
   * VLAN filtering (`type bridge vlan_filtering 1`). Default false. Updated in place.
   * Kernels built without CONFIG_BRIDGE_VLAN_FILTERING refuse true with a clear error.
   */
  vlanFiltering?: pulumi.Input<boolean>;
  /**
   * Ethernet address (`address MAC`), unicast. Default: the kernel's (a bridge takes
   * its lowest port's MAC). Updated in place.
   */
  mac?: pulumi.Input<string>;
  /** Administrative state (`ip link set dev NAME up|down`). Default true. Updated in place. */
  up?: pulumi.Input<boolean>;
}

/**
 * Bridges declared in this program: name -> namespace ("" for the program's), so that
 * ports can be checked at preview to be in their bridge's namespace.
 * @internal
 */
export const declaredBridges = new Map<string, string>();

/** Fails at preview when `master` names a bridge of this program in another namespace. */
export function checkMaster(owner: string, property: string, master: string | undefined, namespace: string | undefined): void {
  if (!master || !declaredBridges.has(master)) return;
  const bridgeNs = declaredBridges.get(master)!;
  if (bridgeNs !== (namespace ?? "")) {
    const where = (ns: string) => (ns ? `namespace "${ns}"` : "the program's namespace");
    throw new Error(
      `${owner}: ${property}master "${master}" is a bridge in ${where(bridgeNs)}, but the port is in ${where(namespace ?? "")}; a port and its bridge must be in the same namespace.`,
    );
  }
}

/**
 * A Linux bridge: a virtual switch joining the interfaces that name it as `master`
 * (scenario 3), optionally with addresses of its own so that the namespace it lives in
 * can route for the segment (scenario 4). nslab marks it with an alias and deletes only
 * bridges carrying its mark.
 */
export class Bridge extends NslabResource {
  /** The bridge's name: pass it as `master` of its ports. */
  declare readonly name: pulumi.Output<string>;
  /** The namespace it lives in; undefined for the program's namespace. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** Addresses with prefix length, in canonical form. */
  declare readonly addresses: pulumi.Output<string[]>;
  /** The live MAC address. */
  declare readonly mac: pulumi.Output<string>;
  /** The MTU set by the program, if any. */
  declare readonly mtu: pulumi.Output<number | undefined>;
  /** Whether spanning tree is on. */
  declare readonly stp: pulumi.Output<boolean>;
  /** Whether VLAN filtering is on. */
  declare readonly vlanFiltering: pulumi.Output<boolean>;
  /** Administrative state: true when up. */
  declare readonly up: pulumi.Output<boolean>;

  constructor(name: string, args: BridgeArgs, opts?: pulumi.CustomResourceOptions) {
    // Registered as soon as name and namespace are known, before ports check against it.
    const registered = pulumi.all([args.name, args.namespace]).apply(([bridgeName, ns]) => {
      declaredBridges.set(bridgeName, ns ?? "");
      return bridgeName;
    });
    super("Bridge", name, { mac: undefined, ...args, name: registered }, opts);
  }
}
