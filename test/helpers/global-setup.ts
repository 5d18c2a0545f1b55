/**
 * Refuses to run the suite against the host's network namespace: every test must run
 * inside `scripts/sandbox` (a fresh network + mount namespace).
 */
import * as fs from "node:fs";

export function inSandbox(): { ok: boolean; why: string } {
  if (process.env.NSLAB_SANDBOX !== "1") {
    return { ok: false, why: "NSLAB_SANDBOX is not set: run the tests through scripts/sandbox (npm test does)" };
  }
  try {
    const mine = fs.readlinkSync("/proc/self/ns/net");
    const init = fs.readlinkSync("/proc/1/ns/net");
    if (mine === init) return { ok: false, why: `this process shares PID 1's network namespace (${mine}): that is the host's` };
  } catch {
    // Unprivileged: PID 1's namespace cannot be read; the user namespace already isolates us.
  }
  return { ok: true, why: "" };
}

export default function setup(): void {
  const { ok, why } = inSandbox();
  if (!ok) {
    throw new Error(`nslab tests refuse to run outside the sandbox: ${why}.`);
  }
}
