/**
 * Vxlan against the real kernel (in the suite's sandbox): the whole lifecycle, in-place
 * changes keeping the interface (same ifindex), the fields that replace, adopt, and
 * delete that is idempotent and never touches a device nslab does not own.
 */
import { describe, expect, it } from "vitest";
import { bridgeKind as bridge } from "../../provider/bridge";
import { ownerTag } from "../../provider/resource";
import { vxlanKind as vxlan, VxlanInputs } from "../../provider/vxlan";
import { ipByHand, linkByHand, must, OWNER, uniq } from "../helpers/kernel";

const owner = `${OWNER}/vxlan`;
const check = (news: Record<string, unknown>): VxlanInputs => {
  const r = vxlan.check(undefined, { __owner: owner, ...news });
  expect(r.failures).toEqual([]);
  return r.inputs;
};
/** A VNI of this test's own, so that files running side by side never share one. */
const vniOf = () => 1 + Math.floor(Math.random() * 16_000_000);

describe("Vxlan on the kernel", () => {
  it("runs the whole lifecycle: create as stated, in-place updates keep the ifindex, read gives the inputs back", async () => {
    const name = uniq("kx");
    const br = uniq("kxb");
    const vni = vniOf();
    const b = await bridge.create(bridge.check(undefined, { __owner: `${owner}/br`, name: br }).inputs);
    const want = check({ name, vni, local: "10.99.0.1", remote: "10.99.0.2", master: br, mtu: 1400 });
    const { id, outs } = await vxlan.create(want);
    const live = await linkByHand(name);
    expect(live).toMatchObject({
      ifalias: ownerTag(owner), mtu: 1400, master: br, address: want.mac,
      linkinfo: { info_kind: "vxlan", info_data: { id: vni, local: "10.99.0.1", remote: "10.99.0.2", port: 4789, learning: true } },
    });
    expect(live!.flags).toContain("UP");
    const read = await vxlan.read(id, outs);
    expect(read.inputs).toEqual(want);
    expect(vxlan.diff(id, read.props!, want).changes).toBe(false);

    // learning, remote and local change in place: the same interface, new attributes.
    const changed = check({ ...want, remote: "10.99.0.3", local: "10.99.0.5", learning: false, mac: undefined, __owner: owner });
    expect(vxlan.diff(id, outs, changed)).toMatchObject({ changes: true, replaces: [] });
    const { outs: o2 } = await vxlan.update(id, outs, changed);
    const live2 = await linkByHand(name);
    expect(live2).toMatchObject({ ifindex: live!.ifindex, linkinfo: { info_data: { id: vni, local: "10.99.0.5", remote: "10.99.0.3", learning: false } } });
    expect(vxlan.diff(id, (await vxlan.read(id, o2)).props!, changed).changes).toBe(false);

    // vni and port the kernel cannot change: diff replaces them.
    expect(vxlan.diff(id, o2, check({ ...changed, vni: vni + 1 })).replaces).toEqual(["vni"]);
    expect(vxlan.diff(id, o2, check({ ...changed, dstPort: 8472 })).replaces).toEqual(["dstPort"]);
    await expect(ipByHand("link", "set", name, "type", "vxlan", "id", String(vni + 1))).rejects.toThrow(/Cannot change VNI/);

    await vxlan.delete(id, o2);
    expect(await linkByHand(name)).toBeUndefined();
    await vxlan.delete(id, o2);
    await bridge.delete(b.id, b.outs);
  });

  it("sees drift (learning flipped, device deleted) in read, and update repairs the flip in place", async () => {
    const name = uniq("kx");
    const want = check({ name, vni: vniOf(), remote: "10.99.0.2" });
    const { id, outs } = await vxlan.create(want);
    const ifindex = (await linkByHand(name))!.ifindex;
    await ipByHand("link", "set", name, "type", "vxlan", "nolearning");
    const drifted = await vxlan.read(id, outs);
    expect(drifted.inputs).toMatchObject({ learning: false });
    expect(vxlan.diff(id, drifted.props!, want)).toMatchObject({ changes: true, replaces: [] });
    await vxlan.update(id, drifted.props!, want);
    expect(await linkByHand(name)).toMatchObject({ ifindex, linkinfo: { info_data: { learning: true } } });
    await ipByHand("link", "del", name);
    expect(await vxlan.read(id, outs)).toEqual({});
    await vxlan.delete(id, outs);
  });

  it("a default forwarding entry deleted by hand (bridge fdb del, the device still shows its remote or group) is read as no peer, and update puts it back", async () => {
    const defaults = async (dev: string) => JSON.parse(await must("bridge", ["-json", "fdb", "show", "dev", dev])).filter((e: { mac: string }) => e.mac === "00:00:00:00:00:00");
    const under = uniq("ku");
    await ipByHand("link", "add", under, "type", "veth", "peer", "name", `${under}p`);
    await ipByHand("address", "add", "10.97.0.1/24", "dev", under);
    await ipByHand("link", "set", under, "up");
    try {
      for (const [peer, want] of [
        ["remote", check({ name: uniq("kx"), vni: vniOf(), local: "10.97.0.1", remote: "10.97.0.2" })],
        // With an underlay device, the kernel's entry leaves by it (via): put back alike.
        ["remote", check({ name: uniq("kx"), vni: vniOf(), local: "10.97.0.1", remote: "10.97.0.2", device: under })],
        ["group", check({ name: uniq("kx"), vni: vniOf(), local: "10.97.0.1", group: "239.1.1.7", device: under })],
      ] as const) {
        const { id, outs } = await vxlan.create(want);
        const made = await defaults(want.name);
        expect(made).toHaveLength(1);
        expect((await vxlan.read(id, outs)).inputs).toEqual(want);
        await must("bridge", ["fdb", "del", "00:00:00:00:00:00", "dev", want.name, "dst", want[peer]!, ...(want.device ? ["via", under] : [])]);
        expect(await defaults(want.name)).toEqual([]);
        const drifted = await vxlan.read(id, outs);
        expect(drifted.inputs).not.toHaveProperty(peer);
        expect(vxlan.diff(id, drifted.props!, want)).toMatchObject({ changes: true, replaces: [] });
        const { outs: repaired } = await vxlan.update(id, drifted.props!, want);
        expect(await defaults(want.name)).toEqual(made);
        expect((await vxlan.read(id, repaired)).inputs).toEqual(want);
        // An entry to the peer on another port is not the device's own: still no peer.
        await must("bridge", ["fdb", "del", "00:00:00:00:00:00", "dev", want.name, "dst", want[peer]!, ...(want.device ? ["via", under] : [])]);
        await must("bridge", ["fdb", "append", "00:00:00:00:00:00", "dev", want.name, "dst", want[peer]!, "port", "9999", ...(want.device ? ["via", under] : []), "self", "permanent"]);
        expect((await vxlan.read(id, repaired)).inputs).not.toHaveProperty(peer);
        await vxlan.delete(id, repaired);
      }
    } finally {
      await ipByHand("link", "del", under);
    }
  });

  it("IPv6 endpoints: created, read back as stated (ip prints local6/remote6), remote changed in place", async () => {
    const name = uniq("kx");
    const want = check({ name, vni: vniOf(), local: "fd00:99::1", remote: "FD00:99:0::2" });
    const { id, outs } = await vxlan.create(want);
    const live = await linkByHand(name);
    expect(live!.linkinfo.info_data).toMatchObject({ local6: "fd00:99::1", remote6: "fd00:99::2" });
    expect((await vxlan.read(id, outs)).inputs).toEqual(want);
    const moved = check({ ...want, remote: "fd00:99::3", mac: undefined });
    expect(vxlan.diff(id, outs, moved).replaces).toEqual([]);
    const { outs: o2 } = await vxlan.update(id, outs, moved);
    expect(await linkByHand(name)).toMatchObject({ ifindex: live!.ifindex, linkinfo: { info_data: { remote6: "fd00:99::3" } } });
    // To IPv4 the kernel refuses in place: diff replaces.
    expect(vxlan.diff(id, o2, check({ name, vni: want.vni, local: "10.99.0.1", remote: "10.99.0.2" })).replaces).toEqual(["local", "remote"]);
    await vxlan.delete(id, o2);
    expect(await linkByHand(name)).toBeUndefined();
  });

  it("a multicast group with its underlay device, switched in place to a unicast remote", async () => {
    const name = uniq("kx");
    const under = uniq("ku");
    await ipByHand("link", "add", under, "type", "veth", "peer", "name", `${under}p`);
    await ipByHand("address", "add", "10.98.0.1/24", "dev", under);
    await ipByHand("link", "set", under, "up");
    const want = check({ name, vni: vniOf(), local: "10.98.0.1", group: "239.1.1.9", device: under, learning: false });
    const { id, outs } = await vxlan.create(want);
    expect(await linkByHand(name)).toMatchObject({ linkinfo: { info_data: { group: "239.1.1.9", link: under, learning: false } } });
    expect((await vxlan.read(id, outs)).inputs).toEqual(want);
    const unicast = check({ ...want, group: undefined, remote: "10.98.0.2", mac: undefined });
    expect(vxlan.diff(id, outs, unicast).replaces).toEqual([]);
    const { outs: o2 } = await vxlan.update(id, outs, unicast);
    const live = await linkByHand(name);
    expect(live!.linkinfo.info_data).toMatchObject({ remote: "10.98.0.2", link: under });
    expect(live!.linkinfo.info_data.group).toBeUndefined();
    await vxlan.delete(id, o2);
    await ipByHand("link", "del", under);
  });

  it("made again by update when its underlay device was made anew (the kernel deletes it with it); missing otherwise is a clear error", async () => {
    const name = uniq("kx");
    const under = uniq("ku");
    const underlay = async () => {
      await ipByHand("link", "add", under, "type", "veth", "peer", "name", `${under}p`);
      await ipByHand("address", "add", "10.97.0.1/24", "dev", under);
      await ipByHand("link", "set", under, "up");
    };
    await underlay();
    const want = check({ name, vni: vniOf(), local: "10.97.0.1", remote: "10.97.0.2", device: under, addresses: ["10.96.0.1/24"], __links: ["100"] });
    const { id, outs } = await vxlan.create(want);
    // The underlay made anew: the kernel takes the VXLAN device along.
    await ipByHand("link", "del", under);
    expect(await linkByHand(name)).toBeUndefined();
    await underlay();
    const next = check({ ...want, mac: undefined, __links: ["101"] });
    expect(vxlan.diff(id, outs, next)).toMatchObject({ changes: true, replaces: [] });
    const { outs: o2 } = await vxlan.update(id, outs, next);
    const live = await linkByHand(name);
    expect(live).toMatchObject({ ifalias: ownerTag(owner), address: want.mac, linkinfo: { info_data: { link: under, local: "10.97.0.1", remote: "10.97.0.2" } } });
    expect(live!.addr_info.map((a: { local: string }) => a.local)).toContain("10.96.0.1");
    expect(o2.generation).toBe(String(live!.ifindex));
    expect((await vxlan.read(id, o2)).inputs).toEqual(next);

    // Gone with its generations unchanged (deleted by hand): update says so, makes nothing.
    await ipByHand("link", "del", name);
    await expect(vxlan.update(id, o2, next)).rejects.toThrow(/is in the stack's state but not in the kernel .*pulumi up --refresh/);
    expect(await linkByHand(name)).toBeUndefined();
    await vxlan.delete(id, o2);
    await ipByHand("link", "del", under);
  });

  it("adopts a matching device by hand (keeping its MAC), refuses one whose vni differs, and fails clearly on a name taken", async () => {
    const name = uniq("kx");
    const vni = vniOf();
    await ipByHand("link", "add", name, "address", "02:00:00:00:00:42", "type", "vxlan", "id", String(vni), "remote", "10.99.0.2", "dstport", "4789");
    await expect(vxlan.create(check({ name, vni, remote: "10.99.0.2" }))).rejects.toThrow(/already exists.*adopt: true/);
    await expect(vxlan.create(check({ name, vni: vni + 1, remote: "10.99.0.2", adopt: true }))).rejects.toThrow(new RegExp(`cannot adopt: vni: desire '${vni + 1}', current '${vni}'`));
    // Nothing was changed by the refusals, and the foreign device is still there.
    const foreign = await linkByHand(name);
    expect(foreign!.ifalias).toBeUndefined();
    expect(foreign!.linkinfo.info_data.id).toBe(vni);

    // An adopt that fails (its master is not there) gives the device its own alias back.
    await ipByHand("link", "set", "dev", name, "alias", "theirs");
    await expect(vxlan.create(check({ name, vni, remote: "10.99.0.2", master: "kxnobr", adopt: true }))).rejects.toThrow(/kxnobr/);
    expect((await linkByHand(name))!.ifalias).toBe("theirs");
    await ipByHand("link", "set", "dev", name, "alias", "");

    const want = check({ name, vni, remote: "10.99.0.2", learning: false, adopt: true });
    const { id, outs } = await vxlan.create(want);
    expect(outs.mac).toBe("02:00:00:00:00:42");
    expect(await linkByHand(name)).toMatchObject({ ifalias: ownerTag(owner), address: "02:00:00:00:00:42", linkinfo: { info_data: { learning: false } } });
    expect((await vxlan.read(id, outs)).inputs).toEqual(want);
    await vxlan.delete(id, outs);
    expect(await linkByHand(name)).toBeUndefined();
  });

  it("a second device with another name but the same vni and port is refused naming the device that has them, not the name", async () => {
    const vni = vniOf();
    const first = await vxlan.create(check({ name: uniq("kx"), vni, remote: "10.99.0.2" }));
    const name = uniq("kx");
    const err = await vxlan.create(check({ name, vni, remote: "10.99.0.3" })).catch((e: Error) => e);
    expect(String(err)).toContain(
      `vxlan "${name}" in the program's namespace: vxlan "${first.outs.name}" there already uses vni ${vni} on UDP port 4789, and the kernel takes one device per vni and port in a namespace. Give this one another vni (the same on its other end; for a HostLink, its vni) or dstPort, or remove "${first.outs.name}".`,
    );
    expect(await linkByHand(name)).toBeUndefined();
    // Another port is another device.
    const other = await vxlan.create(check({ name, vni, remote: "10.99.0.3", dstPort: 4790 }));
    await vxlan.delete(other.id, other.outs);
    await vxlan.delete(first.id, first.outs);
  });

  it("never deletes a device it does not own, and a failed create leaves nothing", async () => {
    const name = uniq("kx");
    const vni = vniOf();
    await ipByHand("link", "add", name, "type", "vxlan", "id", String(vni), "remote", "10.99.0.2", "dstport", "4789");
    const props = { ...check({ name, vni, remote: "10.99.0.2" }), mac: undefined } as never;
    await vxlan.delete(`/${name}`, props);
    expect(await linkByHand(name)).toMatchObject({ linkinfo: { info_kind: "vxlan" } });
    expect(await vxlan.read(`/${name}`, props)).toEqual({});
    await ipByHand("link", "del", name);

    // master names no bridge: the kernel refuses it after the device was made; it goes again.
    const failed = uniq("kx");
    await expect(vxlan.create(check({ name: failed, vni: vniOf(), remote: "10.99.0.2", master: "nosuchbr" }))).rejects.toThrow(/master "nosuchbr" does not exist/);
    expect(await linkByHand(failed)).toBeUndefined();
  });
});
