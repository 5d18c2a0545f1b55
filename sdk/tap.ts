import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, NslabLink, OnHostArgs } from "./base";
import { checkMaster, declaredBridges } from "./bridge";
import { captureCall } from "./callsites";

export interface TapDeviceArgs extends AdoptArgs, OnHostArgs {
  /**
   * Interface name, 1-15 characters (`ip tuntap add dev NAME`). Default: the resource's
   * name, when that is a valid interface name (otherwise preview fails asking for one).
   * Changing it replaces the device.
   */
  name?: pulumi.Input<string>;
  /** Namespace of the device; omitted means the program's. Changing it replaces the device. */
  namespace?: pulumi.Input<string>;
  /**
   * "tap" (Ethernet frames; can be a bridge port) or "tun" (IP packets). Default "tap".
   * Changing it replaces the device.
   */
  mode?: pulumi.Input<"tap" | "tun">;
  /** User id allowed to open the device without CAP_NET_ADMIN (`user UID`). Changing it replaces the device. */
  owner?: pulumi.Input<number>;
  /** Group id allowed to open the device (`group GID`). Changing it replaces the device. */
  group?: pulumi.Input<number>;
  /** Several queues, one per opener (`multi_queue`). Default false. Changing it replaces the device. */
  multiQueue?: pulumi.Input<boolean>;
  /** Addresses with prefix length. Default none. Updated in place. */
  addresses?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Ethernet address (tap only), unicast. Default: a stable, locally administered MAC
   * derived from the project, stack and resource name, the same every time the tap is
   * recreated (adopted taps keep theirs). Updated in place.
   */
  mac?: pulumi.Input<string>;
  /** A bridge in the same namespace this tap is a port of (tap only). Updated in place. */
  master?: pulumi.Input<string>;
  /** MTU, 68-65535. Default: the kernel's. Updated in place. */
  mtu?: pulumi.Input<number>;
  /**
   * Administrative state. Default true. Updated in place. The link has carrier (and
   * passes traffic) only while a program holds the device open.
   */
  up?: pulumi.Input<boolean>;
}

/**
 * A persistent tap or tun device (scenario 5): what the kernel sends to the interface
 * a user-space program reads from /dev/net/tun (TUNSETIFF with the device's name), and
 * what the program writes appears as received on the interface.
 * Equivalent to `ip tuntap add dev NAME mode tap|tun [user U] [group G] [multi_queue]`.
 */
export class TapDevice extends NslabLink {
  /** The interface's name. */
  declare readonly name: pulumi.Output<string>;
  /** The namespace it lives in; undefined for the program's namespace. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** "tap" (Ethernet frames) or "tun" (IP packets). */
  declare readonly mode: pulumi.Output<"tap" | "tun">;
  /** The MAC address (tap): the program's, the stable default, or (adopted) the live one. */
  declare readonly mac: pulumi.Output<string>;
  /** Addresses with prefix length, in canonical form. */
  declare readonly addresses: pulumi.Output<string[]>;
  /** The bridge it is a port of, if any. */
  declare readonly master: pulumi.Output<string | undefined>;
  /** Administrative state: true when up. */
  declare readonly up: pulumi.Output<boolean>;

  constructor(name: string, args: TapDeviceArgs = {}, opts?: pulumi.CustomResourceOptions) {
    const bridges = declaredBridges();
    const call = captureCall();
    const master = pulumi.all([args.master, args.namespace, args.host]).apply(([m, ns, host]) => {
      checkMaster(bridges, `TapDevice "${name}"`, "", m, ns, host, call);
      return m;
    });
    super("TapDevice", name, { mac: undefined, ...args, master }, opts);
  }
}
