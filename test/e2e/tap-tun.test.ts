import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Lab, REPO, sandboxPerTest, show } from "../helpers/lab";
import { tunUsable } from "../helpers/kernel";
import { Sandbox } from "../helpers/sandbox";

const PEER = path.join(REPO, "examples/05-tap-tun/peer.py");

/** Starts peer.py inside the sandbox and resolves once it is attached. */
function startPeer(sandbox: Sandbox, device: string, mode: string, address: string) {
  const child = sandbox.spawn("python3", [PEER, device, mode, address, "20"]);
  const lines: Record<string, unknown>[] = [];
  let buffer = "";
  const attached = new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      buffer += d;
      for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
        const line = JSON.parse(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        lines.push(line);
        if (line.attached) resolve();
      }
    });
    child.on("exit", (code) => reject(new Error(`peer.py exited ${code}`)));
  });
  return { child, lines, attached };
}

describe.skipIf(!tunUsable)("scenario 5: tap and tun through the real Pulumi engine", () => {
  let sandbox: Sandbox;
  let lab: Lab;
  sandboxPerTest((s) => (sandbox = s));

  it("a user-space peer receives the frames/packets the kernel sends, and its replies arrive", async () => {
    lab = await Lab.fromExample(sandbox, "05-tap-tun");
    const up = await lab.up();
    expect(up.exitCode, show(up)).toBe(0);
    expect(await lab.outputs()).toMatchObject({
      tapDevice: { name: "tap0", mode: "tap", mac: "02:00:00:00:09:01", addresses: ["10.9.0.1/24"] },
      tunDevice: { name: "tun0", mode: "tun", addresses: ["10.9.1.1/24"] },
    });

    const tap = startPeer(sandbox, "tap0", "tap", "10.9.0.2");
    const tun = startPeer(sandbox, "tun0", "tun", "10.9.1.2");
    await Promise.all([tap.attached, tun.attached]);
    const pingTap = await sandbox.run("ping", ["-c", "2", "-W", "2", "10.9.0.2"]);
    const pingTun = await sandbox.run("ping", ["-c", "2", "-W", "2", "10.9.1.2"]);
    tap.child.kill();
    tun.child.kill();

    // tap: the kernel's ARP request and ICMP echo (Ethernet frames from tap0's MAC).
    expect(tap.lines).toContainEqual(expect.objectContaining({ ethertype: "0x0806", src: "02:00:00:00:09:01", arp_request_for: "10.9.0.2", answered: true }));
    expect(tap.lines).toContainEqual(expect.objectContaining({ ethertype: "0x0800", dst_ip: "10.9.0.2", answered: true }));
    // tun: bare IPv4 packets, no Ethernet header.
    expect(tun.lines).toContainEqual(expect.objectContaining({ kind: "ip", version: 4, src: "10.9.1.1", dst: "10.9.1.2", proto: 1, answered: true }));
    // What the peers wrote arrived on the interfaces: ping got its replies.
    expect(pingTap.exitCode, pingTap.stdout).toBe(0);
    expect(pingTun.exitCode, pingTun.stdout).toBe(0);

    const destroy = await lab.destroy();
    expect(destroy.exitCode, show(destroy)).toBe(0);
    expect(await sandbox.residue()).toEqual([]);
  });
});
