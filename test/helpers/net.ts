/** Proving that packets flow, from inside a Sandbox. */
import { Sandbox } from "./sandbox";

/** One ping from a namespace; true when a reply came back. */
export async function pings(sandbox: Sandbox, from: string, to: string): Promise<boolean> {
  const r = await sandbox.run("ip", ["netns", "exec", from, "ping", "-c", "1", "-W", "2", to]);
  return r.exitCode === 0;
}

/** Pings every address from every namespace; returns the failures ("ns1 -> 192.168.1.3"). */
export async function unreachable(sandbox: Sandbox, hosts: { ns: string; address: string }[]): Promise<string[]> {
  const failed: string[] = [];
  for (const from of hosts) {
    for (const to of hosts) {
      if (from === to) continue;
      if (!(await pings(sandbox, from.ns, to.address))) failed.push(`${from.ns} -> ${to.address}`);
    }
  }
  return failed;
}
