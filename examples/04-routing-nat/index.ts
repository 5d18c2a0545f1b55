// Scenario 4: routing and the way out. Namespaces on bridge br0 (192.168.1.0/24) use
// br0's own address in the program's namespace, 192.168.1.1, as their default gateway;
// with IP forwarding on, that namespace routes for them, and masquerade takes their
// traffic out of the uplink (10.0.2.15/24). A port forward brings uplink:8080 to ns2:80.
//
// Config: `uplink` (default enp0s3) names the host's interface to the outside. With
// `simulateUplink: true` the uplink is instead a veth to a namespace `wan` (10.0.2.2),
// which stands for the outside: that is how the tests and the demo run it.
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const config = new pulumi.Config();
const uplink = config.get("uplink") ?? "enp0s3";
const simulateUplink = config.getBoolean("simulateUplink") ?? false;

const br0 = new nslab.Bridge("br0", { name: "br0", addresses: ["192.168.1.1/24"] });

export const hosts = [
  { name: "ns1", address: "192.168.1.2" },
  { name: "ns2", address: "192.168.1.3" },
].map((host) => {
  const ns = new nslab.Namespace(host.name);
  const link = new nslab.VethPair(`${host.name}-br0`, {
    a: { name: `veth-${host.name}`, namespace: ns.name, addresses: [`${host.address}/24`] },
    b: { name: `veth-${host.name}-br`, master: br0.name },
  });
  new nslab.Route(`${host.name}-default`, { namespace: ns.name, destination: "default", gateway: "192.168.1.1" }, { dependsOn: [link, br0] });
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

new nslab.NatRule("masquerade", { kind: "masquerade", source: "192.168.1.0/24", outInterface: uplink }, { dependsOn: outside });
new nslab.NatRule("web", { kind: "dnat", protocol: "tcp", inInterface: uplink, port: 8080, toAddress: "192.168.1.3", toPort: 80 }, { dependsOn: outside });

export const gateway = "192.168.1.1";
export const uplinkInterface = uplink;
export const forwardingWas = forwarding.previousIpv4;
