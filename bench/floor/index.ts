// Pulumi's own floor for the benchmark lab: the same 3N+3 resources, properties and
// dependencies as bench/lab, declared the way nslab declares them (dynamic-provider
// resources with a provider text written by hand, stack traces off while constructing),
// but served by a provider that does nothing. What `pulumi up` costs here is what the
// engine, the program and the provider process cost before nslab does any work: no
// dynamic provider can be faster. Nothing touches the kernel.
import * as pulumi from "@pulumi/pulumi";

const n = new pulumi.Config().requireNumber("hosts");
const address = (i: number) => `10.200.${(i + 2) >> 8}.${(i + 2) & 255}`;

const noop = [
  "exports.handler = function () {",
  "  return {",
  "    check: async (olds, news) => ({ inputs: news }),",
  "    diff: async () => ({ changes: false }),",
  "    create: async (inputs) => ({ id: inputs.name ?? 'x', outs: inputs }),",
  "    read: async (id, props) => ({ id, props }),",
  "    update: async (id, olds, news) => ({ outs: news }),",
  "    delete: async () => {},",
  "  };",
  "};",
  "",
].join("\n");

class Floor extends pulumi.CustomResource {
  declare readonly name: pulumi.Output<string>;
  constructor(kind: string, name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(`pulumi-nodejs:dynamic/floor:${kind}`, name, { ...props, __provider: noop }, opts);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

const bridge = new Floor("Bridge", "bridge", { name: "bbr0", addresses: ["10.200.0.1/16"] });
for (let i = 0; i < n; i++) {
  const ns = new Floor("Namespace", `b${i}`, { name: `b${i}` });
  const link = new Floor("VethPair", `b${i}`, {
    name: `bp${i}`,
    a: { name: "eth0", namespace: ns.name, addresses: [`${address(i)}/16`] },
    b: { name: `bp${i}`, master: bridge.name },
  });
  new Floor("Route", `b${i}-default`, { name: `b${i}-default`, namespace: ns.name, destination: "default", gateway: "10.200.0.1" }, { dependsOn: [link, bridge] });
}
new Floor("IpForwarding", "forwarding", { name: "forwarding", ipv4: true });
new Floor("NatRule", "masquerade", { name: "masquerade", kind: "masquerade", source: "10.200.0.0/16", outInterface: "bup0" });
