import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, NslabResource, OnHostArgs, placeKey, placeText } from "./base";
import { captureCall } from "./callsites";
import { ProgramError } from "./errors";
import { runRegistry } from "./scope";

export interface IpForwardingArgs extends AdoptArgs, OnHostArgs {
  /** Namespace whose switches to set; omitted means the program's. Changing it replaces the resource. */
  namespace?: pulumi.Input<string>;
  /** `net.ipv4.ip_forward`: true forwards IPv4 between interfaces. Omitted: left alone. Updated in place. */
  ipv4?: pulumi.Input<boolean>;
  /** `net.ipv6.conf.all.forwarding`. Omitted: left alone. Updated in place. */
  ipv6?: pulumi.Input<boolean>;
}



/**
 * The IP forwarding switches of a namespace (scenario 4: a router forwards between its
 * subnets once forwarding is on). Equivalent to `ip netns exec NS sysctl -w
 * net.ipv4.ip_forward=1`. The values found at create are recorded (`previousIpv4`,
 * `previousIpv6`) and restored on delete.
 *
 * One switch has one owner: two IpForwarding resources that manage the same switch of
 * the same namespace in one program are an error, reported by `pulumi preview`
 * (otherwise deleting one would restore a value the other still needs).
 */
export class IpForwarding extends NslabResource {
  /** The namespace whose switches are managed; undefined for the program's. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** Desired IPv4 forwarding, if managed. */
  declare readonly ipv4: pulumi.Output<boolean | undefined>;
  /** Desired IPv6 forwarding, if managed. */
  declare readonly ipv6: pulumi.Output<boolean | undefined>;
  /** net.ipv4.ip_forward as found before create ("0"/"1"); restored on delete. */
  declare readonly previousIpv4: pulumi.Output<string | undefined>;
  /** net.ipv6.conf.all.forwarding as found before create; restored on delete. */
  declare readonly previousIpv6: pulumi.Output<string | undefined>;

  constructor(name: string, args: IpForwardingArgs, opts?: pulumi.CustomResourceOptions) {
    // A JavaScript program may leave the arguments out: check then says what is missing.
    args ??= {} as IpForwardingArgs;
    // The namespace passes through the claim, so a duplicate fails before registering.
    // Claims are per program run (scope.ts).
    const claimed = runRegistry("forwarding", () => new Map<string, string>());
    const call = captureCall();
    const namespace = pulumi.all([args.namespace, args.ipv4, args.ipv6, args.host]).apply(([ns, v4, v6, host]) => {
      for (const [family, value] of [["ipv4", v4], ["ipv6", v6]] as const) {
        if (value === undefined) continue;
        const key = `${placeKey(ns, host)}|${family}`;
        const other = claimed.get(key);
        if (other && other !== name) {
          throw new ProgramError(
            `IpForwarding "${name}": ${family} forwarding in ${placeText(placeKey(ns, host))} is already managed by IpForwarding "${other}". Manage each switch with one resource (a Router, and a NatGateway unless given forwarding: false, make one of their own, named NAME-forwarding).`,
            call,
          );
        }
        claimed.set(key, name);
      }
      return ns;
    });
    super("IpForwarding", name, { ...args, namespace, previousIpv4: undefined, previousIpv6: undefined }, opts);
  }
}
