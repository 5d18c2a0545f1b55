import { describe, expect, it } from "vitest";
import { bridgeKind as bridge } from "../../provider/bridge";
import { ownerTag } from "../../provider/resource";
import { tapKind as tap } from "../../provider/tap";
import { ipByHand, linkByHand, OWNER, tunUsable, uniq } from "../helpers/kernel";

const owner = `${OWNER}/bridge-tap`;
const check = <T>(kind: { check: (o: undefined, n: Record<string, unknown>) => { inputs: T; failures: unknown[] } }, news: Record<string, unknown>) => {
  const r = kind.check(undefined, { __owner: owner, ...news });
  expect(r.failures).toEqual([]);
  return r.inputs;
};

describe("Bridge on the kernel", () => {
  it("runs the whole lifecycle with in-place updates", async () => {
    const name = uniq("kb");
    const want = check(bridge, { name, addresses: ["192.168.1.254/24"], mac: "02:00:00:00:00:01", mtu: 1500 });
    const { id, outs } = await bridge.create(want);
    const live = await linkByHand(name);
    expect(live).toMatchObject({ address: "02:00:00:00:00:01", mtu: 1500, ifalias: ownerTag(owner), linkinfo: { info_kind: "bridge", info_data: { stp_state: 0 } } });
    expect(live!.flags).toContain("UP");
    expect((await bridge.read(id, outs)).props).toEqual(outs);

    const changed = check(bridge, { name, addresses: ["10.0.0.1/24"], mac: "02:00:00:00:00:02", mtu: 1400, stp: true, up: false });
    expect(bridge.diff(id, outs, changed)).toMatchObject({ changes: true, replaces: [] });
    const { outs: o2 } = await bridge.update(id, outs, changed);
    const live2 = await linkByHand(name);
    expect(live2).toMatchObject({ ifindex: live!.ifindex, address: "02:00:00:00:00:02", mtu: 1400, linkinfo: { info_data: { stp_state: 1 } } });
    expect(live2!.flags).not.toContain("UP");
    expect(bridge.diff(id, (await bridge.read(id, o2)).props!, changed).changes).toBe(false);
    expect(bridge.diff(id, o2, check(bridge, { ...changed, name: `${name}x` }))).toMatchObject({ replaces: ["name"], deleteBeforeReplace: true });

    await bridge.delete(id, o2);
    expect(await linkByHand(name)).toBeUndefined();
    await bridge.delete(id, o2);
  });

  it("keeps its MAC while ports with lower MACs come and go, and gets the same one when recreated", async () => {
    const name = uniq("kb");
    const want = check(bridge, { name });
    expect(want.mac).toMatch(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/); // stable, locally administered
    const { id, outs } = await bridge.create(want);
    expect(outs.mac).toBe(want.mac);
    expect((await linkByHand(name))!.address).toBe(want.mac);
    // A Linux bridge without an address of its own takes its lowest port's MAC: add
    // ports lower than ours, remove them again, and the bridge must not move.
    const ports = [uniq("kp"), uniq("kp")];
    for (const [i, port] of ports.entries()) {
      await ipByHand("link", "add", port, "address", `02:00:00:00:00:0${i + 1}`, "type", "veth", "peer", "name", `${port}p`);
      await ipByHand("link", "set", port, "master", name, "up");
      expect((await linkByHand(name))!.address).toBe(want.mac);
    }
    await ipByHand("link", "del", ports[0]);
    expect((await linkByHand(name))!.address).toBe(want.mac);
    await ipByHand("link", "del", ports[1]);
    expect((await linkByHand(name))!.address).toBe(want.mac);
    expect((await bridge.read(id, outs)).inputs).toEqual(want);
    // Recreated (e.g. by `pulumi up --refresh` after a hand delete): the same MAC.
    await bridge.delete(id, outs);
    const again = await bridge.create(check(bridge, { name }));
    expect((await linkByHand(name))!.address).toBe(want.mac);
    await bridge.delete(again.id, again.outs);
  });

  it("adopting without a mac keeps the live one, and read gives back the inputs as stated", async () => {
    const name = uniq("kb");
    await ipByHand("link", "add", name, "address", "02:00:00:00:00:77", "type", "bridge");
    const want = check(bridge, { name, adopt: true });
    expect(want.mac).toBeUndefined();
    const { id, outs } = await bridge.create(want);
    expect(outs.mac).toBe("02:00:00:00:00:77");
    expect((await linkByHand(name))!.address).toBe("02:00:00:00:00:77");
    expect((await bridge.read(id, outs)).inputs).toEqual(want);
    await bridge.delete(id, outs);
    expect(await linkByHand(name)).toBeUndefined();
  });

  it("refuses vlanFiltering clearly on a kernel without it, leaving nothing", async () => {
    const name = uniq("kb");
    const r = await bridge.create(check(bridge, { name, vlanFiltering: true })).then(
      (ok) => ok,
      (err) => err,
    );
    if (r instanceof Error) {
      expect(r.message).toMatch(/vlanFiltering/);
      expect(await linkByHand(name)).toBeUndefined();
    } else {
      // This kernel supports it: it must really be on.
      expect((await linkByHand(name))!.linkinfo.info_data.vlan_filtering).toBe(1);
      await bridge.delete(r.id, r.outs);
    }
  });

  it("an update that turns on vlanFiltering together with stp and a mac, on a kernel without it, fails before writing anything", async () => {
    const name = uniq("kb");
    const { id, outs } = await bridge.create(check(bridge, { name }));
    try {
      const before = await linkByHand(name);
      const r = await bridge.update(id, outs, check(bridge, { name, stp: true, vlanFiltering: true, mac: "02:00:00:00:bb:01" })).then(
        (ok) => ok,
        (err) => err,
      );
      const after = (await linkByHand(name))!;
      if (r instanceof Error) {
        expect(r.message).toMatch(/vlanFiltering: this kernel has no bridge VLAN filtering/);
        // Nothing of the update: the next plain `pulumi up` (which diffs against the state) would not see it.
        expect(after.linkinfo.info_data.stp_state).toBe(0);
        expect(after.address).toBe(before!.address);
      } else {
        // This kernel supports it: all of it must really be on.
        expect(after.linkinfo.info_data).toMatchObject({ stp_state: 1, vlan_filtering: 1 });
        expect(after.address).toBe("02:00:00:00:bb:01");
      }
    } finally {
      await bridge.delete(id, outs);
    }
  });

  it("refuses a foreign interface of the same name and adopts only a bridge", async () => {
    const name = uniq("kb");
    await ipByHand("link", "add", "name", name, "type", "bridge");
    await expect(bridge.create(check(bridge, { name }))).rejects.toMatchObject({ kind: "AlreadyExists" });
    const adopted = await bridge.create(check(bridge, { name, adopt: true }));
    expect((await linkByHand(name))!.ifalias).toBe(ownerTag(owner));
    await bridge.delete(adopted.id, adopted.outs);
    await ipByHand("link", "add", "name", name, "type", "veth", "peer", "name", `${name}p`);
    await expect(bridge.create(check(bridge, { name, adopt: true }))).rejects.toThrow(/not a bridge/);
    expect(await linkByHand(name)).toBeDefined();
    await ipByHand("link", "del", name);

    // Another nslab resource's bridge: the refusal says so, as for the other kinds.
    const other = await bridge.create(check(bridge, { name, __owner: `${owner}/other` }));
    await expect(bridge.create(check(bridge, { name }))).rejects.toThrow(new RegExp(`bridge "${name}" .*already exists\\. It carries the mark of another nslab resource \\(${ownerTag(`${owner}/other`)}\\)\\. Remove it`));
    expect((await linkByHand(name))!.ifalias).toBe(ownerTag(`${owner}/other`));
    await bridge.delete(other.id, other.outs);
  });
});

describe.skipIf(!tunUsable)("TapDevice on the kernel", () => {
  it("runs the whole lifecycle: tap on a bridge, in-place updates, replace-only properties", async () => {
    const br = uniq("kb");
    const name = uniq("kt");
    const b = await bridge.create(check(bridge, { name: br }));
    const want = check(tap, { name, mode: "tap", owner: 1000, group: 1000, master: br, mtu: 1500 });
    const { id, outs } = await tap.create(want);
    const live = await linkByHand(name);
    expect(live).toMatchObject({ master: br, ifalias: ownerTag(owner), linkinfo: { info_kind: "tun", info_data: { type: "tap", multi_queue: false } } });
    const read = await tap.read(id, outs);
    expect(read.inputs).toMatchObject({ owner: 1000, group: 1000, mode: "tap", master: br });
    expect(tap.diff(id, read.props!, want).changes).toBe(false);

    const changed = check(tap, { name, mode: "tap", owner: 1000, group: 1000, mtu: 1400, mac: "02:00:00:00:00:33", addresses: ["10.9.0.1/24"], up: false });
    expect(tap.diff(id, outs, changed)).toMatchObject({ changes: true, replaces: [] });
    await tap.update(id, outs, changed);
    expect(await linkByHand(name)).toMatchObject({ ifindex: live!.ifindex, mtu: 1400, address: "02:00:00:00:00:33" });
    expect((await linkByHand(name))!.master).toBeUndefined();
    for (const prop of [{ mode: "tun", mac: undefined }, { owner: 0 }, { multiQueue: true }]) {
      expect(tap.diff(id, outs, check(tap, { ...changed, ...prop })).replaces.length).toBe(1);
    }
    await tap.delete(id, outs);
    expect(await linkByHand(name)).toBeUndefined();
    await tap.delete(id, outs);
    await bridge.delete(b.id, b.outs);
  });

  it("makes tun devices and refuses to adopt a mismatched one", async () => {
    const name = uniq("kt");
    const { id, outs } = await tap.create(check(tap, { name, mode: "tun", addresses: ["10.8.0.1/24"] }));
    expect((await linkByHand(name))!.linkinfo.info_data.type).toBe("tun");
    await expect(tap.create(check(tap, { name, mode: "tap", adopt: true }))).rejects.toThrow(/does not match \(mode/);
    // Another resource's device is refused (this resource's own would be taken over: an interrupted create).
    await expect(tap.create(check(tap, { name, mode: "tun", __owner: `${owner}/other` }))).rejects.toMatchObject({ kind: "AlreadyExists" });
    await tap.delete(id, outs);
  });

  it("reads owner and group that ip prints as names (nobody, nogroup) back as ids", async () => {
    const name = uniq("kt");
    const { id, outs } = await tap.create(check(tap, { name, mode: "tun", owner: 65534, group: 65534 }));
    expect((await linkByHand(name))!.linkinfo.info_data).toMatchObject({ user: "nobody", group: "nogroup" });
    expect((await tap.read(id, outs)).inputs).toMatchObject({ owner: 65534, group: 65534 });
    await tap.delete(id, outs);
  });
});
