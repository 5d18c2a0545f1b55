import { describe, expect, it } from "vitest";
import { impairmentKind } from "../../provider/impairment";
import { bridgeKind } from "../../provider/bridge";
import { announceMade, generationOf, LinkSettings, LiveLink, recordingGeneration } from "../../provider/link";
import { vethKind } from "../../provider/veth";
import { madeAnew, processKind } from "../../provider/process";
import { neighUseIn } from "../../provider/kernel";
import { reachabilityKind } from "../../provider/reachability";
import { diffFields, isNslabTag, LINKS_RULE, linksInput, ownerTag } from "../../provider/resource";
import { routeKind } from "../../provider/route";
import { isUnknown, UNKNOWN } from "../../provider/validate";

const RULES = [
  { name: "name", replace: true },
  { name: "addresses", set: true },
  { name: "mac", computed: true },
  { name: "mtu" },
];

describe("diffFields", () => {
  const base = { name: "x", addresses: ["10.0.0.1/24", "10.0.1.1/24"], mac: "02:00:00:00:00:01", mtu: 1500 };

  it("is empty for identical inputs", () => {
    expect(diffFields(base, { ...base }, RULES)).toEqual({ changes: false, replaces: [], stables: ["name"], deleteBeforeReplace: false });
  });

  it("ignores address order and an unset computed field", () => {
    const d = diffFields(base, { ...base, addresses: ["10.0.1.1/24", "10.0.0.1/24"], mac: undefined }, RULES);
    expect(d.changes).toBe(false);
  });

  it("updates in place for in-place fields", () => {
    const d = diffFields(base, { ...base, mtu: 9000 }, RULES);
    expect(d).toMatchObject({ changes: true, replaces: [], deleteBeforeReplace: false });
  });

  it("replaces, deleting first, when a replace field changes", () => {
    const d = diffFields(base, { ...base, name: "y" }, RULES);
    expect(d).toMatchObject({ changes: true, replaces: ["name"], deleteBeforeReplace: true });
  });
});

describe("ownerTag", () => {
  it("is stable, distinct per owner and recognisable", () => {
    expect(ownerTag("p/s/Namespace/a")).toBe(ownerTag("p/s/Namespace/a"));
    expect(ownerTag("p/s/Namespace/a")).not.toBe(ownerTag("p/s/Namespace/b"));
    expect(isNslabTag(ownerTag("x"))).toBe(true);
    expect(isNslabTag("someone else")).toBe(false);
  });
});

describe("interfaces made anew: generations and the resources that depend on them", () => {
  const live = (ifindex: number, up: boolean) => ({ ifindex, up }) as LiveLink;

  it("a generation is the ifindex, counting the times the interface came back up; a state from before generations gets one", () => {
    expect(generationOf(live(5, true))).toBe("5");
    expect(generationOf(live(5, true), { generation: "5", up: true })).toBe("5");
    expect(generationOf(live(5, false), { generation: "5", up: true })).toBe("5");
    expect(generationOf(live(5, true), { generation: "5", up: false })).toBe("5+1");
    expect(generationOf(live(5, true), { generation: "5+1", up: false })).toBe("5+2");
    // Made anew: a new ifindex, and the count starts again.
    expect(generationOf(live(9, true), { generation: "5+2", up: true })).toBe("9");
    expect(generationOf(live(5, true), { up: true })).toBe("5");
  });

  it("an interface recorded without a generation (an nslab from before) is updated once, to record one", () => {
    const same = { changes: false, replaces: [], stables: [], deleteBeforeReplace: false };
    expect(recordingGeneration(same, { generation: "5" })).toEqual(same);
    expect(recordingGeneration(same, {})).toMatchObject({ changes: true, replaces: [] });
    const br = bridgeKind.check(undefined, { name: "br9", __owner: "p/s/Bridge/br9" }).inputs;
    expect(bridgeKind.diff("", { ...br, generation: "5" }, br).changes).toBe(false);
    expect(bridgeKind.diff("", br, br)).toMatchObject({ changes: true, replaces: [] });
    const pair = vethKind.check(undefined, { a: { name: "x0" }, b: { name: "x1" }, __owner: "p/s/VethPair/x" }).inputs;
    expect(vethKind.diff("", { ...pair, generation: "5/6" }, pair).changes).toBe(false);
    expect(vethKind.diff("", pair, pair)).toMatchObject({ changes: true, replaces: [] });
  });

  it("__links: a changed generation updates in place; none recorded and none given (a state from before, or no dependsOn) is no change", () => {
    const rules = [{ name: "destination", replace: true }, LINKS_RULE];
    const route = { destination: "default" };
    expect(diffFields({ ...route }, { ...route, __links: linksInput([]) }, rules).changes).toBe(false);
    expect(diffFields({ ...route, __links: ["5"] }, { ...route, __links: linksInput(["5"]) }, rules).changes).toBe(false);
    expect(diffFields({ ...route, __links: ["5", "7"] }, { ...route, __links: linksInput(["7", "5"]) }, rules).changes).toBe(false);
    expect(diffFields({ ...route, __links: ["5"] }, { ...route, __links: linksInput(["9"]) }, rules)).toMatchObject({ changes: true, replaces: [] });
    expect(diffFields({ ...route }, { ...route, __links: linksInput(["9"]) }, rules)).toMatchObject({ changes: true, replaces: [] });
    // Unknown in a preview (an interface about to be made): an update.
    expect(diffFields({ ...route, __links: ["5"] }, { ...route, __links: linksInput(UNKNOWN) }, rules)).toMatchObject({ changes: true, replaces: [] });
    // Entries missing (a preview of an interface that changes has no generation for it): an update, to be safe.
    expect(diffFields({ ...route, __links: ["5", "7"] }, { ...route, __links: linksInput(["5"]) }, rules).changes).toBe(true);
    // dependsOn taken away: nothing to write again.
    expect(diffFields({ ...route, __links: ["5"] }, { ...route, __links: linksInput(undefined) }, rules).changes).toBe(false);
    expect(linksInput([undefined, "5", null])).toEqual(["5"]);
  });

  it("Route, LinkImpairment and Reachability take __links in check and update in place when it changes", () => {
    const r = routeKind.check(undefined, { destination: "default", gateway: "10.0.0.1", __links: ["3", "4"], __owner: "p/s/Route/r" });
    expect(r.failures).toEqual([]);
    expect(r.inputs.__links).toEqual(["3", "4"]);
    expect(routeKind.diff("", r.inputs, { ...r.inputs, __links: ["3", "8"] })).toMatchObject({ changes: true, replaces: [] });
    const i = impairmentKind.check(undefined, { device: "eth0", egress: { rate: "10mbit" }, __links: ["3"], __owner: "p/s/LinkImpairment/i" });
    expect(i.failures).toEqual([]);
    expect(impairmentKind.diff("", impairmentKind.check(undefined, { device: "eth0", egress: { rate: "10mbit" }, __owner: "p/s/LinkImpairment/i" }).inputs as never, i.inputs)).toMatchObject({ changes: true, replaces: [] });
    const p = reachabilityKind.check(undefined, { from: "h1", to: "10.0.0.1", __links: ["3"], __owner: "p/s/Reachability/p" });
    expect(p.failures).toEqual([]);
    expect(reachabilityKind.diff("", { ...p.inputs, reachable: true }, { ...p.inputs, __links: ["9"] })).toMatchObject({ changes: true, replaces: [] });
  });
});

describe("announceMade: what announces the addresses of an interface just made", () => {
  const desired = (addresses: string[], mac: string | undefined = "02:aa:00:00:00:01"): LinkSettings => ({ name: "e0", addresses, mac, up: true });
  const live = (addresses: string[], over: Partial<LiveLink> = {}) => ({ up: true, mac: "02:aa:00:00:00:01", addresses, allAddresses: addresses, ...over }) as LiveLink;

  it("IPv4: each address asked for once and its entry removed; IPv6: the MAC set again (ndisc_notify)", () => {
    expect(announceMade(desired(["10.0.0.3/24"]), live(["10.0.0.3/24"]), true)).toEqual([
      ["neigh", "replace", "10.0.0.3", "dev", "e0", "use"],
      ["neigh", "del", "10.0.0.3", "dev", "e0"],
    ]);
    expect(announceMade(desired(["fd00::3/64", "10.0.0.3/24"]), live(["fd00::3/64", "10.0.0.3/24"]), true)).toEqual([
      ["link", "set", "dev", "e0", "address", "02:aa:00:00:00:01"],
      ["neigh", "replace", "10.0.0.3", "dev", "e0", "use"],
      ["neigh", "del", "10.0.0.3", "dev", "e0"],
    ]);
  });

  it("an ip older than iproute2 5.16 has no `neigh ... use` (and ends its batch session at the word): no IPv4 announcement there, IPv6 still", () => {
    expect(announceMade(desired(["fd00::3/64", "10.0.0.3/24"]), live(["fd00::3/64", "10.0.0.3/24"]), false)).toEqual([["link", "set", "dev", "e0", "address", "02:aa:00:00:00:01"]]);
    expect(announceMade(desired(["10.0.0.3/24"]), live(["10.0.0.3/24"]), false)).toEqual([]);
    expect(neighUseIn("ip utility, iproute2-6.1.0")).toBe(true);
    expect(neighUseIn("ip utility, iproute2-5.16.0, libbpf 0.5.0")).toBe(true);
    expect(neighUseIn("ip utility, iproute2-5.15.0, libbpf 0.5.0")).toBe(false);
    expect(neighUseIn("ip utility, iproute2-ss200127")).toBe(false);
    expect(neighUseIn("ip utility, iproute2-v6.10.0")).toBe(true);
    expect(neighUseIn("")).toBe(false);
  });

  it("nothing for an interface that is down, has no address, or no MAC of the program's", () => {
    expect(announceMade(desired(["10.0.0.3/24"]), live(["10.0.0.3/24"], { up: false }), true)).toEqual([]);
    expect(announceMade(desired([]), live([]), true)).toEqual([]);
    expect(announceMade({ ...desired(["10.0.0.3/24"]), mac: undefined }, live(["10.0.0.3/24"]), true)).toEqual([]);
    expect(announceMade(desired(["10.0.0.3/24"]), live(["10.0.0.3/24"], { mac: "02:bb:00:00:00:01" }), true)).toEqual([]);
    // An address the kernel does not show (it refused it: converge's verify says so) is not asked for.
    expect(announceMade(desired(["10.0.0.3/24"]), live([]), true)).toEqual([]);
  });
});

describe("Process: which changes of its interfaces' generations start it again (madeAnew)", () => {
  const links = (...l: string[]) => ({ __links: l });

  it("keyed by interface: one of them with another ifindex is made anew; one added and one removed (a host renamed), or one back up, is not", () => {
    expect(madeAnew(links("aa=5/6", "bb=7/8"), links("aa=5/6", "bb=11/12"))).toBe(true);
    expect(madeAnew(links("aa=5/6", "bb=7/8"), links("aa=5/6", "cc=11/12"))).toBe(false);
    expect(madeAnew(links("aa=5/6", "bb=7/8"), links("aa=5/6", "bb=7+1/8"))).toBe(false);
    expect(madeAnew(links("aa=5/6"), links("aa=5/6", "cc=11/12"))).toBe(false);
    expect(madeAnew(links("aa=5/6", "bb=7/8"), links("aa=5/6"))).toBe(false);
    // Two interfaces of one key (default names in one namespace): unchanged is no renewal.
    expect(madeAnew(links("aa=7", "aa=12"), links("aa=7", "aa=12"))).toBe(false);
    expect(madeAnew(links("aa=7", "aa=12"), links("aa=12", "aa=7"))).toBe(false);
    expect(madeAnew(links("aa=7", "aa=12"), links("aa=7", "aa=15"))).toBe(true);
    expect(madeAnew(links("aa=7", "aa=12"), links("aa=7", "aa=12", "aa=15"))).toBe(false);
  });

  it("unkeyed (a state from before keys, another copy of nslab): as many as before, one with another ifindex", () => {
    expect(madeAnew(links("5/6", "7/8"), links("aa=5/6", "bb=7/8"))).toBe(false);
    expect(madeAnew(links("5/6"), links("aa=9/10"))).toBe(true);
    expect(madeAnew(links("5/6", "7/8"), links("5/6", "11/12"))).toBe(true);
    expect(madeAnew(links("5/6"), links("5/6", "11/12"))).toBe(false);
    expect(madeAnew({}, links("aa=5/6"))).toBe(false);
  });

  it("a state from before keys is updated once, to record them, and nothing restarts", () => {
    const p = processKind.check(undefined, { command: ["/bin/sleep", "9"], __links: ["aa=5/6"], __owner: "p/s/Process/p" });
    expect(p.failures).toEqual([]);
    expect(processKind.diff("", { ...p.inputs, __links: ["5/6"] } as never, p.inputs)).toMatchObject({ changes: true, replaces: [] });
    expect(processKind.diff("", p.inputs as never, p.inputs).changes).toBe(false);
  });
});
