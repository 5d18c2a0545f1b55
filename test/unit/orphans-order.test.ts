/**
 * nslab-orphans deletes a stack's lost objects in an order that never removes a
 * namespace, bridge or interface before what is in it or on it: every kind has its place.
 */
import { describe, expect, it } from "vitest";
import { HOST_KINDS } from "../../provider/host";
import { DELETE_ORDER, namesHost } from "../../sdk/cli/orphans";

describe("nslab-orphans' delete order", () => {
  it("names every resource kind once, with what lives in a namespace or on an interface before it", () => {
    expect([...DELETE_ORDER].sort()).toEqual([...HOST_KINDS].sort());
    const before = (a: string, b: string) => expect(DELETE_ORDER.indexOf(a), `${a} before ${b}`).toBeLessThan(DELETE_ORDER.indexOf(b));
    for (const inside of ["Process", "LinkImpairment", "NatRule", "Route", "TapDevice", "Vxlan", "VethPair", "Bridge"]) before(inside, "Namespace");
    for (const port of ["TapDevice", "Vxlan", "VethPair"]) before(port, "Bridge");
    for (const on of ["Process", "LinkImpairment"]) for (const device of ["TapDevice", "Vxlan", "VethPair", "Bridge"]) before(on, device);
  });
});

describe("nslab-orphans --forget-host", () => {
  it("names a machine by ssh and port as the program does, :22 written or not, and never cuts an IPv6 address", () => {
    expect(namesHost("root@192.0.2.3", { ssh: "root@192.0.2.3" })).toBe(true);
    expect(namesHost("root@192.0.2.3:22", { ssh: "root@192.0.2.3" })).toBe(true);
    expect(namesHost("root@192.0.2.3", { ssh: "root@192.0.2.3", port: 2201 })).toBe(false);
    expect(namesHost("root@192.0.2.3:2201", { ssh: "root@192.0.2.3", port: 2201 })).toBe(true);
    expect(namesHost("root@fd00::22", { ssh: "root@fd00::22" })).toBe(true);
    expect(namesHost("root@fd00::22:22", { ssh: "root@fd00::22" })).toBe(true);
  });
});
