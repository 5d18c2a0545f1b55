import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, NslabResource, OnHostArgs } from "./base";

export interface NatRuleArgs extends AdoptArgs, OnHostArgs {
  /** Namespace whose nftables get the rule; omitted means the program's. Changing it replaces the rule. */
  namespace?: pulumi.Input<string>;
  /**
   * "masquerade" (source NAT to the outgoing interface's address), "snat" (source NAT to
   * toAddress) or "dnat" (destination NAT to toAddress[:toPort], a port forward).
   * Updated in place (the rule is rewritten atomically).
   */
  kind: pulumi.Input<"masquerade" | "snat" | "dnat">;
  /** Match source network ("192.168.1.0/24") or address. Updated in place. */
  source?: pulumi.Input<string>;
  /** Match destination network or address. Updated in place. */
  destination?: pulumi.Input<string>;
  /** Match outgoing interface (masquerade, snat). Updated in place. */
  outInterface?: pulumi.Input<string>;
  /** Match incoming interface (dnat). Updated in place. */
  inInterface?: pulumi.Input<string>;
  /** "tcp" or "udp"; needed for port and toPort. Updated in place. */
  protocol?: pulumi.Input<"tcp" | "udp">;
  /** Match destination port (with protocol). Updated in place. */
  port?: pulumi.Input<number>;
  /** Address to translate to (snat, dnat). Updated in place. */
  toAddress?: pulumi.Input<string>;
  /** Port to translate to (with protocol). Updated in place. */
  toPort?: pulumi.Input<number>;
}

/**
 * A NAT rule in nftables (scenario 4: the way out, and port forwards in).
 *
 * nslab keeps its rules in one table per namespace, `inet nslab`, with base chains
 * `postrouting` (masquerade, snat) and `prerouting` (dnat) made on demand. Each rule
 * carries a comment with its resource's tag; changes are atomic `nft -f -`
 * transactions; the table is removed with its last rule. A rule deleted or altered by
 * hand is drift.
 *
 * A dnat port forward needs, in the forward path: forwarding on in the namespace
 * (`IpForwarding`), a route back from the target to the client (usually the target's
 * default route via this namespace), and no filter rule dropping the forwarded
 * traffic. nslab adds no filter rules. Connections made from the namespace itself
 * (output hook) are not translated by a prerouting rule.
 */
export class NatRule extends NslabResource {
  /** The namespace whose nftables hold the rule; undefined for the program's. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** "masquerade", "snat" or "dnat". */
  declare readonly kind: pulumi.Output<"masquerade" | "snat" | "dnat">;
  /** "ipv4" or "ipv6", from the addresses given (ipv4 when none). */
  declare readonly family: pulumi.Output<"ipv4" | "ipv6">;
  /** Matched source network, canonical, if any. */
  declare readonly source: pulumi.Output<string | undefined>;
  /** Matched destination network, canonical, if any. */
  declare readonly destination: pulumi.Output<string | undefined>;
  /** Matched outgoing interface, if any. */
  declare readonly outInterface: pulumi.Output<string | undefined>;
  /** Matched incoming interface, if any. */
  declare readonly inInterface: pulumi.Output<string | undefined>;
  /** Matched protocol, if any. */
  declare readonly protocol: pulumi.Output<"tcp" | "udp" | undefined>;
  /** Matched destination port, if any. */
  declare readonly port: pulumi.Output<number | undefined>;
  /** Address translated to (snat, dnat). */
  declare readonly toAddress: pulumi.Output<string | undefined>;
  /** Port translated to, if any. */
  declare readonly toPort: pulumi.Output<number | undefined>;

  constructor(name: string, args: NatRuleArgs, opts?: pulumi.CustomResourceOptions) {
    // A JavaScript program may leave the arguments out: check then says what is missing.
    args ??= {} as NatRuleArgs;
    super("NatRule", name, { family: undefined, ...args }, opts);
  }
}
