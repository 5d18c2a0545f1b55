import * as fs from "node:fs";
/** Helpers for kernel tests: run commands in the suite's sandbox and inspect state. */
import { must, sh } from "./sandbox";
export { must } from "./sandbox";
import { resetSnapshots } from "../../provider/kernel";

/** A short unique suffix so that test files running side by side never share names. */
export function uniq(prefix: string): string {
  return `${prefix}${process.pid.toString(36).slice(-3)}${Math.random().toString(36).slice(2, 5)}`;
}

/** Runs `ip ARGS` by hand (as a user would, outside nslab) and forgets nslab's snapshots. */
export async function ipByHand(...args: string[]): Promise<string> {
  const out = await must("ip", args);
  resetSnapshots();
  return out;
}

/** `ip -j -d addr show dev NAME` in a namespace, parsed; undefined when absent. */
export async function linkByHand(name: string, netns?: string): Promise<Record<string, any> | undefined> {
  const r = await sh("ip", [...(netns ? ["-n", netns] : []), "-j", "-d", "addr", "show", "dev", name]);
  if (r.exitCode !== 0) return undefined;
  return JSON.parse(r.stdout)[0];
}

export const OWNER = "test/kernel";

/** Whether /dev/net/tun can be opened here (an unprivileged sandbox refuses it). */
export const tunUsable = (() => {
  try {
    fs.closeSync(fs.openSync("/dev/net/tun", "r+"));
    return true;
  } catch {
    return false;
  }
})();
if (!tunUsable) console.warn("tap/tun tests skipped: /dev/net/tun cannot be opened here (an unprivileged sandbox refuses it)");
