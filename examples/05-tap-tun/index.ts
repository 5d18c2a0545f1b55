// Scenario 5: tap and tun. A TAP device carries Ethernet frames, a TUN device IP
// packets; a user-space program attached through /dev/net/tun (see peer.py) receives
// what the kernel sends to the interface and what it writes appears as received.
import * as nslab from "nslab";

const tap = new nslab.TapDevice("tap0", {
  name: "tap0",
  mode: "tap",
  addresses: ["10.9.0.1/24"],
  mac: "02:00:00:00:09:01",
});
const tun = new nslab.TapDevice("tun0", {
  name: "tun0",
  mode: "tun",
  addresses: ["10.9.1.1/24"],
});

export const tapDevice = { name: tap.name, mode: tap.mode, mac: tap.mac, addresses: tap.addresses };
export const tunDevice = { name: tun.name, mode: tun.mode, addresses: tun.addresses };
