/**
 * sweepControlDirs: the SSH control directories that provider processes killed outright
 * left in the temp folder are removed by the next process that opens one, and nothing
 * else is. Real directories in a folder of the test's own; real processes for the pids.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { controlBase, pidExists, sweepControlDirs } from "../../provider/ssh";

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sweep-"));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A directory as provider/ssh.ts names it, holding `files`. */
function controlDir(name: string, files: string[]): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { mode: 0o700 });
  for (const f of files) fs.writeFileSync(path.join(d, f), "");
  return d;
}

it("removes a dead process's directory holding only master logs; keeps a live process's, its own, one with a socket left, another user's, and names it did not make", () => {
  // A pid that has just exited (spawnSync waits for it and reaps it).
  const dead = spawnSync("true").pid!;
  const live = spawn("sleep", ["30"], { stdio: "ignore" });
  try {
    const gone = controlDir(`nslab-ssh-${dead}-AbC123`, ["master-1.log", "master-2.log"]);
    const empty = controlDir(`nslab-ssh-${dead}-xyz789`, []);
    // A watcher killed between its rename and its rm -rf.
    const closing = controlDir(`nslab-ssh-${dead}-Clos01.closing`, ["master-1.log"]);
    const running = controlDir(`nslab-ssh-${live.pid}-AbC123`, ["master-1.log"]);
    const own = controlDir(`nslab-ssh-${process.pid}-AbC123`, ["master-1.log"]);
    // Its master still running (within ControlPersist): the socket "1" is still there.
    const socket = controlDir(`nslab-ssh-${dead}-Sock01`, ["master-1.log", "1"]);
    // Another user's (when this user may give one away: root, not in a user namespace).
    let other: string | undefined = controlDir(`nslab-ssh-${dead}-Other1`, ["master-1.log"]);
    try {
      fs.chownSync(other, 65534, 65534);
    } catch {
      fs.rmSync(other, { recursive: true });
      other = undefined;
    }
    // An older nslab's name (no pid), and names of others'.
    const legacy = controlDir("nslab-ssh-AbC123", ["master-1.log"]);
    const foreign = controlDir(`nslab-sshd-${dead}-AbC123`, ["master-1.log"]);
    fs.writeFileSync(path.join(tmp, `nslab-ssh-${dead}-File01`), "");

    // Just made: left alone by default (its process may be alive in another pid namespace).
    expect(sweepControlDirs(tmp)).toEqual([]);
    expect(sweepControlDirs(tmp, 0).sort()).toEqual([closing, empty, gone].sort());
    for (const kept of [running, own, socket, ...(other ? [other] : []), legacy, foreign, path.join(tmp, `nslab-ssh-${dead}-File01`)]) expect(fs.existsSync(kept), kept).toBe(true);
    for (const removed of [gone, empty, closing]) expect(fs.existsSync(removed), removed).toBe(false);
    // Idempotent: a second sweep finds nothing more.
    expect(sweepControlDirs(tmp, 0)).toEqual([]);
  } finally {
    live.kill("SIGKILL");
  }
});

it("a missing temp folder is not an error", () => {
  expect(sweepControlDirs(path.join(tmp, "missing"), 0)).toEqual([]);
});

it("control folders go in the temp folder, or in /tmp when its path is too long for the sockets in them", () => {
  const before = process.env.TMPDIR;
  try {
    process.env.TMPDIR = "/var/tmp/short";
    expect(controlBase()).toBe("/var/tmp/short");
    process.env.TMPDIR = `/var/tmp/${"x".repeat(60)}`;
    expect(controlBase()).toBe("/tmp");
    // Counted in bytes: 33 characters, but 63 bytes (é is two).
    process.env.TMPDIR = `/t/${"é".repeat(30)}`;
    expect(controlBase()).toBe("/tmp");
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  }
});

it("pidExists: this process, not an exited one", () => {
  expect(pidExists(process.pid)).toBe(true);
  expect(pidExists(spawnSync("true").pid!)).toBe(false);
});
