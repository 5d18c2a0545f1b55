/**
 * A tool missing inside a namespace (nslab runs `nsenter --net=... nft|sysctl`) is an
 * explicit error, never "the object is gone": refresh and delete must not drop a rule
 * or a forwarding switch from the state while it stays in the kernel. The tools are
 * really missing: PATH is cut down to /usr/bin, which has ip, nsenter and flock but
 * not nft or sysctl (both in /usr/sbin).
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forwardingKind as fwd } from "../../provider/forwarding";
import { resetSnapshots } from "../../provider/kernel";
import { natKind as nat } from "../../provider/nat";
import { namespaceKind } from "../../provider/namespace";
import { ipByHand, must, OWNER, uniq } from "../helpers/kernel";

const ns = uniq("kmt");
const CUT_PATH = "/usr/bin";
const missingThere = !fs.existsSync(`${CUT_PATH}/nft`) && !fs.existsSync(`${CUT_PATH}/sysctl`);

/** Runs `work` with PATH cut down, restoring it after. */
async function withoutTools<T>(work: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = CUT_PATH;
  resetSnapshots();
  try {
    return await work();
  } finally {
    process.env.PATH = saved;
  }
}

describe.skipIf(!missingThere)("a missing nft or sysctl in a namespace", () => {
  beforeAll(async () => {
    await namespaceKind.create(namespaceKind.check(undefined, { name: ns, __owner: `${OWNER}/missing/ns` }).inputs);
  });
  afterAll(async () => {
    await ipByHand("netns", "delete", ns).catch(() => undefined);
  });

  it("NatRule: read and delete fail with 'nft is not installed'; the rule stays", async () => {
    const rule = nat.check(undefined, { namespace: ns, kind: "masquerade", source: "10.1.0.0/16", __owner: `${OWNER}/missing/nat` }).inputs;
    const { id, outs } = await nat.create(rule);
    await withoutTools(async () => {
      await expect(nat.read(id, outs)).rejects.toThrow(/masquerade rule in namespace "kmt[^"]*": nft is not installed/);
      await expect(nat.delete(id, outs)).rejects.toThrow(/nft is not installed/);
      await expect(nat.create(rule)).rejects.toThrow(/nft is not installed/);
    });
    expect(await must("ip", ["netns", "exec", ns, "nft", "list", "table", "inet", "nslab"])).toContain("ip saddr 10.1.0.0/16 masquerade");
    resetSnapshots();
    expect((await nat.read(id, outs)).inputs).toEqual(rule);
    await nat.delete(id, outs);
  });

  it("IpForwarding: read and delete fail with 'sysctl is not installed'; the switch stays", async () => {
    const want = fwd.check(undefined, { namespace: ns, ipv4: true, __owner: `${OWNER}/missing/fwd` }).inputs;
    const { id, outs } = await fwd.create(want);
    await withoutTools(async () => {
      await expect(fwd.read(id, outs)).rejects.toThrow(/IP forwarding in namespace "kmt[^"]*": sysctl is not installed/);
      await expect(fwd.delete(id, outs)).rejects.toThrow(/sysctl is not installed/);
    });
    expect((await must("ip", ["netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"])).trim()).toBe("1");
    await fwd.delete(id, outs);
    expect((await must("ip", ["netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"])).trim()).toBe("0");
  });
});
