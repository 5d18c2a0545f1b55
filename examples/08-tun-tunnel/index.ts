// Scenario 5, the walkthrough's last sentence: "two such programs make a tunnel". Two
// sites joined only by an underlay veth (172.16.0.0/30). Each site has a TUN device on
// the overlay 10.200.0.0/24 and runs tunnel.py, which carries the TUN's IP packets in
// UDP (port 40000) to the other site. Overlay pings cross the underlay as UDP only, and
// Reachability resources prove both directions.
import * as nslab from "nslab";

const TUNNEL_PORT = 40000;
const sites = [
  { name: "site-a", underlay: "172.16.0.1", overlay: "10.200.0.1" },
  { name: "site-b", underlay: "172.16.0.2", overlay: "10.200.0.2" },
];

const namespaces = sites.map((s) => new nslab.Namespace(s.name));

// The underlay: the only link between the sites.
const underlay = new nslab.VethPair("underlay", {
  a: { name: "under0", namespace: namespaces[0].name, addresses: [`${sites[0].underlay}/30`] },
  b: { name: "under0", namespace: namespaces[1].name, addresses: [`${sites[1].underlay}/30`] },
});

const tunnels = sites.map((site, i) => {
  const peer = sites[1 - i];
  const tun = new nslab.TapDevice(`${site.name}-tun`, {
    name: "tun0",
    namespace: namespaces[i].name,
    mode: "tun",
    addresses: [`${site.overlay}/24`],
  });
  // The tunnel end: a user-space program holding tun0 open, started with the lab and
  // stopped (SIGTERM to exactly this process) when it is destroyed.
  const program = new nslab.Process(
    `${site.name}-tunnel`,
    {
      namespace: namespaces[i].name,
      command: ["python3", "tunnel.py", "tun0", `${site.underlay}:${TUNNEL_PORT}`, `${peer.underlay}:${TUNNEL_PORT}`],
      // Printed once it holds tun0 and its UDP socket: create waits for it.
      readyText: "tunnel tun0:",
    },
    { dependsOn: [tun, underlay] },
  );
  return { site, namespace: namespaces[i], tun, program };
});

// Both directions over the overlay, once both ends run.
const proofs = nslab.reachabilityMatrix(
  "overlay",
  { hosts: tunnels.map((t) => ({ name: t.site.name, namespace: t.namespace.name, address: t.site.overlay })) },
  {},
  { dependsOn: tunnels.map((t) => t.program) },
);

export const overlay = proofs.map((p) => ({ from: p.from, to: p.address, reachable: p.resource.reachable }));
export const tunnelPids = tunnels.map((t) => t.program.pid);
