/**
 * Topology descriptions of components and their renderings: Mermaid, Graphviz, and an
 * ASCII sketch in the walkthrough's style. Pure functions of plain data.
 */
import * as pulumi from "@pulumi/pulumi";

/** A host joined to a bridged network. */
export interface TopologyHost {
  /** The host's name in the component. */
  name: string;
  /** Its namespace. */
  namespace: string;
  /** Its address (without prefix). */
  address: string;
  /** Its interface in the namespace. */
  interface: string;
  /** The veth peer that is the bridge's port. */
  port: string;
}

/** What a {@link BridgedNetwork} built. */
export interface BridgedNetworkTopology {
  /** Always "BridgedNetwork". */
  kind: "BridgedNetwork";
  /** The component's name. */
  name: string;
  /** The network, e.g. "192.168.1.0/24". */
  cidr: string;
  /** The bridge and where it lives. */
  bridge: TopologyBridge;
  /** The gateway, if any. */
  gateway?: TopologyGateway;
  /** The hosts joined to the bridge. */
  hosts: TopologyHost[];
}

/** A bridge in a topology. */
export interface TopologyBridge {
  /** The bridge's interface name. */
  name: string;
  /** Its namespace; undefined for the program's. */
  namespace?: string;
}

/** A segment's gateway in a topology. */
export interface TopologyGateway {
  /** The gateway's address (without prefix). */
  address: string;
  /** Who holds it: "bridge" (the bridge's namespace routes) or "router". */
  on: string;
}

/** One interface of a router in a topology. */
export interface TopologyAttachment {
  /** The network's component name. */
  network: string;
  /** The router's interface in that network. */
  interface: string;
  /** Its address (without prefix). */
  address: string;
}

/** What a {@link Router} built. */
export interface RouterTopology {
  /** Always "Router". */
  kind: "Router";
  /** The component's name. */
  name: string;
  /** The router's namespace. */
  namespace: string;
  /** Its interfaces, one per network. */
  attachments: TopologyAttachment[];
}

/** A port forward in a topology. */
export interface TopologyPortForward {
  /** "tcp" or "udp". */
  protocol: string;
  /** The port on the uplink. */
  port: number;
  /** The inside address. */
  toAddress: string;
  /** The inside port, if it differs. */
  toPort?: number;
}

/** What a {@link NatGateway} built. */
export interface NatGatewayTopology {
  /** Always "NatGateway". */
  kind: "NatGateway";
  /** The component's name. */
  name: string;
  /** The namespace doing NAT, when given as a plain name; undefined for the program's, or when given as an Output. */
  namespace?: string;
  /** True when the namespace was given as an Output (e.g. a Router's `namespace.name`): its name is not known while the program declares it. */
  namespaceOutput?: true;
  /** The interface that leads outside. */
  uplink: string;
  /** The networks masqueraded out of the uplink. */
  sources: string[];
  /** The port forwards in. */
  portForwards: TopologyPortForward[];
}

/** What a component built, for tools, tests and diagrams. */
export type Topology = BridgedNetworkTopology | RouterTopology | NatGatewayTopology;

const id = (s: string) => s.replace(/[^A-Za-z0-9_]/g, "_");
const nsLabel = (ns?: string) => ns ?? "host";

/**
 * The topologies to draw, one or several: a JavaScript program (or TypeScript with
 * `noCheck`) that passes one alone gets its drawing, not "topologies is not iterable".
 */
function listOf(fn: string, topologies: Topology | Topology[]): Topology[] {
  const list = Array.isArray(topologies) ? topologies : [topologies];
  for (const t of list) {
    if (!t || typeof t !== "object" || !["BridgedNetwork", "Router", "NatGateway"].includes((t as { kind?: string }).kind ?? "")) {
      // Not String(t): an Output's toString is Pulumi's warning text, or throws.
      const what = pulumi.Output.isInstance(t) ? "an Output (not resolved yet)" : t === null ? "null" : Array.isArray(t) ? "a list" : typeof t === "object" ? "an object without a component's kind" : typeof t;
      throw new TypeError(
        `nslab.${fn}: ${what} is not a component's topology; pass components' topology values, resolved: lan.topology.apply((t) => nslab.${fn}([t, router.topology]))`,
      );
    }
  }
  return list;
}

/** A Mermaid flowchart of the lab. */
export function toMermaid(topologies: Topology | Topology[]): string {
  const lines = ["graph LR"];
  for (const t of listOf("toMermaid", topologies)) {
    if (t.kind === "BridgedNetwork") {
      const br = `${id(t.name)}_br`;
      lines.push(`  subgraph ${id(t.name)}["${t.name} ${t.cidr}"]`);
      lines.push(`    ${br}["${t.bridge.name} (bridge${t.gateway?.on === "bridge" ? ` ${t.gateway.address}` : ""})"]`);
      for (const h of t.hosts) lines.push(`    ${id(t.name)}_${id(h.name)}["${h.namespace}: ${h.interface} ${h.address}"] --- ${br}`);
      lines.push("  end");
    } else if (t.kind === "Router") {
      lines.push(`  ${id(t.name)}{{"router ${t.namespace}"}}`);
      for (const a of t.attachments) lines.push(`  ${id(t.name)} ---|"${a.interface} ${a.address}"| ${id(a.network)}_br`);
    } else {
      lines.push(`  ${id(t.name)}(("NAT out of ${t.uplink}"))`);
      lines.push(`  ${id(t.name)} --- outside[(outside)]`);
    }
  }
  return lines.join("\n");
}

/** A Graphviz (dot) graph of the lab. */
export function toGraphviz(topologies: Topology | Topology[]): string {
  const lines = ["graph lab {", "  rankdir=LR;", "  node [shape=box];"];
  for (const t of listOf("toGraphviz", topologies)) {
    if (t.kind === "BridgedNetwork") {
      const br = `${id(t.name)}_br`;
      lines.push(`  subgraph cluster_${id(t.name)} {`, `    label="${t.name} ${t.cidr}";`);
      lines.push(`    ${br} [label="${t.bridge.name}\\nbridge${t.gateway?.on === "bridge" ? ` ${t.gateway.address}` : ""}", shape=hexagon];`);
      for (const h of t.hosts) lines.push(`    ${id(t.name)}_${id(h.name)} [label="${h.namespace}\\n${h.interface} ${h.address}"];`, `    ${id(t.name)}_${id(h.name)} -- ${br};`);
      lines.push("  }");
    } else if (t.kind === "Router") {
      lines.push(`  ${id(t.name)} [label="router\\n${t.namespace}", shape=diamond];`);
      for (const a of t.attachments) lines.push(`  ${id(t.name)} -- ${id(a.network)}_br [label="${a.interface} ${a.address}"];`);
    } else {
      lines.push(`  ${id(t.name)} [label="NAT out of ${t.uplink}\\n${t.sources.join(", ")}", shape=ellipse];`);
    }
  }
  lines.push("}");
  return lines.join("\n");
}

/** Hosts drawn side by side before the sketch says "... and N more". */
const ASCII_MAX_HOSTS = 6;

/** An ASCII sketch in the walkthrough's style: hosts in boxes above their bridge. */
export function toAscii(topologies: Topology | Topology[]): string {
  const out: string[] = [];
  for (const t of listOf("toAscii", topologies)) {
    if (t.kind === "BridgedNetwork") {
      const shown = t.hosts.slice(0, ASCII_MAX_HOSTS);
      const prefix = t.cidr.split("/")[1];
      const cells = shown.map((h) => [h.namespace, h.interface, `${h.address}/${prefix}`]);
      const width = Math.max(12, ...cells.flat().map((c) => c.length)) + 2;
      const box = (row: string[]) => row.map((c) => `| ${c.padEnd(width - 2)} |`).join("  ");
      const edge = (ch: string) => shown.map(() => `+${"-".repeat(Math.floor(width / 2))}${ch}${"-".repeat(width - Math.floor(width / 2) - 1)}+`).join("  ");
      const wire = shown.map(() => `${" ".repeat(Math.floor(width / 2) + 1)}|${" ".repeat(width - Math.floor(width / 2))}`).join("  ");
      out.push(edge("-"));
      for (let line = 0; line < 3; line++) out.push(box(cells.map((c) => c[line])));
      out.push(edge("|"), wire);
      const total = shown.length * (width + 2) + (shown.length - 1) * 2;
      const title = `${t.bridge.name} (bridge${t.gateway?.on === "bridge" ? ` ${t.gateway.address}` : ""}) ${t.name} ${t.cidr}${t.hosts.length > shown.length ? `, and ${t.hosts.length - shown.length} more hosts` : ""}`;
      const inner = Math.max(total - 2, title.length + 2);
      out.push(`+${"-".repeat(inner)}+`, `|${title.padStart(Math.floor((inner + title.length) / 2)).padEnd(inner)}|`, `+${"-".repeat(inner)}+`, "");
    } else if (t.kind === "Router") {
      out.push(`[router ${t.namespace}] ${t.attachments.map((a) => `${a.interface} ${a.address} -> ${a.network}`).join("; ")}`, "");
    } else {
      const fwd = t.portForwards.map((p) => `${p.protocol}/${p.port} -> ${p.toAddress}${p.toPort ? `:${p.toPort}` : ""}`).join(", ");
      out.push(`[NAT in ${t.namespaceOutput ? "a namespace given as an Output" : nsLabel(t.namespace)}] masquerade ${t.sources.join(", ")} out of ${t.uplink}${fwd ? `; forwards ${fwd}` : ""}`, "");
    }
  }
  return out.join("\n").trimEnd();
}
