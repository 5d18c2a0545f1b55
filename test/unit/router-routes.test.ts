/**
 * A Router's static routes pass what they are given to their Route resources: a
 * link-local next hop with the interface it is reached through (pure wiring, under
 * Pulumi's mocks; the Route's own check and the kernel are tested in test/kernel/l3).
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { BridgedNetwork, Router } from "../../sdk/components";

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
});
