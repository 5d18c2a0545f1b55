import * as fs from "node:fs";

/** True while /proc/PID exists and is not a zombie (one stopped but not yet reaped has ended). */
export function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /s.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
