/**
 * Topology descriptions of components and their renderings: Mermaid, Graphviz, and an
 * ASCII sketch in the walkthrough's style. Pure functions of plain data.
 */

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

/** What a component built, for tools, tests and diagrams. */
export type Topology =
  | {
      kind: "BridgedNetwork";
      /** The component's name. */
      name: string;
      /** The network, e.g. "192.168.1.0/24". */
      cidr: string;
      /** The bridge and where it lives (undefined: the program's namespace). */
      bridge: { name: string; namespace?: string };
      /** The gateway address and who holds it ("bridge" or a router's name), if any. */
      gateway?: { address: string; on: string };
      hosts: TopologyHost[];
    }
  | {
      kind: "Router";
      name: string;
      namespace: string;
      attachments: { network: string; interface: string; address: string }[];
    }
  | {
      kind: "NatGateway";
      name: string;
      namespace?: string;
      uplink: string;
      sources: string[];
      portForwards: { protocol: string; port: number; toAddress: string; toPort?: number }[];
    };

const id = (s: string) => s.replace(/[^A-Za-z0-9_]/g, "_");
const nsLabel = (ns?: string) => ns ?? "host";

/** A Mermaid flowchart of the lab. */
export function toMermaid(topologies: Topology[]): string {
  const lines = ["graph LR"];
  for (const t of topologies) {
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
export function toGraphviz(topologies: Topology[]): string {
  const lines = ["graph lab {", "  rankdir=LR;", "  node [shape=box];"];
  for (const t of topologies) {
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
export function toAscii(topologies: Topology[]): string {
  const out: string[] = [];
  for (const t of topologies) {
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
      out.push(`[NAT in ${nsLabel(t.namespace)}] masquerade ${t.sources.join(", ")} out of ${t.uplink}${fwd ? `; forwards ${fwd}` : ""}`, "");
    }
  }
  return out.join("\n").trimEnd();
}
