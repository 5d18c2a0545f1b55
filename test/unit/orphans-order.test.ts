/**
 * nslab-orphans deletes a stack's lost objects in an order that never removes a
 * namespace, bridge or interface before what is in it or on it: every kind has its place.
 */
import { describe, expect, it } from "vitest";
import { HOST_KINDS } from "../../provider/host";
import { DELETE_ORDER } from "../../sdk/cli/orphans";

describe("nslab-orphans' delete order", () => {
  it("names every resource kind once, with what lives in a namespace or on an interface before it", () => {
    expect([...DELETE_ORDER].sort()).toEqual([...HOST_KINDS].sort());
    const before = (a: string, b: string) => expect(DELETE_ORDER.indexOf(a), `${a} before ${b}`).toBeLessThan(DELETE_ORDER.indexOf(b));
    for (const inside of ["Process", "LinkImpairment", "NatRule", "Route", "TapDevice", "Vxlan", "VethPair", "Bridge"]) before(inside, "Namespace");
    for (const port of ["TapDevice", "Vxlan", "VethPair"]) before(port, "Bridge");
    for (const on of ["Process", "LinkImpairment"]) for (const device of ["TapDevice", "Vxlan", "VethPair", "Bridge"]) before(on, device);
  });
});
