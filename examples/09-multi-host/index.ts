// A lab on two machines: on each, a bridge br0 with two namespaces on it; a HostLink
// (one VXLAN device each side, vni 42) makes the two bridges one Ethernet segment, so
// the four namespaces share 10.50.0.0/24 across the machines. See README.md.
//
//   pulumi config set --path 'hostA.ssh' root@192.0.2.1    (and identityFile, knownHostsFile)
//   pulumi config set --path 'hostB.ssh' root@192.0.2.2
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const config = new pulumi.Config();
const sites = [
  { tag: "a", host: config.requireObject<nslab.HostArgs>("hostA"), first: 11 },
  { tag: "b", host: config.requireObject<nslab.HostArgs>("hostB"), first: 21 },
];
/** A machine's underlay address: config `underlayA`/`underlayB`, else the address it is reached at. */
const underlay = (tag: string, host: nslab.HostArgs) => config.get(`underlay${tag.toUpperCase()}`) ?? host.ssh.split("@").pop()!;

const bridges: Record<string, nslab.Bridge> = {};
export const addresses: Record<string, string> = {};
for (const { tag, host, first } of sites) {
  const br = new nslab.Bridge(`br-${tag}`, { host, name: "br0" });
  bridges[tag] = br;
  for (const i of [0, 1]) {
    const name = `${tag}${i + 1}`;
    const address = `10.50.0.${first + i}`;
    const ns = new nslab.Namespace(name, { host });
    new nslab.VethPair(`${name}-link`, {
      host,
      a: { name: "eth0", namespace: ns.name, addresses: [`${address}/24`] },
      b: { name: `${name}-br`, master: br.name },
    });
    addresses[name] = address;
  }
}

new nslab.HostLink("a-b", {
  vni: 42,
  a: { host: sites[0].host, bridge: bridges.a.name, address: underlay("a", sites[0].host) },
  b: { host: sites[1].host, bridge: bridges.b.name, address: underlay("b", sites[1].host) },
});
