import { describe, expect, it } from "vitest";
import { driftFromPreview, driftFromRefreshEvents, EngineEvent, formatDrift, propertyDrift, refreshedResources } from "../../sdk/drift";

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

  it("counts the nslab resources a refresh saw, those under a component too, and leaves the stack and providers out of a report", () => {
    const seen = (u: string, op = "same"): EngineEvent => ({ resOutputsEvent: { metadata: { op, urn: u } } });
    const child = "urn:pulumi:dev::lab::nslab:index:BridgedNetwork$pulumi-nodejs:dynamic/nslab:Namespace::lan-h1";
    expect(refreshedResources([seen(child), seen(child), seen(urn("Bridge", "br"))])).toBe(2);
    expect(refreshedResources([seen("urn:pulumi:dev::lab::pulumi:pulumi:Stack::lab-dev"), seen("urn:pulumi:dev::lab::nslab:index:BridgedNetwork::lan")])).toBe(0);
    const report = driftFromPreview({ steps: [{ op: "create", urn: "urn:pulumi:dev::lab::pulumi:pulumi:Stack::lab-dev" }, { op: "create", urn: child }] });
    expect(report.map((d) => `${d.type} ${d.name}`)).toEqual(["Namespace lan-h1"]);
    // Components (the user's own, nslab's) have no live object: not listed as missing.
    const components = driftFromPreview({
      steps: [
        { op: "create", urn: "urn:pulumi:dev::lab::user:index:Site::site", newState: { custom: false } },
        { op: "create", urn: "urn:pulumi:dev::lab::user:index:Site$nslab:index:BridgedNetwork::lan", newState: { custom: false } },
        { op: "create", urn: child, newState: { custom: true } },
      ],
    });
    expect(components.map((d) => `${d.type} ${d.name}`)).toEqual(["Namespace lan-h1"]);
  });

  it("says when a resource is written again for an interface in its dependsOn (a generation changed), which shows as no property", () => {
    const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
    const drift = driftFromPreview({
      steps: [
        { op: "replace", urn: urn("Process", "echo"), oldState: { inputs: { command: ["x"], __links: ["7+1"] } }, newState: { inputs: { command: ["x"], __links: unknown } } },
        { op: "update", urn: urn("Route", "r"), oldState: { inputs: { destination: "default", __links: ["7+1"] } }, newState: { inputs: { destination: "default", __links: ["7+2"] } } },
        { op: "update", urn: urn("VethPair", "v"), oldState: { inputs: { b: { up: false } } }, newState: { inputs: { b: { up: true } } } },
      ],
    });
    expect(drift.map((d) => [d.name, d.properties.length, d.interfaceRenewed ?? false, d.interfaceMayRenew ?? false])).toEqual([
      ["echo", 0, false, true],
      ["r", 0, true, false],
      ["v", 1, false, false],
    ]);
    const text = formatDrift(drift);
    // Unknown: the VethPair's update decides. The preview's replace of the Process is not a finding of its own.
    expect(text).toContain('Process "echo" may be restarted by pulumi up\n      something in its dependsOn is itself to be updated or replaced by this up (listed here): only if that makes an interface anew or brings it back up');
    expect(text).toContain('Route "r" differs (pulumi up would update it in place)\n      an interface in its dependsOn was made anew or is back up: pulumi up writes it again');
    expect(text.match(/an interface in its dependsOn/g)).toHaveLength(1);
    expect(formatDrift(drift, "state")).toContain('Process "echo" differs\n');
    // A probe is certain to run again after a write of what it depends on, known or not.
    const probe = driftFromPreview({
      steps: [{ op: "update", urn: urn("Reachability", "web"), oldState: { inputs: { to: "10.0.0.2", __links: ["aB3_-x9Z"] } }, newState: { inputs: { to: "10.0.0.2", __links: unknown } } }],
    });
    expect([probe[0].interfaceRenewed, probe[0].interfaceMayRenew]).toEqual([true, undefined]);
    // Its own properties differ too: they decide, and no "may" line contradicts the header.
    const own = driftFromPreview({
      steps: [{ op: "replace", urn: urn("Process", "echo"), oldState: { inputs: { command: ["x"], __links: ["7+1"] } }, newState: { inputs: { command: ["y"], __links: unknown } } }],
    });
    expect(formatDrift(own)).toContain('Process "echo" differs (pulumi up would replace it)\n      command: live ["x"], program ["y"]');
    expect(formatDrift(own)).not.toMatch(/something in its dependsOn|may be/);
  });

  it("says when a probe runs again for a write of what it depends on, and when a resource only gets its write token (recorded before tokens)", () => {
    const drift = driftFromPreview({
      steps: [
        { op: "update", urn: urn("Reachability", "web"), oldState: { inputs: { to: "10.0.0.2", __links: ["aB3_-x9Z"] }, outputs: { __made: "Qw3_-x9Z" } }, newState: { inputs: { to: "10.0.0.2", __links: ["aB3_-x9Z.Zz0_-x9Y"] } } },
        { op: "update", urn: urn("Namespace", "ns1"), oldState: { inputs: { name: "ns1" }, outputs: { name: "ns1" } }, newState: { inputs: { name: "ns1" } } },
        { op: "update", urn: urn("Namespace", "ns2"), oldState: { inputs: { name: "ns2" }, outputs: { name: "ns2", __made: "aB3_-x9Z" } }, newState: { inputs: { name: "ns3" } } },
        // Without a token and with a real change: the update writes the change, so the line is not given.
        { op: "update", urn: urn("Namespace", "ns4"), oldState: { inputs: { name: "ns4" }, outputs: { name: "ns4" } }, newState: { inputs: { name: "ns5" } } },
      ],
    });
    expect(drift.map((d) => [d.name, d.interfaceRenewed ?? false, d.tokenMissing ?? false])).toEqual([
      ["web", true, false],
      ["ns1", false, true],
      ["ns2", false, false],
      ["ns4", false, true],
    ]);
    const text = formatDrift(drift);
    expect(text).toContain('Reachability "web" differs (pulumi up would update it in place)\n      a resource in its dependsOn was written or made anew, or an interface there is back up: pulumi up probes again');
    expect(text).toContain('Namespace "ns1" differs (pulumi up would update it in place)\n      recorded by an nslab from before write tokens: pulumi up records one and writes nothing else (once)');
    expect(text.match(/before write tokens/g)).toHaveLength(1);
  });

  it("says so when nothing drifted", () => {
    expect(formatDrift(driftFromPreview({ steps: [{ op: "same", urn: urn("Namespace", "a") }] }))).toMatch(/^no drift/);
  });

  it("reads the engine events of a refresh preview into a report against the stack's state", () => {
    // Shaped like `pulumi refresh --preview-only --event-log` lines: a resourcePreEvent
    // per resource, then a resOutputsEvent saying how its refresh ended.
    const outputs = (op: string, name: string, type: string, old?: Record<string, unknown>, now?: Record<string, unknown>): EngineEvent => ({
      resOutputsEvent: { metadata: { op, urn: urn(type, name), old: old && { inputs: old }, new: now && { inputs: now } } },
    });
    const events: EngineEvent[] = [
      { diagnosticEvent: { severity: "info", message: "refreshing" } },
      outputs("same", "ns1", "Namespace", { name: "ns1" }, { name: "ns1" }),
      outputs(
        "update",
        "cable",
        "VethPair",
        { __owner: "o", adopt: false, a: { addresses: ["192.168.1.1/24"], up: true }, b: { up: true } },
        { __owner: "o", adopt: false, a: { addresses: ["192.168.1.1/24", "192.168.1.99/24"], mac: "ae:21:09:ee:53:3a", up: true }, b: { up: false } },
      ),
      outputs("delete", "ns2", "Namespace", { name: "ns2" }),
      outputs("update", "cable", "VethPair", {}, {}), // a repeat is counted once
    ];
    const drift = driftFromRefreshEvents(events);
    expect(drift.map((d) => [d.change, d.type, d.name])).toEqual([
      ["update", "VethPair", "cable"],
      ["create", "Namespace", "ns2"],
    ]);
    expect(drift[0].properties).toEqual([
      { property: "a.addresses", live: ["192.168.1.1/24", "192.168.1.99/24"], program: ["192.168.1.1/24"] },
      { property: "b.up", live: false, program: true },
    ]);
    const text = formatDrift(drift, "state");
    expect(text).toContain("drift: 2 resources differ from the stack's state (the last pulumi up)");
    expect(text).toContain('VethPair "cable" differs\n');
    expect(text).toContain('b.up: live false, recorded true');
    expect(text.split("\n").pop()).toBe('  Namespace "ns2" is missing from the live system');
    expect(text).not.toContain("pulumi up would");
    expect(formatDrift(driftFromRefreshEvents([outputs("same", "ns1", "Namespace")]), "state")).toBe("no drift: the live lab matches the stack's state (the last pulumi up)");
  });
});
