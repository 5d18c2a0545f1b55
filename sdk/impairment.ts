import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, linksOf, NslabResource, OnHostArgs } from "./base";

/**
 * One direction's impairments. Every field is optional and changes in place (the
 * interface keeps its ifindex and never goes down); removing a field removes what
 * applied it.
 */
export interface ImpairmentArgs {
  /**
   * Rate limit in tc's units: `bit`, `kbit`, `mbit`, `gbit`, `tbit`, `kibit`..., and
   * `bps`, `kbps`, `mbps`... (bytes per second), e.g. "10mbit". Applied by a `tbf`
   * qdisc (egress: on the device; ingress: on an ifb that nslab makes).
   */
  rate?: pulumi.Input<string>;
  /**
   * tbf bucket size: `b`, `kb`, `mb`, `gb` (kb = 1024 bytes, as tc reads it). Needs
   * rate; at least rate / 250 bytes (tbf's burst >= rate / HZ, HZ = 250 assumed) and
   * one 1514-byte frame. Default: 32kb, or that minimum when larger.
   */
  burst?: pulumi.Input<string>;
  /**
   * Fraction of packets dropped, 0..1 (0.05 = 5%), in steps of 0.000001. Applied by an
   * nftables `netdev` chain on the device's ingress or egress hook
   * (`numgen random mod 1000000 < K drop`).
   */
  loss?: pulumi.Input<number>;
  /**
   * Added delay (`s`, `ms`, `us`), by a `netem` qdisc. Kernels without netem
   * (sch_netem) are detected: create and update fail at once, saying so.
   */
  delay?: pulumi.Input<string>;
  /** Delay variation (+/-) of netem; needs delay. */
  jitter?: pulumi.Input<string>;
}

/** One direction's impairments as normalised by nslab (canonical units, burst filled in). */
export interface ImpairmentState {
  /** Rate, canonical ("10mbit"). */
  rate?: string;
  /** Burst, canonical ("32kb"); the default when rate is set without it. */
  burst?: string;
  /** Loss fraction. */
  loss?: number;
  /** Delay, canonical ("40ms"). */
  delay?: string;
  /** Jitter, canonical ("5ms"). */
  jitter?: string;
}

export interface LinkImpairmentArgs extends AdoptArgs, OnHostArgs {
  /**
   * The interface to impair: a VethPair end, a Bridge or a TapDevice (pass its name and
   * `dependsOn` it). Changing it replaces the resource.
   */
  device: pulumi.Input<string>;
  /** The interface's namespace; omitted means the program's. Changing it replaces the resource. */
  namespace?: pulumi.Input<string>;
  /** What leaves through the device. */
  egress?: pulumi.Input<ImpairmentArgs>;
  /** What arrives on the device. */
  ingress?: pulumi.Input<ImpairmentArgs>;
}

/**
 * Rate, loss and delay of one interface, per direction, as a resource: changed in place
 * by `pulumi up`, restored by removing it, and drift-checked (a qdisc deleted or changed
 * by hand, or the loss chain flushed, shows in `pulumi preview --refresh`).
 *
 * ```ts
 * new nslab.LinkImpairment("wan-slow", {
 *   device: "wan0", namespace: wan.name,
 *   egress: { rate: "10mbit", loss: 0.05 },
 *   ingress: { rate: "2mbit" },
 * }, { dependsOn: [link] });
 * ```
 *
 * What nslab makes: a `tbf` (or `netem`) root qdisc on the device for egress; for
 * ingress rate/delay an `ifb` device (output `ifb`) fed by an `ingress` qdisc with a
 * `u32` + `mirred` redirect; for loss an nftables table `netdev nslab_imp_<hash>`
 * (output `lossTable`; `inet` and `bridge` tables of that name for ingress loss with a
 * rate or delay). Deleting the resource removes exactly these, so the kernel
 * puts the device's default qdisc back; an `ingress` or `clsact` qdisc that was there
 * before (output `ingressQdiscFound`) stays. A root qdisc nslab did not make is refused
 * at create unless `adopt: true` (which replaces it).
 */
export class LinkImpairment extends NslabResource {
  /** The impaired interface. */
  declare readonly device: pulumi.Output<string>;
  /** Its namespace; undefined for the program's. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** Egress impairments, normalised. */
  declare readonly egress: pulumi.Output<ImpairmentState | undefined>;
  /** Ingress impairments, normalised. */
  declare readonly ingress: pulumi.Output<ImpairmentState | undefined>;
  /** The ifb device nslab made for ingress rate/delay, or null. */
  declare readonly ifb: pulumi.Output<string | null>;
  /** The nftables table (family netdev; inet and bridge behind an ifb) holding the loss rules, or null. */
  declare readonly lossTable: pulumi.Output<string | null>;
  /** True when the device's ingress (or clsact) qdisc was someone else's: it stays when the redirect goes. */
  declare readonly ingressQdiscFound: pulumi.Output<true | undefined>;

  constructor(name: string, args: LinkImpairmentArgs, opts?: pulumi.CustomResourceOptions) {
    // A JavaScript program may leave the arguments out: check then says what is missing.
    args ??= {} as LinkImpairmentArgs;
    // Written again when an interface in dependsOn is made anew or comes back up.
    super("LinkImpairment", name, { ifb: undefined, lossTable: undefined, ingressQdiscFound: undefined, ...args, __links: linksOf(opts?.dependsOn) }, opts);
  }
}
