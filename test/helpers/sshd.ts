/**
 * "Machines" for multi-host tests, inside the test's sandbox: each is a network
 * namespace joined to an underlay bridge (192.0.2.0/24, TEST-NET-1) and a real OpenSSH
 * sshd running there in a mount namespace of its own, with its own /run/netns and
 * /run/nslab tmpfs, so the namespaces and records nslab makes over SSH are that host's,
 * not the test's. Keys (a client key, a host key each) and the known-hosts file are
 * made per call with ssh-keygen; nothing in ~/.ssh is read or written.
 *
 *   test's namespace: ulbr (192.0.2.254) --veth-- h1 (192.0.2.1, sshd)
 *                                        --veth-- h2 (192.0.2.2, sshd) ...
 */
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { must as mustHere, RunOptions, spawnHere } from "./sandbox";
import type { HostArgs } from "../../provider/host";

/** Where commands run: the suite's sandbox (kernel tests) or a per-test Sandbox (e2e). */
export interface Runner {
  must(command: string, args: string[], options?: RunOptions): Promise<string>;
  spawn(command: string, args: string[]): ChildProcess;
}

/** The vitest process's own namespace (kernel tests: the suite's sandbox). */
export const here: Runner = { must: mustHere, spawn: spawnHere };

export interface SshHost {
  /** Its network namespace in the runner's /run/netns. */
  netns: string;
  /** Its underlay address. */
  address: string;
  /** What a program passes as `host`. */
  host: HostArgs;
  /** sshd's pid (the listener). */
  pid: number;
}

export interface SshHosts {
  hosts: SshHost[];
  /** The folder with keys, known_hosts and sshd configs. */
  dir: string;
  /** Runs a command on a host as its administrator would: in sshd's mount and network namespaces. */
  onHost(host: SshHost, command: string, args: string[]): Promise<string>;
  /** Stops a host's sshd (and the sessions it serves), as a crashed or stopped sshd. */
  stop(host: SshHost): Promise<void>;
  /** Stops every sshd, removes the keys (the namespaces go with the sandbox). */
  destroy(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

/**
 * Inside sshd's namespaces: fresh /run/netns and /run/nslab, the privilege-separation
 * folder, and an empty root .bashrc (the machine's own runs slow tools at every shell,
 * which a lab host would not), then sshd in the foreground, logging to stderr.
 */
const SSHD_SCRIPT = [
  "mount -t tmpfs -o mode=0755 nslab-host-netns /run/netns",
  "mkdir -p /run/nslab && mount -t tmpfs -o mode=0755 nslab-host-records /run/nslab",
  "mkdir -p /run/sshd",
  'if [ -f /root/.bashrc ]; then mount --bind "$2" /root/.bashrc; fi',
  'exec "$3" -D -e -f "$1"',
].join(" && ");

/** Starts `count` hosts on the underlay `prefix`.0/24 (default 192.0.2), named `<tag>h1`... */
export async function startHosts(runner: Runner, count: number, tag: string, prefix = "192.0.2"): Promise<SshHosts> {
  if (!fs.existsSync(SSHD)) throw new Error(`${SSHD} is missing: run scripts/setup (Debian package openssh-server)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-sshd-"));
  const started: { host: SshHost; sshd: ChildProcess }[] = [];
  const keygen = (file: string) => mustHere("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "nslab-test", "-f", file]);
  await keygen(path.join(dir, "id"));
  fs.copyFileSync(path.join(dir, "id.pub"), path.join(dir, "authorized_keys"));
  fs.writeFileSync(path.join(dir, "empty"), "");
  const bridge = `${tag}ul`;
  await runner.must("ip", ["link", "add", bridge, "type", "bridge"]);
  await runner.must("ip", ["addr", "add", `${prefix}.254/24`, "dev", bridge]);
  await runner.must("ip", ["link", "set", bridge, "up"]);
  const knownHosts: string[] = [];
  const result: SshHosts = {
    hosts: [],
    dir,
    onHost: (host, command, args) => runner.must("nsenter", ["-t", String(host.pid), "-m", "-n", "--", command, ...args]),
    stop: async (host) => {
      const entry = started.find((s) => s.host === host);
      if (entry) await stopSshd(entry.sshd);
    },
    destroy: async () => {
      for (const s of started) await stopSshd(s.sshd);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 1; i <= count; i++) {
      const netns = `${tag}h${i}`;
      const address = `${prefix}.${i}`;
      await runner.must("ip", ["netns", "add", netns]);
      await runner.must("ip", ["link", "add", `${tag}u${i}`, "type", "veth", "peer", "name", "ul0", "netns", netns]);
      await runner.must("ip", ["link", "set", `${tag}u${i}`, "master", bridge, "up"]);
      await runner.must("ip", ["-n", netns, "addr", "add", `${address}/24`, "dev", "ul0"]);
      await runner.must("ip", ["-n", netns, "link", "set", "ul0", "up"]);
      await runner.must("ip", ["-n", netns, "link", "set", "lo", "up"]);
      const hostKey = path.join(dir, `host${i}`);
      await keygen(hostKey);
      knownHosts.push(`${address} ${fs.readFileSync(`${hostKey}.pub`, "utf8").trim()}`);
      const config = path.join(dir, `sshd${i}.conf`);
      fs.writeFileSync(
        config,
        [
          `ListenAddress ${address}`,
          "Port 22",
          `HostKey ${hostKey}`,
          `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
          "PermitRootLogin prohibit-password",
          "PasswordAuthentication no",
          "KbdInteractiveAuthentication no",
          "UsePAM no",
          // The keys live in a test folder, not in a home directory sshd would check.
          "StrictModes no",
          "PidFile none",
          // nslab multiplexes every session of a run over one connection.
          "MaxSessions 1000",
          "LogLevel ERROR",
          "",
        ].join("\n"),
      );
      const sshd = runner.spawn("nsenter", [`--net=/run/netns/${netns}`, "--", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", SSHD_SCRIPT, "sh", config, path.join(dir, "empty"), SSHD]);
      await listening(sshd, address);
      const host: SshHost = { netns, address, pid: sshd.pid!, host: { ssh: `root@${address}`, identityFile: path.join(dir, "id"), knownHostsFile: path.join(dir, "known_hosts") } };
      started.push({ host, sshd });
      result.hosts.push(host);
    }
    fs.writeFileSync(path.join(dir, "known_hosts"), knownHosts.join("\n") + "\n");
    return result;
  } catch (err) {
    await result.destroy();
    throw err;
  }
}

/** Waits until sshd accepts connections: a connect to its port succeeds. */
async function listening(sshd: ChildProcess, address: string): Promise<void> {
  let said = "";
  sshd.stderr?.on("data", (d) => (said += String(d)));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (sshd.exitCode !== null) throw new Error(`sshd on ${address} exited ${sshd.exitCode}: ${said}`);
    // sshd logs nothing at LogLevel ERROR once listening: look at its sockets instead.
    const sockets = fs.existsSync(`/proc/${sshd.pid}/net/tcp`) ? fs.readFileSync(`/proc/${sshd.pid}/net/tcp`, "utf8") : "";
    const hex = address.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).reverse().join("").toUpperCase();
    if (new RegExp(`${hex}:0016 0+:0000 0A`).test(sockets) && (await sshdIs(sshd.pid!))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd on ${address} did not listen within 10 s: ${said}`);
}

/** True once the process has become sshd (nsenter, unshare and sh exec it in turn). */
async function sshdIs(pid: number): Promise<boolean> {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "sshd";
  } catch {
    return false;
  }
}

/**
 * Stops sshd and every session process it started for clients (its children: they
 * would go on serving the connections already open), by pid.
 */
async function stopSshd(sshd: ChildProcess): Promise<void> {
  if (sshd.exitCode !== null || sshd.signalCode !== null) return;
  const children = childrenOf(sshd.pid!);
  const exited = new Promise((resolve) => sshd.once("exit", resolve));
  sshd.kill("SIGTERM");
  for (const child of children) {
    try {
      process.kill(child, "SIGTERM");
    } catch {
      // gone already
    }
  }
  await exited;
}

/** Pids whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}
