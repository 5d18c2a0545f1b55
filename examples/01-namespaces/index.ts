// Scenario 1: network namespaces. Each has its own interfaces, routes, netfilter rules
// and protocol stack, isolated from the host's.
import * as nslab from "nslab";

const ns1 = new nslab.Namespace("ns1");
const ns2 = new nslab.Namespace("ns2");

export const namespaces = [ns1.name, ns2.name];
export const paths = [ns1.path, ns2.path];
