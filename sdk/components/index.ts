/**
 * Components: whole labs in a few lines, built only from nslab's seven resources.
 */
import * as ipaddr from "ipaddr.js";
import * as pulumi from "@pulumi/pulumi";
import { Bridge } from "../bridge";
import { ImpairmentArgs, LinkImpairment } from "../impairment";
import { IpForwarding } from "../forwarding";
import { NatRule } from "../nat";
import { Namespace } from "../namespace";
import { Route } from "../route";
import { VethPair } from "../veth";
import { checkArgs, Shape } from "./args";
import { addressIn, Allocation, HostSpec, interfaceName, NetworkPlan, overlaps, PlanError, planNetwork } from "./plan";
import { Topology, TopologyAttachment, TopologyHost } from "./render";
import { runRegistry } from "../scope";
import { HostArgs, NslabComponent, placeKey, placeText } from "../base";

export { interfaceName, planNetwork, overlaps, PlanError } from "./plan";
export type { HostSpec, NetworkPlan, Allocation } from "./plan";
export { toAscii, toGraphviz, toMermaid } from "./render";
export type {
  Topology,
  TopologyHost,
  BridgedNetworkTopology,
  RouterTopology,
  NatGatewayTopology,
  TopologyBridge,
  TopologyGateway,
  TopologyAttachment,
  TopologyPortForward,
} from "./render";
export type { PlannedHost } from "./plan";
export { HostLink, checkHostLink } from "./hostlink";
export type { HostLinkArgs, HostLinkSide } from "./hostlink";

/** A machine in messages: `root@192.0.2.2` (`:2222`), or the one that runs pulumi. */
const machine = (host: HostArgs | undefined) => (host === undefined ? "the machine that runs pulumi" : host.port !== undefined && host.port !== 22 ? `${host.ssh}:${host.port}` : host.ssh);

/**
 * Networks and namespaces declared by components in this program run, for lab-wide
 * checks. Namespaces are keyed by place (name and host: "a" on two machines is two
 * namespaces); networks are lab-wide (machines joined by HostLink share addresses).
 */
const declaredInRun = () => runRegistry("components", () => ({ networks: new Map<string, string>(), namespaces: new Map<string, string>() }));

/** A host of a {@link BridgedNetwork}: a name, or a name with options. */
export interface BridgedNetworkHost {
  /** The host's name; also the name of its new namespace. */
  name: string;
  /** Join an existing namespace (e.g. another component's) instead of creating one. */
  namespace?: pulumi.Input<string>;
  /** A fixed address (without prefix) instead of the next free one. */
  address?: string;
  /** Impair the host's link, as a {@link LinkImpairment} of its interface (egress = what the host sends). */
  impairment?: LinkImpairmentShape;
}

/** The directions of a {@link LinkImpairment}, as components take them. */
export interface LinkImpairmentShape {
  /** What leaves through the interface. */
  egress?: pulumi.Input<ImpairmentArgs>;
  /** What arrives on the interface. */
  ingress?: pulumi.Input<ImpairmentArgs>;
}

const IMPAIRMENT_ARGS: Shape = { egress: "input", ingress: "input" };
const BRIDGED_NETWORK_ARGS: Shape = {
  "cidr!": "string",
  "hosts!": { arrayOf: ["string", { "name!": "string", namespace: "input", address: "string", impairment: IMPAIRMENT_ARGS }] },
  allocation: "string",
  bridgeName: "string",
  bridgeNamespace: "input",
  gateway: ["boolean", "string"],
  gatewayOnBridge: "boolean",
  defaultRoutes: "boolean",
  mtu: "number",
  allowOverlap: "boolean",
  host: "host",
};
const ROUTER_ARGS: Shape = {
  namespace: "string",
  "attach!": { arrayOf: { "network!": "network", address: "string" } },
  routes: { arrayOf: { "destination!": "string", "gateway!": "string", device: "string" } },
  host: "host",
};
const NAT_GATEWAY_ARGS: Shape = {
  namespace: "input",
  "sources!": { arrayOf: ["network", "string"] },
  // An Output too (a JavaScript program may pass one; it flows into the rules' inputs).
  "uplink!": ["string", "input"],
  portForwards: { arrayOf: { "protocol!": "string", "port!": "number", "toAddress!": "string", toPort: "number" } },
  forwarding: "boolean",
  uplinkImpairment: IMPAIRMENT_ARGS,
  host: "host",
};

/** Arguments of {@link BridgedNetwork}. */
export interface BridgedNetworkArgs {
  /** The segment's network, e.g. "192.168.1.0/24". Addresses are allocated from it. */
  cidr: string;
  /**
   * The hosts, each joined to the bridge by a veth pair. A host's interface in its
   * namespace is `eth-<network>`, its bridge port `<network>-<host>` (shortened with a
   * hash suffix past 15 characters): names depend only on the network and host names,
   * so adding or removing hosts renames nobody. Addresses are placed as `allocation`
   * says, or pinned per host with `address`.
   */
  hosts: (string | BridgedNetworkHost)[];
  /**
   * "sequential" (default): after the gateway, in declaration order (.1, .2, ... as in
   * the walkthrough); appending moves nobody, removing a host moves those after it.
   * "stable": from a hash of each host's name; adding or removing hosts never moves
   * another, and a collision fails at preview naming the two hosts.
   */
  allocation?: Allocation;
  /** The bridge's interface name. Default `br-<network>`. */
  bridgeName?: string;
  /** Namespace of the bridge. Default: the program's. */
  bridgeNamespace?: pulumi.Input<string>;
  /**
   * A gateway address for the segment: `true` takes the first usable address, a string
   * fixes it. Default none.
   */
  gateway?: boolean | string;
  /**
   * Put the gateway address on the bridge, making the bridge's namespace the router
   * (scenario 4). Default true; set false when a {@link Router} holds the gateway.
   */
  gatewayOnBridge?: boolean;
  /** Give every host a default route via the gateway. Default: true when there is a gateway. */
  defaultRoutes?: boolean;
  /** MTU of the bridge and every veth. Default: the kernel's. */
  mtu?: number;
  /** Allow this network to overlap another of the program's networks. Default false. */
  allowOverlap?: boolean;
  /**
   * The machine the whole network is made on (its bridge, namespaces, veth pairs,
   * impairments and routes), reached over SSH; omitted means the one that runs
   * `pulumi`. Changing it replaces them all. Namespace names are that machine's.
   */
  host?: HostArgs;
}

/**
 * A layer-2 segment: a bridge plus N hosts (new or existing namespaces), each joined by
 * a veth pair, with addresses allocated deterministically from a CIDR, an optional
 * gateway address and optional default routes (scenarios 3 and 4 in one line).
 *
 * Bad arguments (overlapping subnets, more hosts than the CIDR holds, duplicate names,
 * a gateway outside its subnet) fail at `pulumi preview` with the component's name.
 */
export class BridgedNetwork extends NslabComponent {
  /** The component's name. */
  readonly networkName: string;
  /** Namespace of the bridge (undefined: the program's). */
  readonly bridgeNamespace?: pulumi.Input<string>;
  /** The network, canonical. */
  readonly cidr: string;
  /** The prefix length of the network. */
  readonly prefixLength: number;
  /** The gateway's address, if any. */
  readonly gateway?: string;
  /** Whether the gateway address is on the bridge. */
  readonly gatewayOnBridge: boolean;
  /** The machine the network is on; undefined for the one that runs `pulumi`. */
  readonly host?: HostArgs;
  /** The bridge resource. */
  readonly bridge: Bridge;
  /** The hosts: name, namespace, address, interface and bridge port. */
  readonly hosts: BridgedNetworkHostInfo[];
  /** The namespaces this component created, by host name. */
  readonly namespaces: Record<string, Namespace> = {};
  /** What was built, for tools and diagrams. */
  readonly topology: pulumi.Output<Topology>;
  /** The veth pairs, by host name (dependencies for routes into the hosts). */
  readonly links: Record<string, VethPair> = {};
  /** The impairments of hosts' links, by host name (hosts given an `impairment`). */
  readonly impairments: Record<string, LinkImpairment> = {};

  constructor(name: string, args: BridgedNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    const owner = `BridgedNetwork "${name}"`;
    checkArgs(owner, args, BRIDGED_NETWORK_ARGS);
    super("nslab:index:BridgedNetwork", name, {}, opts);
    const hostSpecs: (HostSpec & { namespace?: pulumi.Input<string>; impairment?: LinkImpairmentShape })[] = args.hosts.map((h) => (typeof h === "string" ? { name: h } : h));
    const plan: NetworkPlan = planNetwork(owner, args.cidr, hostSpecs, args.gateway, args.allocation);
    const declared = declaredInRun();
    for (const [other, cidr] of declared.networks) {
      if (!args.allowOverlap && overlaps(cidr, plan.cidr)) {
        throw new PlanError(`${owner}: cidr ${plan.cidr} overlaps ${cidr} of BridgedNetwork "${other}"; give each network its own subnet (or set allowOverlap).`);
      }
    }
    declared.networks.set(name, plan.cidr);
    this.networkName = name;
    this.bridgeNamespace = args.bridgeNamespace;
    this.cidr = plan.cidr;
    this.prefixLength = plan.prefixLength;
    this.gateway = plan.gateway;
    this.gatewayOnBridge = args.gatewayOnBridge ?? true;
    this.host = args.host;
    const host = args.host;

    const bridgeName = args.bridgeName ?? interfaceName("br", name);
    const child = { parent: this };
    this.bridge = new Bridge(
      `${name}-bridge`,
      {
        name: bridgeName,
        namespace: args.bridgeNamespace,
        addresses: plan.gateway && this.gatewayOnBridge ? [`${plan.gateway}/${plan.prefixLength}`] : [],
        mtu: args.mtu,
        host,
      },
      child,
    );
    const hostInterface = interfaceName("eth", name);
    const linkLocal = plan.gateway !== undefined && plan.gateway.includes(":") && ipaddr.parse(plan.gateway).range() === "linkLocal";
    const routes = args.defaultRoutes ?? plan.gateway !== undefined;
    this.hosts = plan.hosts.map((h, i) => {
      const spec = hostSpecs[i];
      let namespace: pulumi.Output<string>;
      if (spec.namespace !== undefined) {
        namespace = pulumi.output(spec.namespace);
      } else {
        const place = placeKey(h.name, host);
        const previous = declared.namespaces.get(place);
        if (previous) {
          throw new PlanError(`${owner}: host "${h.name}" would create ${placeText(place)}, which ${previous} already creates; pass that namespace as the host's namespace instead.`);
        }
        declared.namespaces.set(place, owner);
        this.namespaces[h.name] = new Namespace(`${name}-${h.name}`, { name: h.name, host }, child);
        namespace = this.namespaces[h.name].name;
      }
      const port = interfaceName(name, h.name);
      const clash = plan.hosts.find((o, j) => j < i && interfaceName(name, o.name) === port);
      if (clash) throw new PlanError(`${owner}: hosts "${clash.name}" and "${h.name}" shorten to the same port name "${port}"; rename one.`);
      const link = new VethPair(
        `${name}-${h.name}`,
        {
          a: { name: hostInterface, namespace, addresses: [`${h.address}/${plan.prefixLength}`] },
          b: { name: port, namespace: args.bridgeNamespace, master: this.bridge.name },
          mtu: args.mtu,
          host,
        },
        child,
      );
      this.links[h.name] = link;
      if (spec.impairment) {
        this.impairments[h.name] = new LinkImpairment(`${name}-${h.name}-impairment`, { device: hostInterface, namespace, ...spec.impairment, host }, { parent: this, dependsOn: [link] });
      }
      if (routes && plan.gateway) {
        // A link-local gateway (a network in fe80::/10) is reached through a named interface.
        const device = linkLocal ? { device: hostInterface } : {};
        new Route(`${name}-${h.name}-default`, { namespace, destination: "default", gateway: plan.gateway, ...device, host }, { parent: this, dependsOn: [link, this.bridge] });
      }
      return { name: h.name, namespace, address: h.address, interface: hostInterface, port, ...(host ? { host } : {}) };
    });
    const bridgeNamespace = args.bridgeNamespace === undefined ? pulumi.output<string | undefined>(undefined) : pulumi.output(args.bridgeNamespace);
    this.topology = pulumi.all([pulumi.all(this.hosts.map((h) => h.namespace)), bridgeNamespace]).apply(([namespaces, brNs]) => ({
      kind: "BridgedNetwork" as const,
      name,
      cidr: plan.cidr,
      bridge: { name: bridgeName, ...(brNs ? { namespace: brNs } : {}) },
      ...(plan.gateway ? { gateway: { address: plan.gateway, on: this.gatewayOnBridge ? "bridge" : "router" } } : {}),
      hosts: this.hosts.map((h, i): TopologyHost => ({ name: h.name, namespace: namespaces[i], address: h.address, interface: h.interface, port: h.port })),
    }));
    this.registerOutputs({ topology: this.topology });
  }

  /** The generations of its bridge and host links: a resource that depends on the network is written again when one is made anew. @internal */
  linkGenerations(keyed = false): pulumi.Output<string | undefined>[] {
    return [...this.bridge.linkGenerations(keyed), ...Object.values(this.links).flatMap((l) => l.linkGenerations(keyed))];
  }
}

/** One network a {@link Router} attaches to. */
export interface RouterAttachment {
  /** The network. */
  network: BridgedNetwork;
  /**
   * The router's address in it. Default: the network's gateway, when the network keeps
   * it off its bridge (`gatewayOnBridge: false`).
   */
  address?: string;
}

/** A static route in a {@link Router}. */
export interface StaticRoute {
  /** "default" or a network, e.g. "10.9.0.0/16". */
  destination: string;
  /** The next hop. */
  gateway: string;
  /**
   * The router's interface the next hop is reached through: needed for a link-local
   * gateway (fe80::...), which is on every interface. The router's interface to a
   * network is in its `attachments` (`to-NETWORK`, shortened with a hash when long).
   */
  device?: string;
}

/** A host as a {@link BridgedNetwork} made it. */
export interface BridgedNetworkHostInfo {
  /** The host's name. */
  name: string;
  /** Its namespace. */
  namespace: pulumi.Output<string>;
  /** Its address (without prefix). */
  address: string;
  /** Its interface in the namespace. */
  interface: string;
  /** The bridge port (the veth peer). */
  port: string;
  /** The machine it is on (the network's); undefined for the one that runs `pulumi`. */
  host?: HostArgs;
}

/** Arguments of {@link Router}. */
export interface RouterArgs {
  /** The router's namespace name. Default: the component's name. */
  namespace?: string;
  /** The networks the router joins, each by a veth pair to the network's bridge. */
  attach: RouterAttachment[];
  /** More routes in the router, e.g. to networks behind other routers. */
  routes?: StaticRoute[];
  /**
   * The machine the router is made on; omitted means the one that runs `pulumi`. The
   * networks it attaches to must be on the same machine. Changing it replaces it.
   */
  host?: HostArgs;
}

/**
 * A router: a namespace with forwarding on, attached to several networks. Hosts of
 * networks whose gateway is the router (and that have default routes) reach each
 * other through it.
 */
export class Router extends NslabComponent {
  /** The router's namespace. */
  readonly namespace: Namespace;
  /** Its forwarding switch. */
  readonly forwarding: IpForwarding;
  /** Its interfaces: network, interface name and address. */
  readonly attachments: TopologyAttachment[];
  /** What was built, for tools and diagrams. */
  readonly topology: Topology;
  /** Its veth pairs, one per network it joins. */
  readonly links: VethPair[];

  constructor(name: string, args: RouterArgs, opts?: pulumi.ComponentResourceOptions) {
    const owner = `Router "${name}"`;
    checkArgs(owner, args, ROUTER_ARGS);
    super("nslab:index:Router", name, {}, opts);
    const nsName = args.namespace ?? name;
    const host = args.host;
    const declared = declaredInRun();
    const place = placeKey(nsName, host);
    if (declared.namespaces.has(place)) throw new PlanError(`${owner}: ${placeText(place)} is already created by ${declared.namespaces.get(place)}; choose another name.`);
    for (const { network } of args.attach) {
      if (placeKey(undefined, network.host) !== placeKey(undefined, host)) {
        throw new PlanError(`${owner}: network "${network.networkName}" is on ${machine(network.host)}, the router on ${machine(host)}; a router joins networks of its own machine: give it the network's host, or join machines with HostLink.`);
      }
    }
    declared.namespaces.set(place, owner);
    const child = { parent: this };
    this.namespace = new Namespace(`${name}-ns`, { name: nsName, host }, child);
    const families = new Set(args.attach.map((a) => (a.network.cidr.includes(":") ? "ipv6" : "ipv4")));
    this.forwarding = new IpForwarding(`${name}-forwarding`, { namespace: this.namespace.name, ipv4: families.has("ipv4") || undefined, ipv6: families.has("ipv6") || undefined, host }, child);
    const links: VethPair[] = [];
    this.attachments = args.attach.map(({ network, address }, i) => {
      const netName = network.networkName;
      // Given: checked and spelled canonically, as the network's own addresses are.
      const addr = address !== undefined ? addressIn(owner, `attach[${i}].address (network "${netName}")`, address, network.cidr) : !network.gatewayOnBridge ? network.gateway : undefined;
      if (!addr) {
        throw new PlanError(`${owner}: network "${netName}" keeps its gateway on its bridge (or has none); give the router an address in ${network.cidr}, or create the network with gatewayOnBridge: false and a gateway.`);
      }
      const holder = network.hosts.find((h) => h.address === addr);
      if (holder) throw new PlanError(`${owner}: attach[${i}].address ${addr} in "${netName}" belongs to host "${holder.name}"; choose a free one.`);
      if (network.gatewayOnBridge && network.gateway === addr) {
        throw new PlanError(`${owner}: attach[${i}].address ${addr} in "${netName}" is the network's gateway, which its bridge holds (gatewayOnBridge: true); give the router another address, or create the network with gatewayOnBridge: false so that the router holds the gateway (then omit address).`);
      }
      const iface = interfaceName("to", netName);
      links.push(
        new VethPair(
          `${name}-${netName}`,
          {
            a: { name: iface, namespace: this.namespace.name, addresses: [`${addr}/${network.prefixLength}`] },
            b: { name: interfaceName(netName, nsName), namespace: network.bridgeNamespace, master: network.bridge.name },
            host,
          },
          child,
        ),
      );
      return { network: netName, interface: iface, address: addr };
    });
    for (const [i, r] of (args.routes ?? []).entries()) {
      new Route(`${name}-route-${i}`, { namespace: this.namespace.name, destination: r.destination, gateway: r.gateway, ...(r.device !== undefined ? { device: r.device } : {}), host }, { parent: this, dependsOn: links });
    }
    this.links = links;
    this.topology = { kind: "Router", name, namespace: nsName, attachments: this.attachments };
    this.registerOutputs({ attachments: this.attachments });
  }

  /** Its links' generations: a resource that depends on the router is written again when one is made anew. @internal */
  linkGenerations(keyed = false): pulumi.Output<string | undefined>[] {
    return this.links.flatMap((l) => l.linkGenerations(keyed));
  }
}

/** A port forward of a {@link NatGateway}. */
export interface PortForward {
  /** "tcp" or "udp". */
  protocol: "tcp" | "udp";
  /** The port on the uplink. */
  port: number;
  /** The inside address to forward to. */
  toAddress: string;
  /** The inside port. Default: the same port. */
  toPort?: number;
}

/** Arguments of {@link NatGateway}. */
export interface NatGatewayArgs {
  /** Namespace that routes between the networks and the uplink. Default: the program's. */
  namespace?: pulumi.Input<string>;
  /** Networks (components or CIDRs) whose traffic is masqueraded out of the uplink. */
  sources: (BridgedNetwork | string)[];
  /** The interface that leads outside. */
  uplink: string;
  /** Port forwards from the uplink to inside addresses. */
  portForwards?: PortForward[];
  /**
   * Switch forwarding on in the namespace (an IpForwarding named `NAME-forwarding`) for
   * the families of `sources` and `portForwards`: IPv4, IPv6 or both (IPv4 when there
   * are none). Default true. IPv6 forwarding is refused where the namespace has a default
   * route learnt from router advertisements on an interface whose `accept_ra` is not 2
   * (the kernel would delete it): set `net.ipv6.conf.UPLINK.accept_ra=2` first. Give false when another resource manages that switch (an IpForwarding
   * of the program's, or a Router in the same namespace): two on one switch fail at
   * preview.
   */
  forwarding?: boolean;
  /**
   * Impair the uplink, as a {@link LinkImpairment} of it (egress = what leaves for the
   * outside). The uplink must exist first: pass the resource that makes it in the
   * component's `dependsOn`, which the impairment inherits.
   */
  uplinkImpairment?: LinkImpairmentShape;
  /**
   * The machine the rules, forwarding and impairment are made on; omitted means the
   * one that runs `pulumi`. Namespace and uplink are that machine's. Changing it
   * replaces them.
   */
  host?: HostArgs;
}

/**
 * The way out (scenario 4): masquerade from the given networks out of an uplink, with
 * optional port forwards in, and IP forwarding on.
 */
export class NatGateway extends NslabComponent {
  /** The masquerade rules, one per source network. */
  readonly masquerade: NatRule[];
  /** The port-forward rules. */
  readonly forwards: NatRule[];
  /** The uplink's impairment, when `uplinkImpairment` is given. */
  readonly uplinkImpairment?: LinkImpairment;
  /** What was built, for tools and diagrams. */
  readonly topology: Topology;

  constructor(name: string, args: NatGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
    checkArgs(`NatGateway "${name}"`, args, NAT_GATEWAY_ARGS);
    // One forward per protocol, port and family: the uplink's port goes to one place
    // (one over IPv4, one over IPv6).
    const familyOf = (a: string) => (a.includes(":") ? "ipv6" : "ipv4");
    const samePort = (f: PortForward, g: PortForward) => g.protocol === f.protocol && g.port === f.port;
    (args.portForwards ?? []).forEach((f, i, all) => {
      const j = all.findIndex((g) => samePort(f, g) && familyOf(String(g.toAddress)) === familyOf(String(f.toAddress)));
      if (j < i) throw new PlanError(`NatGateway "${name}": portForwards[${i}] forwards ${f.protocol} port ${f.port}, as portForwards[${j}] does, over ${familyOf(String(f.toAddress)) === "ipv6" ? "IPv6" : "IPv4"}: a port of the uplink goes to one place per family; drop one, or give it another port.`);
    });
    super("nslab:index:NatGateway", name, {}, opts);
    const child = { parent: this };
    const host = args.host;
    const sources = args.sources.map((s) => (typeof s === "string" ? s : s.cidr));
    const families = new Set([...sources.map((c) => familyOf(String(c))), ...(args.portForwards ?? []).map((f) => familyOf(String(f.toAddress)))]);
    if (families.size === 0) families.add("ipv4");
    if (args.forwarding ?? true) new IpForwarding(`${name}-forwarding`, { namespace: args.namespace, ipv4: families.has("ipv4") || undefined, ipv6: families.has("ipv6") || undefined, host }, child);
    this.masquerade = sources.map(
      (cidr, i) => new NatRule(`${name}-masquerade-${i}`, { namespace: args.namespace, kind: "masquerade", source: cidr, outInterface: args.uplink, host }, child),
    );
    this.forwards = (args.portForwards ?? []).map(
      (f, _i, all) =>
        new NatRule(
          // The IPv6 one of a port forwarded over both families: "-ipv6" (the IPv4 one,
          // and a port forwarded over one family, keep the plain name).
          `${name}-${f.protocol}-${f.port}${familyOf(String(f.toAddress)) === "ipv6" && all.some((g) => samePort(f, g) && familyOf(String(g.toAddress)) === "ipv4") ? "-ipv6" : ""}`,
          { namespace: args.namespace, kind: "dnat", protocol: f.protocol, inInterface: args.uplink, port: f.port, toAddress: f.toAddress, toPort: f.toPort ?? f.port, host },
          child,
        ),
    );
    if (args.uplinkImpairment) {
      this.uplinkImpairment = new LinkImpairment(`${name}-uplink-impairment`, { device: args.uplink, namespace: args.namespace, ...args.uplinkImpairment, host }, { parent: this, dependsOn: opts?.dependsOn });
    }
    this.topology = {
      kind: "NatGateway",
      name,
      ...(typeof args.namespace === "string" ? { namespace: args.namespace } : args.namespace !== undefined ? { namespaceOutput: true as const } : {}),
      uplink: args.uplink,
      sources,
      portForwards: (args.portForwards ?? []).map((f) => ({ ...f })),
    };
    this.registerOutputs({});
  }
}
