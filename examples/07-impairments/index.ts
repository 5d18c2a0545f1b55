// Scenario 7: a WAN link with a rate limit and loss, declared with the lab and changed in
// place by `pulumi up` (the interface keeps its ifindex and never goes down).
//
//   +--------------------------+                      +--------------------------+
//   | site                     |   wan (veth pair)    | isp                      |
//   |   wan0  10.0.0.1/30  ----+======================+---- wan1  10.0.0.2/30    |
//   |   LinkImpairment on wan0:|                      |                          |
//   |     egress  -> tbf root  |  site -> isp  10mbit |                          |
//   |     ingress -> ifb + tbf |  isp -> site  10mbit |                          |
//   |     loss    -> nftables  |                      |                          |
//   +--------------------------+                      +--------------------------+
//
// Config (pulumi config set KEY VALUE): egressRate, ingressRate (tc units, e.g. 20mbit),
// egressLoss, ingressLoss (fractions, e.g. 0.02), impaired (false removes the impairment).
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const config = new pulumi.Config();
const site = new nslab.Namespace("site");
const isp = new nslab.Namespace("isp");

const wan = new nslab.VethPair("wan", {
  a: { name: "wan0", namespace: site.name, addresses: ["10.0.0.1/30"] },
  b: { name: "wan1", namespace: isp.name, addresses: ["10.0.0.2/30"] },
});

/** A loss fraction from config; 0 (the default) means no loss rule at all. */
const loss = (key: string) => Number(config.get(key) ?? "0") || undefined;

const impairment = config.getBoolean("impaired") !== false
  ? new nslab.LinkImpairment(
      "wan-slow",
      {
        device: "wan0",
        namespace: site.name,
        egress: { rate: config.get("egressRate") ?? "10mbit", loss: loss("egressLoss") },
        ingress: { rate: config.get("ingressRate") ?? "10mbit", loss: loss("ingressLoss") },
      },
      { dependsOn: [wan] },
    )
  : undefined;

export const egress = impairment?.egress;
export const ingress = impairment?.ingress;
export const ifb = impairment?.ifb;
export const lossTable = impairment?.lossTable;
