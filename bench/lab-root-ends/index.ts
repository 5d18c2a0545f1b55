// The benchmark lab with each veth declared the other way round: end `a` is the bridge
// port, in the program's namespace, and `b` the host's eth0. nslab deletes a veth from
// its `a` end, so all of this lab's veth deletes go to one namespace (bench/profile.js
// --program lab-root-ends --op destroy shows what that costs).
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const n = new pulumi.Config().requireNumber("hosts");
const address = (i: number) => `10.200.${(i + 2) >> 8}.${(i + 2) & 255}`;

const bridge = new nslab.Bridge("bridge", { name: "bbr0", addresses: ["10.200.0.1/16"] });
for (let i = 0; i < n; i++) {
  const ns = new nslab.Namespace(`b${i}`);
  const link = new nslab.VethPair(`b${i}`, {
    a: { name: `bp${i}`, master: bridge.name },
    b: { name: "eth0", namespace: ns.name, addresses: [`${address(i)}/16`] },
  });
  new nslab.Route(`b${i}-default`, { namespace: ns.name, destination: "default", gateway: "10.200.0.1" }, { dependsOn: [link, bridge] });
}
new nslab.IpForwarding("forwarding", { ipv4: true });
new nslab.NatRule("masquerade", { kind: "masquerade", source: "10.200.0.0/16", outInterface: "bup0" });
