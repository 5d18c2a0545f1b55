// Scenario 4: routing and the way out. Namespaces on bridge br0 (192.168.1.0/24) use
// br0's own address in the program's namespace, 192.168.1.1, as their default gateway;
// with IP forwarding on, that namespace routes for them, and masquerade takes their
// traffic out of the uplink (10.0.2.15/24). A port forward brings uplink:8080 to ns2:80.
//
// Config: `uplink` (default enp0s3) names the host's interface to the outside. With
// `simulateUplink: true` the uplink is instead a veth to a namespace `wan` (10.0.2.2),
// which stands for the outside: that is how the tests and the demo run it. With
// `probeConnectivity: true` the connectivity matrix is kept as Reachability resources:
// `pulumi up` proves it and every refresh probes it again (scripts/demo prints it).
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const config = new pulumi.Config();
const uplink = config.get("uplink") ?? "enp0s3";
const simulateUplink = config.getBoolean("simulateUplink") ?? false;

const br0 = new nslab.Bridge("br0", { name: "br0", addresses: ["192.168.1.1/24"] });

const hostSpecs = [
  { name: "ns1", address: "192.168.1.2" },
  { name: "ns2", address: "192.168.1.3" },
];
const links: nslab.VethPair[] = [];
const routes: nslab.Route[] = [];
export const hosts = hostSpecs.map((host) => {
  const ns = new nslab.Namespace(host.name);
  const link = new nslab.VethPair(`${host.name}-br0`, {
    a: { name: `veth-${host.name}`, namespace: ns.name, addresses: [`${host.address}/24`] },
    b: { name: `veth-${host.name}-br`, master: br0.name },
  });
  links.push(link);
  routes.push(new nslab.Route(`${host.name}-default`, { namespace: ns.name, destination: "default", gateway: "192.168.1.1" }, { dependsOn: [link, br0] }));
  return { namespace: ns.name, address: host.address };
});

const forwarding = new nslab.IpForwarding("forwarding", { ipv4: true });

let outside: pulumi.Resource[] = [];
if (simulateUplink) {
  const wan = new nslab.Namespace("wan");
  outside = [
    new nslab.VethPair("uplink", {
      a: { name: uplink, addresses: ["10.0.2.15/24"] },
      b: { name: "wan0", namespace: wan.name, addresses: ["10.0.2.2/24"] },
    }),
  ];
}

const masquerade = new nslab.NatRule("masquerade", { kind: "masquerade", source: "192.168.1.0/24", outInterface: uplink }, { dependsOn: outside });
const web = new nslab.NatRule("web", { kind: "dnat", protocol: "tcp", inInterface: uplink, port: 8080, toAddress: "192.168.1.3", toPort: 80 }, { dependsOn: outside });

// The connectivity matrix: from every namespace to every address of the lab. The inside
// reaches everything; the outside (wan) reaches only the uplink, since nothing routes
// 192.168.1.0/24 there: isolation is proved too.
const inside = hosts.map((h, i) => ({ name: `ns${i + 1}`, namespace: h.namespace, address: h.address }));
const targets = [...inside, { name: "br0", address: "192.168.1.1" }, ...(simulateUplink ? [{ name: "uplink", address: "10.0.2.15" }, { name: "wan", address: "10.0.2.2" }] : [])];
const sources = [...inside, ...(simulateUplink ? [{ name: "wan", namespace: "wan" }] : [])];
const matrix = config.getBoolean("probeConnectivity")
  ? nslab.reachabilityMatrix(
      "reach",
      {
        pairs: sources.flatMap((from) =>
          targets.filter((to) => to.name !== from.name).map((to) => ({ from, to, expect: from.name === "wan" && to.address.startsWith("192.168.1.") ? ("unreachable" as const) : undefined })),
        ),
      },
      // An unreachable target costs its whole timeout at every refresh: keep it short.
      { timeoutMs: 1000 },
      { dependsOn: [br0, forwarding, masquerade, web, ...links, ...routes, ...outside] },
    )
  : [];

export const gateway = "192.168.1.1";
export const uplinkInterface = uplink;
export const forwardingWas = forwarding.previousIpv4;
/** The probes of the connectivity matrix (only with probeConnectivity). */
export const connectivity = matrix.length === 0 ? undefined : matrix.map((m) => ({ from: m.from, to: m.to, address: m.address, expect: m.expect, reachable: m.resource.reachable }));
