// Scenario 3: a bridge (a virtual switch) joining three namespaces. Each nsN holds
// veth-nsN with 192.168.1.N/24; the peer ends veth-nsN-br are ports of br0.
import * as nslab from "nslab";

const br0 = new nslab.Bridge("br0", { name: "br0" });

export const hosts = [1, 2, 3].map((n) => {
  const ns = new nslab.Namespace(`ns${n}`);
  const link = new nslab.VethPair(`ns${n}-br0`, {
    a: { name: `veth-ns${n}`, namespace: ns.name, addresses: [`192.168.1.${n}/24`] },
    b: { name: `veth-ns${n}-br`, master: br0.name },
  });
  return { namespace: ns.name, address: link.a.addresses[0] };
});
export const bridge = br0.name;
