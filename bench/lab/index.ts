// The benchmark lab: N namespaces on one bridge, each with a veth, an address and a
// default route, plus forwarding and one NAT rule (the same lab as lab.sh).
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const config = new pulumi.Config();
const n = config.requireNumber("hosts");
// rootEnds: each veth declared the other way round, `a` being the bridge port in the
// program's namespace, so that all veth deletes (made from the `a` end) are in one
// namespace (bench/profile.js --program lab-root-ends).
const rootEnds = config.getBoolean("rootEnds") ?? false;
// impairments: each host's eth0 also shaped both ways (a LinkImpairment: tbf on eth0, an
// ifb with its own tbf for ingress), for the fault harness (bench/faults.js --impairments).
const impairments = config.getBoolean("impairments") ?? false;
// processes: a program per host (a Process: `sleep` in the host's namespace), likewise.
const processes = config.getBoolean("processes") ?? false;
// vxlan: a Vxlan per host (vx0 in the host's namespace, over eth0), paired with the host
// next to it (0 with 1, 2 with 3, ...; with an odd count the last one's remote is an
// address no host has): an overlay address each on 10.201.0.0/16, likewise.
const vxlan = config.getBoolean("vxlan") ?? false;
// host (JSON, a HostArgs): the whole lab on another host over SSH (bench/faults.js
// --remote); logDir: an absolute folder for the Processes' logs there (a relative logFile
// is refused with host).
const hostText = config.get("host");
const host: nslab.HostArgs | undefined = hostText ? JSON.parse(hostText) : undefined;
const logDir = config.get("logDir");
const address = (i: number) => `10.200.${(i + 2) >> 8}.${(i + 2) & 255}`;
const overlay = (i: number) => `10.201.${(i + 2) >> 8}.${(i + 2) & 255}`;

const bridge = new nslab.Bridge("bridge", { host, name: "bbr0", addresses: ["10.200.0.1/16"] });
for (let i = 0; i < n; i++) {
  const ns = new nslab.Namespace(`b${i}`, { host });
  const end = { name: "eth0", namespace: ns.name, addresses: [`${address(i)}/16`] };
  const port = { name: `bp${i}`, master: bridge.name };
  const link = new nslab.VethPair(`b${i}`, rootEnds ? { host, a: port, b: end } : { host, a: end, b: port });
  new nslab.Route(`b${i}-default`, { host, namespace: ns.name, destination: "default", gateway: "10.200.0.1" }, { dependsOn: [link, bridge] });
  if (processes) {
    // cwd "/": not the program's folder (the fault harness ends that folder's processes
    // after a kill); the log in the program's folder, which goes with it.
    new nslab.Process(`b${i}-app`, { host, command: ["sleep", "3600"], namespace: ns.name, cwd: "/", logFile: logDir ? `${logDir}/app-${i}.log` : `app-${i}.log`, startupMs: 50 }, { dependsOn: [link] });
  }
  if (vxlan) {
    new nslab.Vxlan(`b${i}-vx`, { host, name: "vx0", namespace: ns.name, vni: 4242, local: address(i), remote: address(i ^ 1), device: "eth0", addresses: [`${overlay(i)}/16`] }, { dependsOn: [link] });
  }
  if (impairments) {
    new nslab.LinkImpairment(`b${i}-shaping`, { host, device: "eth0", namespace: ns.name, egress: { rate: "100mbit" }, ingress: { rate: "100mbit" } }, { dependsOn: [link] });
  }
}
new nslab.IpForwarding("forwarding", { host, ipv4: true });
new nslab.NatRule("masquerade", { host, kind: "masquerade", source: "10.200.0.0/16", outInterface: "bup0" });
