import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { writesDigest } from "../../sdk/base";
import { Bridge } from "../../sdk/bridge";
import { BridgedNetwork } from "../../sdk/components";
import { IpForwarding } from "../../sdk/forwarding";
import { LinkImpairment } from "../../sdk/impairment";
import { Namespace } from "../../sdk/namespace";
import { NatRule } from "../../sdk/nat";
import { Process } from "../../sdk/process";
import { Reachability } from "../../sdk/reachability";
import { Route } from "../../sdk/route";
import { VethPair } from "../../sdk/veth";
import { Vxlan } from "../../sdk/vxlan";

// Pulumi's own bookkeeping of the promises it made (its leak detector): each carries the
// stack trace taken when it was made.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const state = require("@pulumi/pulumi/runtime/state") as { getStore(): { leakCandidates: Set<{ _debugCtx?: string; _debugStackTrace?: string }> } };
function tracesTakenBy(construct: () => void): string[] {
  const before = new Set(state.getStore().leakCandidates);
  construct();
  return [...state.getStore().leakCandidates].filter((p) => !before.has(p) && p._debugCtx?.startsWith("transfer")).map((p) => p._debugStackTrace ?? "");
}

// Pure SDK behaviour, without an engine: Pulumi's mocks stand in for the resource monitor.
beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
      call: (args) => args.inputs,
    },
    "nslab-unit",
    "unit",
  );
});

describe("constructing a resource", () => {
  it("leaves Error.stackTraceLimit as it found it", () => {
    const before = Error.stackTraceLimit;
    try {
      Error.stackTraceLimit = 17;
      new Namespace("limit-check");
      expect(Error.stackTraceLimit).toBe(17);
    } finally {
      Error.stackTraceLimit = before;
    }
  });

  it("gives an error thrown while constructing a stack trace that reaches the caller", () => {
    const err = (() => {
      try {
        new NatRule("", { kind: "masquerade", source: "10.0.0.0/8" });
      } catch (e) {
        return e as Error;
      }
      throw new Error("constructing a resource with an empty name did not throw");
    })();
    expect(err.message).toMatch(/Missing resource name/);
    expect(err.stack).toContain("construct.test.ts");
  });

  it("registers the dynamic-provider type and the provider text, as pulumi.dynamic.Resource would", async () => {
    const ns = new Namespace("typed", { name: "typed" });
    const urn = await new Promise<string>((resolve) => ns.urn.apply(resolve));
    expect(urn).toMatch(/::pulumi-nodejs:dynamic\/nslab:Namespace::typed$/);
    const provider = await new Promise<unknown>((resolve) => (ns as unknown as { __provider: pulumi.Output<unknown> }).__provider.apply(resolve));
    expect(String(provider)).toContain('require("nslab/provider").handlerFor("Namespace"');
  });

  it("lets Pulumi take its per-promise stack traces empty, and full with PULUMI_DEBUG_PROMISE_LEAKS", () => {
    const saved = process.env.PULUMI_DEBUG_PROMISE_LEAKS;
    try {
      delete process.env.PULUMI_DEBUG_PROMISE_LEAKS;
      const empty = tracesTakenBy(() => new Namespace("traces-off"));
      expect(empty.length).toBeGreaterThan(0);
      for (const trace of empty) expect(trace).not.toContain(" at ");
      process.env.PULUMI_DEBUG_PROMISE_LEAKS = "1";
      const full = tracesTakenBy(() => new Namespace("traces-on"));
      expect(full.length).toBeGreaterThan(0);
      for (const trace of full) expect(trace).toContain("construct.test.ts");
    } finally {
      if (saved === undefined) delete process.env.PULUMI_DEBUG_PROMISE_LEAKS;
      else process.env.PULUMI_DEBUG_PROMISE_LEAKS = saved;
    }
  });
});

describe("the resources that depend on interfaces", () => {
  it("a Route, a LinkImpairment and a Reachability take the generations of the interfaces and networks in their dependsOn (__links)", async () => {
    const made = new Map<string, Record<string, any>>();
    // The engine's part: each interface's outputs carry a generation, as the provider returns them.
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          made.set(args.name, args.inputs);
          const state = { ...args.inputs };
          if (/:(VethPair|Bridge|TapDevice|Vxlan)$/.test(args.type)) state.generation = `${args.name}.g`;
          // And every resource's write token, as the provider's dispatcher returns it.
          state.__made = `${args.name}.m`;
          return { id: `${args.name}-id`, state };
        },
        call: (args) => args.inputs,
      },
      "nslab-unit",
      "unit",
    );
    const br = new Bridge("g-br", { addresses: ["10.6.0.1/24"] });
    const pair = new VethPair("g-pair", { a: { name: "e0", namespace: "g1" }, b: { name: "g-port", master: br.name } });
    new Route("g-route", { namespace: "g1", destination: "default", gateway: "10.6.0.1" }, { dependsOn: [pair, br] });
    new LinkImpairment("g-imp", { device: "g-port", egress: { rate: "1mbit" } }, { dependsOn: pair });
    const lan = new BridgedNetwork("gn", { cidr: "10.5.0.0/24", hosts: ["ga"], gateway: true });
    new Reachability("g-probe", { from: "ga", to: "10.5.0.1" }, { dependsOn: [lan] });
    // No interface in dependsOn: no __links.
    new Route("g-plain", { namespace: "g1", destination: "10.4.0.0/24", device: "e0" }, { dependsOn: [new Namespace("g-ns")] });
    // What the resources in its dependsOn depend on, in turn: a listener's link.
    const wire = new VethPair("t-link", { a: { name: "e0", namespace: "t1" }, b: { name: "e0", namespace: "t2" } });
    const listener = new Process("t-web", { namespace: "t2", command: ["sleep", "1"] }, { dependsOn: [wire] });
    new Reachability("t-probe", { from: "t1", to: "10.7.0.2" }, { dependsOn: [listener, listener] });
    await new Promise((r) => setTimeout(r, 100));
    expect(made.get("g-route")!.__links).toEqual(["g-pair.g", "g-br.g"]);
    expect(made.get("g-imp")!.__links).toEqual(["g-pair.g"]);
    // The probe keeps one digest of the write tokens of every resource in the network
    // (its bridge, the host's namespace, link and route) and of its interfaces' generations.
    expect(made.get("g-probe")!.__links).toEqual(writesDigest(["gn-bridge.m", "gn-bridge.g", "gn-ga.m", "gn-ga.m", "gn-ga.g", "gn-ga-default.m"]));
    expect(made.get("g-probe")!.__links).not.toEqual(writesDigest(["gn-bridge.m", "gn-bridge.g", "gn-ga.m", "gn-ga.g", "gn-ga-default.m"]));
    expect(made.get("g-plain")!.__links).toBeUndefined();
    expect(made.get("t-probe")!.__links).toEqual(writesDigest(["t-web.m", "t-link.m", "t-link.g"]));
  });

  it("a probe's digest of its dependencies' tokens: one 16-character value, the same in any order, changed by any token, none for none", () => {
    const digest = writesDigest(["a.m", "b.m.x", undefined, "7+1"]);
    expect(digest).toEqual([expect.stringMatching(/^[A-Za-z0-9_-]{16}$/)]);
    expect(writesDigest(["7+1", "b.m.x", "a.m"])).toEqual(digest);
    expect(writesDigest(["a.m", "b.m.y", "7+1"])).not.toEqual(digest);
    expect(writesDigest([undefined])).toEqual([]);
  });

  it("a JavaScript program that leaves the arguments out gets check's word for what is missing, not a TypeError", () => {
    const ctors = [VethPair, Vxlan, IpForwarding, LinkImpairment, NatRule, Process, Reachability, Route] as unknown as (new (name: string) => unknown)[];
    for (const Ctor of ctors) expect(() => new Ctor(`no-args-${Ctor.name}`), Ctor.name).not.toThrow();
  });
});
