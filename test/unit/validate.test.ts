import { describe, expect, it } from "vitest";
import { canonicalCidr, Checker, familyOf, networkOf } from "../../provider/validate";

describe("Checker", () => {
  it.each([
    ["veth-ns1", "veth-ns1"],
    ["a", "a"],
    ["br0.100", "br0.100"],
    ["x23456789012345", "x23456789012345"],
  ])("accepts interface name %s", (raw, want) => {
    const c = new Checker();
    expect(c.ifname(raw, "name")).toBe(want);
    expect(c.failures).toEqual([]);
  });

  it.each([
    ["x234567890123456", /at most 15/],
    ["", /required/],
    ["has space", /may only contain/],
    ["-dash", /may only contain/],
    ["a/b", /may only contain/],
    ["default", /reserved/],
    [42, /must be a string/],
  ])("refuses interface name %j", (raw, reason) => {
    const c = new Checker();
    expect(c.ifname(raw, "a.name")).toBeUndefined();
    expect(c.failures).toHaveLength(1);
    expect(c.failures[0].property).toBe("a.name");
    expect(c.failures[0].reason).toMatch(reason);
  });

  it("normalises addresses canonically and drops duplicates", () => {
    const c = new Checker();
    expect(c.addresses(["192.168.1.1/24", "FD00:0:0::1/64", "192.168.1.1/24"], "addresses")).toEqual([
      "192.168.1.1/24",
      "fd00::1/64",
    ]);
    expect(c.failures).toEqual([]);
  });

  it("names the bad element of an address list", () => {
    const c = new Checker();
    c.addresses(["192.168.1.1/24", "192.168.1.300/24"], "b.addresses");
    expect(c.failures.map((f) => f.property)).toEqual(["b.addresses[1]"]);
  });

  it("refuses networks with host bits and suggests the network", () => {
    const c = new Checker();
    expect(c.network("10.1.2.3/8", "destination")).toBeUndefined();
    expect(c.failures[0].reason).toContain('"10.0.0.0/8"');
  });

  it.each([
    ["02:00:00:00:00:01", "02:00:00:00:00:01"],
    ["02:AB:CD:EF:00:01", "02:ab:cd:ef:00:01"],
  ])("accepts MAC %s", (raw, want) => {
    const c = new Checker();
    expect(c.mac(raw, "mac")).toBe(want);
  });

  it.each(["01:00:5e:00:00:01", "00:00:00:00:00:00", "02:00:00:00:01", "zz:00:00:00:00:01"])("refuses MAC %s", (raw) => {
    const c = new Checker();
    expect(c.mac(raw, "mac")).toBeUndefined();
    expect(c.failures[0].property).toBe("mac");
  });

  it.each([67, 65536, 1500.5, "1500"])("refuses MTU %j", (raw) => {
    const c = new Checker();
    expect(c.mtu(raw, "mtu")).toBeUndefined();
    expect(c.failures[0].reason).toMatch(/integer from 68 to 65535/);
  });
});

describe("IP arithmetic", () => {
  it.each([
    ["192.168.1.7/24", "192.168.1.0/24"],
    ["fd00::1:2/64", "fd00::/64"],
    ["10.0.0.0/8", "10.0.0.0/8"],
  ])("networkOf(%s) = %s", (cidr, net) => {
    expect(networkOf(canonicalCidr(cidr)!)).toBe(net);
  });

  it("tells families apart", () => {
    expect(familyOf("10.0.0.1")).toBe("ipv4");
    expect(familyOf("fd00::/64")).toBe("ipv6");
  });
});
