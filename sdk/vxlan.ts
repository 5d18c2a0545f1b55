import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, linksOf, NslabLink, OnHostArgs } from "./base";
import { checkMaster, declaredBridges } from "./bridge";
import { captureCall } from "./callsites";

export interface VxlanArgs extends AdoptArgs, OnHostArgs {
  /**
   * Interface name, 1-15 characters (`ip link add name NAME type vxlan`). Default: the
   * resource's name, when that is a valid interface name (otherwise preview fails asking
   * for one). Changing it replaces the device.
   */
  name?: pulumi.Input<string>;
  /** Namespace of the device (and of its underlay); omitted means the program's. Changing it replaces the device. */
  namespace?: pulumi.Input<string>;
  /**
   * VXLAN network identifier (`id VNI`), 1-16777215, the same on every end of the
   * segment. Required. Changing it replaces the device (the kernel cannot change it).
   */
  vni: pulumi.Input<number>;
  /**
   * Source address of the encapsulated packets (`local A`): an underlay address of this
   * namespace, of the same family as remote or group. Default: chosen by the kernel's
   * routing. Updated in place; removing it or changing its family replaces the device.
   */
  local?: pulumi.Input<string>;
  /**
   * The peer's underlay address (`remote B`), unicast. Give exactly one of remote and
   * group. Updated in place (also a switch to or from group); a change of address family
   * replaces the device.
   */
  remote?: pulumi.Input<string>;
  /**
   * A multicast group of peers (`group G dev D`); needs `device`. Give exactly one of
   * remote and group. Updated in place; a change of address family replaces the device.
   */
  group?: pulumi.Input<string>;
  /**
   * The underlay interface the encapsulated packets use (`dev D`), in the same
   * namespace; required with group. Updated in place; removing it replaces the device.
   * The kernel deletes a VXLAN device with its underlay device: give the interface that
   * holds it (a VethPair, ...) in `dependsOn`, and the Vxlan is made again in the same
   * `pulumi up` when that interface is made anew.
   */
  device?: pulumi.Input<string>;
  /**
   * UDP destination port (`dstport P`), 1-65535. Default 4789 (the IANA VXLAN port).
   * Changing it replaces the device (the kernel cannot change it).
   */
  dstPort?: pulumi.Input<number>;
  /**
   * Learn the MACs behind remote ends from received packets (`learning` /
   * `nolearning`). Default true. Updated in place.
   */
  learning?: pulumi.Input<boolean>;
  /** A bridge in the same namespace this device is a port of (`master BR`). Updated in place. */
  master?: pulumi.Input<string>;
  /**
   * MTU, 68-65535. Default: the kernel's, which is the underlay device's MTU less the
   * encapsulation (50 bytes over IPv4) when `device` is given, and 1500 otherwise (so
   * full-size frames over a 1500-byte underlay leave as fragmented UDP; set 1450 to
   * avoid that). Updated in place.
   */
  mtu?: pulumi.Input<number>;
  /** Addresses with prefix length on the overlay device itself. Default none. Updated in place. */
  addresses?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Ethernet address, unicast. Default: a stable, locally administered MAC derived from
   * the project, stack and resource name, the same every time the device is recreated
   * (an adopted device keeps its own). Updated in place.
   */
  mac?: pulumi.Input<string>;
  /** Administrative state. Default true. Updated in place. */
  up?: pulumi.Input<boolean>;
}

/**
 * A VXLAN device: an Ethernet segment carried in UDP (port 4789) over an IP underlay.
 * Made a port of a bridge (`master`), it joins that bridge to the bridge behind the
 * remote end, so that hosts on both are on one layer-2 segment. Equivalent to
 * `ip link add NAME type vxlan id VNI [local A] [remote B | group G dev D] dstport P
 * [nolearning]`. nslab marks it with an alias and deletes only devices carrying its mark.
 *
 * In place: local, remote, group, device, learning, master, mtu, mac, addresses, up.
 * Replaced: name, namespace, vni, dstPort, and a change of the endpoints' address family
 * or the removal of local or device (the kernel refuses those on a live device).
 */
export class Vxlan extends NslabLink {
  /** The interface's name. */
  declare readonly name: pulumi.Output<string>;
  /** The namespace it lives in; undefined for the program's namespace. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** The VXLAN network identifier. */
  declare readonly vni: pulumi.Output<number>;
  /** The local underlay address, if given. */
  declare readonly local: pulumi.Output<string | undefined>;
  /** The unicast peer, if any. */
  declare readonly remote: pulumi.Output<string | undefined>;
  /** The multicast group, if any. */
  declare readonly group: pulumi.Output<string | undefined>;
  /** The underlay interface, if given. */
  declare readonly device: pulumi.Output<string | undefined>;
  /** The UDP destination port. */
  declare readonly dstPort: pulumi.Output<number>;
  /** Whether remote MACs are learnt from received packets. */
  declare readonly learning: pulumi.Output<boolean>;
  /** The MAC address: the program's, the stable default, or (adopted) the live one. */
  declare readonly mac: pulumi.Output<string>;
  /** Addresses with prefix length, in canonical form. */
  declare readonly addresses: pulumi.Output<string[]>;
  /** The bridge it is a port of, if any. */
  declare readonly master: pulumi.Output<string | undefined>;
  /** Administrative state: true when up. */
  declare readonly up: pulumi.Output<boolean>;

  constructor(name: string, args: VxlanArgs, opts?: pulumi.CustomResourceOptions) {
    // A JavaScript program may leave the arguments out: check then says what is missing.
    args ??= {} as VxlanArgs;
    const bridges = declaredBridges();
    const call = captureCall();
    const master = pulumi.all([args.master, args.namespace, args.host]).apply(([m, ns, host]) => {
      checkMaster(bridges, `Vxlan "${name}"`, "", m, ns, host, call);
      return m;
    });
    super("Vxlan", name, { mac: undefined, ...args, master, __links: linksOf(opts?.dependsOn) }, opts);
  }
}
