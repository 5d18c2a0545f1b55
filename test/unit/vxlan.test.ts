/**
 * Vxlan's pure side: check (validation, defaults, unknown values at preview) and diff
 * (what updates in place and what replaces, as measured on the kernel).
 */
import { describe, expect, it } from "vitest";
import { stableMac } from "../../provider/resource";
import { UNKNOWN } from "../../provider/validate";
import { endpointReplaces, vxlanKind as vxlan, VxlanInputs } from "../../provider/vxlan";

const OWNER = "proj/dev/Vxlan/vx0";
const BASE = { vni: 42, local: "10.99.0.1", remote: "10.99.0.2" };
const check = (news: Record<string, unknown>) => vxlan.check(undefined, { __owner: OWNER, ...news });
const ok = (news: Record<string, unknown>): VxlanInputs => {
  const r = check(news);
  expect(r.failures).toEqual([]);
  return r.inputs;
};

describe("Vxlan check", () => {
  it("fills defaults: name from the resource, port 4789, learning, up, a stable MAC", () => {
    expect(ok(BASE)).toEqual({
      name: "vx0", vni: 42, local: "10.99.0.1", remote: "10.99.0.2", dstPort: 4789, learning: true, up: true,
      addresses: [], mac: stableMac(OWNER, "vxlan"), adopt: false, __owner: OWNER,
    });
    expect(ok({ ...BASE, adopt: true }).mac).toBeUndefined();
  });

  it("normalises addresses and accepts a multicast group with its device", () => {
    expect(ok({ vni: 7, local: "fd00:0::1", remote: "FD00::2" })).toMatchObject({ local: "fd00::1", remote: "fd00::2" });
    expect(ok({ vni: 7, group: "239.1.1.1", device: "eth0", dstPort: 8472, learning: false, master: "br0" })).toMatchObject({
      group: "239.1.1.1", device: "eth0", dstPort: 8472, learning: false, master: "br0",
    });
  });

  const BAD: [string, Record<string, unknown>, string, RegExp][] = [
    ["vni missing", { remote: "10.0.0.2" }, "vni", /vni is required.*1 to 16777215/],
    ["vni 0", { ...BASE, vni: 0 }, "vni", /from 1 to 16777215/],
    ["vni too big", { ...BASE, vni: 16777216 }, "vni", /from 1 to 16777215/],
    ["port 0", { ...BASE, dstPort: 0 }, "dstPort", /from 1 to 65535/],
    ["neither remote nor group", { vni: 1, local: "10.0.0.1" }, "remote", /set remote .* or group/],
    ["both remote and group", { vni: 1, remote: "10.0.0.2", group: "239.1.1.1", device: "eth0" }, "group", /not both/],
    ["remote multicast", { vni: 1, remote: "239.1.1.1" }, "remote", /multicast address; use group/],
    ["group unicast", { vni: 1, group: "10.0.0.1", device: "eth0" }, "group", /not a multicast address.*use remote/],
    ["group without device", { vni: 1, group: "239.1.1.1" }, "device", /device is required with group/],
    ["families differ", { vni: 1, local: "10.0.0.1", remote: "fd00::2" }, "local", /ipv4 but remote "fd00::2" is ipv6/],
    ["local not an address", { vni: 1, local: "here", remote: "10.0.0.2" }, "local", /not an IP address/],
    ["bad device name", { vni: 1, group: "239.1.1.1", device: "a very long device" }, "device", /characters/],
    ["bad name", { ...BASE, name: "x".repeat(16) }, "name", /at most 15/],
  ];
  for (const [title, news, property, reason] of BAD) {
    it(`refuses ${title}, naming ${property} and the fix`, () => {
      const failures = check(news).failures;
      expect(failures.find((f) => f.property === property)?.reason).toMatch(reason);
    });
  }

  it("accepts values unknown during preview", () => {
    const full = { name: "vx0", namespace: "ns1", local: "10.0.0.1", remote: "10.0.0.2", master: "br0", mtu: 1450, addresses: ["10.1.0.1/24"], vni: 5, dstPort: 4789, learning: true };
    for (const key of Object.keys(full)) expect(check({ ...full, [key]: UNKNOWN }).failures, key).toEqual([]);
    expect(check({ vni: 5, group: UNKNOWN, device: "eth0" }).failures).toEqual([]);
  });
});

describe("Vxlan diff", () => {
  // As recorded: with the generation an update or a create gives it.
  const olds = { ...ok(BASE), generation: "7" };
  const diff = (news: Record<string, unknown>) => vxlan.diff("/vx0", olds as never, ok(news));

  it("no change is no diff", () => expect(diff(BASE)).toMatchObject({ changes: false, replaces: [] }));

  it("updates local, remote, learning, master, mtu, addresses and a switch to a group in place", () => {
    for (const news of [
      { ...BASE, remote: "10.99.0.3" },
      { ...BASE, local: "10.99.0.9" },
      { ...BASE, learning: false },
      { ...BASE, master: "br0", mtu: 1400, addresses: ["10.1.0.1/24"], up: false },
      { vni: 42, local: "10.99.0.1", group: "239.1.1.1", device: "u0" },
    ]) {
      expect(diff(news), JSON.stringify(news)).toMatchObject({ changes: true, replaces: [] });
    }
  });

  it("replaces vni, dstPort, name, namespace, a change of family and the removal of local or device", () => {
    expect(diff({ ...BASE, vni: 43 }).replaces).toEqual(["vni"]);
    expect(diff({ ...BASE, dstPort: 8472 }).replaces).toEqual(["dstPort"]);
    expect(diff({ ...BASE, name: "vx1", namespace: "ns1" }).replaces).toEqual(["name", "namespace"]);
    expect(diff({ vni: 42, local: "fd00::1", remote: "fd00::2" })).toMatchObject({ replaces: ["local", "remote"], deleteBeforeReplace: true });
    expect(diff({ vni: 42, remote: "10.99.0.2" }).replaces).toEqual(["local"]);
    expect(endpointReplaces({ group: "239.1.1.1", device: "u0" }, { remote: "10.0.0.2" })).toEqual(["device"]);
    expect(endpointReplaces({ remote: "10.0.0.2" }, { remote: "10.0.0.3", device: "u0" })).toEqual([]);
  });
});
