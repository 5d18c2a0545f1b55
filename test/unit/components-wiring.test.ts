/**
 * Pure wiring of components and helpers, under Pulumi's mocks: a Router's static routes
 * pass what they are given to their Route resources (a link-local next hop with the
 * interface it is reached through; the Route's own check and the kernel are tested in
 * test/kernel/l3), and reachabilityMatrix refuses hosts it cannot tell apart.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { BridgedNetwork, Router } from "../../sdk/components";
import { ProgramError } from "../../sdk/errors";
import { reachabilityMatrix } from "../../sdk/reachability";

const registered: { type: string; name: string; inputs: Record<string, unknown> }[] = [];

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        registered.push({ type: a.type, name: a.name, inputs: a.inputs });
        return { id: `${a.name}-id`, state: a.inputs };
      },
      call: (a) => a.inputs,
    },
    "nslab-unit",
    "unit",
  );
});

describe("Router routes", () => {
  it("a static route's device reaches its Route (a link-local gateway needs one); one without a device has none", async () => {
    const lan = new BridgedNetwork("rr-lan", { cidr: "fd00:31::/64", hosts: ["rr1"], gateway: true, gatewayOnBridge: false });
    new Router("rr", { attach: [{ network: lan }], routes: [{ destination: "fd00:32::/64", gateway: "fe80::2", device: "to-rr-lan" }, { destination: "fd00:33::/64", gateway: "fd00:31::9" }] });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const routes = registered.filter((r) => r.name.startsWith("rr-route-")).sort((a, b) => a.name.localeCompare(b.name));
    expect(routes.map((r) => [r.inputs.destination, r.inputs.gateway, r.inputs.device])).toEqual([
      ["fd00:32::/64", "fe80::2", "to-rr-lan"],
      ["fd00:33::/64", "fd00:31::9", undefined],
    ]);
  });

  it("reachabilityMatrix: two hosts of one name are refused naming it (they were merged, and no probe was made)", () => {
    const host = (name: string, address: string) => ({ name, namespace: pulumi.output("a"), address });
    let said = "";
    try {
      reachabilityMatrix("m", { hosts: [host("x", "10.0.0.1"), host("x", "10.0.0.2"), host("y", "10.0.0.3")] });
    } catch (e) {
      expect(e).toBeInstanceOf(ProgramError);
      said = (e as Error).message;
    }
    expect(said).toMatch(/^reachabilityMatrix "m": two hosts are named "x" \(hosts of two networks, say\); the probes are named by host, so give each host its own name/);
  });
});
