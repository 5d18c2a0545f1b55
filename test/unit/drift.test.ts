import { describe, expect, it } from "vitest";
import { driftFromPreview, formatDrift, propertyDrift } from "../../sdk/drift";

const urn = (type: string, name: string) => `urn:pulumi:dev::lab::pulumi-nodejs:dynamic/nslab:${type}::${name}`;

describe("drift report", () => {
  it("lists nested properties, ignores hidden inputs and kernel-chosen values the program leaves unset", () => {
    const live = { __owner: "x", adopt: false, a: { addresses: ["10.0.0.9/24"], mac: "02:00:00:00:00:01", up: true, master: "br0" }, mtu: 1500 };
    const program = { __owner: "y", adopt: true, a: { addresses: ["10.0.0.1/24"], up: true } };
    expect(propertyDrift(live, program)).toEqual([
      { property: "a.addresses", live: ["10.0.0.9/24"], program: ["10.0.0.1/24"] },
      { property: "a.master", live: "br0", program: undefined },
    ]);
  });

  it("reads a refresh-preview into one entry per changed resource", () => {
    const drift = driftFromPreview({
      steps: [
        { op: "refresh", urn: urn("VethPair", "cable") },
        { op: "same", urn: urn("Namespace", "ns1") },
        { op: "update", urn: urn("VethPair", "cable"), oldState: { inputs: { b: { up: false } } }, newState: { inputs: { b: { up: true } } } },
        { op: "create", urn: urn("Route", "ns1-default") },
        { op: "create-replacement", urn: urn("NatRule", "web"), oldState: { inputs: { toPort: 81 } }, newState: { inputs: { toPort: 80 } } },
        { op: "replace", urn: urn("NatRule", "web") },
      ],
    });
    expect(drift.map((d) => [d.change, d.type, d.name])).toEqual([
      ["update", "VethPair", "cable"],
      ["create", "Route", "ns1-default"],
      ["replace", "NatRule", "web"],
    ]);
    const text = formatDrift(drift);
    expect(text).toContain("drift: 3 resources differ from the program");
    expect(text).toContain('VethPair "cable" differs (pulumi up would update it in place)');
    expect(text).toContain("b.up: live false, program true");
    expect(text).toContain('Route "ns1-default" is missing from the live system');
  });

  it("says so when nothing drifted", () => {
    expect(formatDrift(driftFromPreview({ steps: [{ op: "same", urn: urn("Namespace", "a") }] }))).toMatch(/^no drift/);
  });
});
