// Scenario 2: a veth pair between two namespaces, "a network cable with a NIC at each
// end": ns1 (veth-ns1, 192.168.1.1/24) <-> ns2 (veth-ns2, 192.168.1.2/24).
import * as nslab from "nslab";

const ns1 = new nslab.Namespace("ns1");
const ns2 = new nslab.Namespace("ns2");

const cable = new nslab.VethPair("ns1-ns2", {
  a: { name: "veth-ns1", namespace: ns1.name, addresses: ["192.168.1.1/24"] },
  b: { name: "veth-ns2", namespace: ns2.name, addresses: ["192.168.1.2/24"] },
});

export const a = cable.a;
export const b = cable.b;
