import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, linksOf, NslabResource, OnHostArgs } from "./base";

export interface RouteArgs extends AdoptArgs, OnHostArgs {
  /** Namespace whose routing table holds the route; omitted means the program's. Changing it replaces the route. */
  namespace?: pulumi.Input<string>;
  /**
   * "default", or a network such as "10.0.0.0/8" or "fd00:1::/64" (host bits must be
   * zero). Part of the route's identity: changing it replaces the route.
   */
  destination: pulumi.Input<string>;
  /**
   * "ipv4" or "ipv6". Default: the family of the destination, else of the gateway or
   * source, else IPv4. Needed only for a `default` route with just a device: an IPv6
   * one is `{ destination: "default", family: "ipv6", device }` (or destination "::/0").
   * Part of the identity: replaces.
   */
  family?: pulumi.Input<"ipv4" | "ipv6">;
  /**
   * Next hop (`via GW`), of the destination's family; it must be on the subnet of an
   * interface that is up, so make the route depend on that interface. Updated in place
   * (`ip route replace`).
   */
  gateway?: pulumi.Input<string>;
  /** Outgoing interface (`dev NAME`). A route needs a gateway, a device or both. Updated in place. */
  device?: pulumi.Input<string>;
  /** Route metric (`metric N`). Default: the kernel's (0 for IPv4, 1024 for IPv6). Part of the identity: replaces. */
  metric?: pulumi.Input<number>;
  /** Routing table number (`table N`). Default: main. Part of the identity: replaces. */
  table?: pulumi.Input<number>;
  /** Preferred source address (`src ADDR`), of the destination's family. Updated in place. */
  source?: pulumi.Input<string>;
}

/**
 * A route (scenario 4): `ip route add DEST [via GW] [dev DEV] [metric M] [table T]
 * [src S] proto 151`. nslab's routes carry protocol 151, so refresh recognises them and
 * delete removes only them. Identity is (destination, table, metric).
 */
export class Route extends NslabResource {
  /** The namespace whose routing table holds the route; undefined for the program's. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** "default" or the canonical network. */
  declare readonly destination: pulumi.Output<string>;
  /** "ipv4" or "ipv6". */
  declare readonly family: pulumi.Output<"ipv4" | "ipv6">;
  /** The next hop, canonical, if any. */
  declare readonly gateway: pulumi.Output<string | undefined>;
  /** The outgoing interface, if set. */
  declare readonly device: pulumi.Output<string | undefined>;
  /** The metric set by the program, if any (part of the route's identity). */
  declare readonly metric: pulumi.Output<number | undefined>;
  /** The routing table set by the program, if any (part of the route's identity). */
  declare readonly table: pulumi.Output<number | undefined>;
  /** The preferred source address, if any. */
  declare readonly source: pulumi.Output<string | undefined>;

  constructor(name: string, args: RouteArgs, opts?: pulumi.CustomResourceOptions) {
    // A JavaScript program may leave the arguments out: check then says what is missing.
    args ??= {} as RouteArgs;
    // Written again when an interface in dependsOn is made anew or comes back up.
    super("Route", name, { family: undefined, ...args, __links: linksOf(opts?.dependsOn) }, opts);
  }
}
