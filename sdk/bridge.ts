import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, HostArgs, NslabLink, OnHostArgs, placeKey, placeText } from "./base";
import { ProgramError } from "./errors";
import { runRegistry } from "./scope";

export interface BridgeArgs extends AdoptArgs, OnHostArgs {
  /**
   * Interface name (`ip link add name NAME type bridge`), 1-15 characters. Default: the
   * resource's name, when that is a valid interface name (otherwise preview fails asking
   * for one). Changing it replaces the bridge.
   */
  name?: pulumi.Input<string>;
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
   * Ethernet address (`address MAC`), unicast. Default: a stable, locally administered
   * MAC derived from the project, stack and resource name, set explicitly at create, so
   * it is the same every time the bridge is (re)created and never moves when ports come
   * and go (a Linux bridge without an address of its own takes its lowest port's MAC,
   * and its hosts then hold a stale ARP entry for the gateway). With `adopt`, the
   * adopted bridge keeps its own unless this is given. Updated in place.
   */
  mac?: pulumi.Input<string>;
  /** Administrative state (`ip link set dev NAME up|down`). Default true. Updated in place. */
  up?: pulumi.Input<boolean>;
}

/**
 * Bridges declared in this program run: name -> the namespaces that have a bridge of
 * that name ("" for the program's), so that ports can be checked at preview to be in
 * their bridge's namespace. One name may be a bridge in several namespaces (a `br0` per
 * site): a port is fine when its own namespace has one.
 * @internal
 */
export function declaredBridges(): Map<string, Set<string>> {
  return runRegistry("bridges", () => new Map<string, Set<string>>());
}

/**
 * Fails at preview when `master` names a bridge this program declares only in other
 * namespaces than the port's. `bridges` is the run's {@link declaredBridges}, taken when
 * the port was constructed.
 * @internal
 */
export function checkMaster(bridges: Map<string, Set<string>>, owner: string, property: string, master: string | undefined, namespace: string | undefined, host?: HostArgs, call?: Error): void {
  const namespaces = master ? bridges.get(master) : undefined;
  const place = placeKey(namespace, host);
  if (!namespaces || namespaces.has(place)) return;
  throw new ProgramError(
    `${owner}: ${property}master "${master}" is a bridge in ${[...namespaces].map(placeText).join(" and ")}, but the port is in ${placeText(place)}; a port and its bridge must be in the same namespace (and on the same host).`,
    call,
  );
}

/**
 * A Linux bridge: a virtual switch joining the interfaces that name it as `master`
 * (scenario 3), optionally with addresses of its own so that the namespace it lives in
 * can route for the segment (scenario 4). nslab marks it with an alias and deletes only
 * bridges carrying its mark.
 */
export class Bridge extends NslabLink {
  /** The bridge's name: pass it as `master` of its ports. */
  declare readonly name: pulumi.Output<string>;
  /** The namespace it lives in; undefined for the program's namespace. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** Addresses with prefix length, in canonical form. */
  declare readonly addresses: pulumi.Output<string[]>;
  /** The MAC address: the program's, the stable default, or (adopted) the live one. */
  declare readonly mac: pulumi.Output<string>;
  /** The MTU set by the program, if any. */
  declare readonly mtu: pulumi.Output<number | undefined>;
  /** Whether spanning tree is on. */
  declare readonly stp: pulumi.Output<boolean>;
  /** Whether VLAN filtering is on. */
  declare readonly vlanFiltering: pulumi.Output<boolean>;
  /** Administrative state: true when up. */
  declare readonly up: pulumi.Output<boolean>;

  constructor(name: string, args: BridgeArgs = {}, opts?: pulumi.CustomResourceOptions) {
    // Registered as soon as name and namespace are known, before ports check against it.
    const bridges = declaredBridges();
    const registered = pulumi.all([args.name, args.namespace, args.host]).apply(([bridgeName, ns, host]) => {
      const key = bridgeName ?? name;
      bridges.set(key, (bridges.get(key) ?? new Set<string>()).add(placeKey(ns, host)));
      return bridgeName;
    });
    // Without a name the provider takes the resource's name (and checks it).
    super("Bridge", name, { mac: undefined, ...args, name: args.name === undefined ? undefined : registered }, opts);
  }
}
