import * as pulumi from "@pulumi/pulumi";
import { linksOf, NslabResource, OnHostArgs } from "./base";

/** Arguments of {@link Process}. Changing any of them replaces the process (stop, then start). */
export interface ProcessArgs extends OnHostArgs {
  /** The program and its arguments, run without a shell, e.g. `["python3", "tunnel.py", "tun0"]`. */
  command: pulumi.Input<pulumi.Input<string>[]>;
  /** Namespace the program runs in (its network only); omitted means the program's. */
  namespace?: pulumi.Input<string>;
  /**
   * Working directory, relative to the Pulumi program's folder. Default: that folder.
   * With `host`: an absolute path on that machine (a relative one is refused at
   * preview: there is no program folder there); default "/".
   */
  cwd?: pulumi.Input<string>;
  /**
   * File that stdout and stderr are appended to. Default: `nslab-process-<hash>.log` in
   * the temp folder (see `log`). With `host`: a file on that machine, absolute; default
   * in its `/tmp`.
   */
  logFile?: pulumi.Input<string>;
  /**
   * Text the program prints (stdout or stderr) once it is ready, e.g. "listening". Create
   * waits for it, so resources that depend on the process find it ready; a program that
   * exits or stays silent fails the create (and is stopped).
   */
  readyText?: pulumi.Input<string>;
  /**
   * Without readyText: the program must still run this long after it starts for create
   * to succeed (default 300 ms). With readyText: how long create waits for it (default
   * 10000 ms). 0-60000.
   */
  startupMs?: pulumi.Input<number>;
  /** How long delete waits after SIGTERM before SIGKILL, 0-60000 ms. Default 5000. */
  stopTimeoutMs?: pulumi.Input<number>;
}

/**
 * A long-running user-space program inside a namespace (a tunnel end, a server),
 * started by `pulumi up` and stopped by `pulumi destroy`. Equivalent to `setsid nsenter
 * --net=/run/netns/NS -- ARGV... >>LOG 2>&1 &`.
 *
 * Its identity is its pid with its start time (/proc/PID/stat): refresh reports it gone
 * when that process has exited (and `pulumi up --refresh` starts it again), and delete
 * signals only that process (SIGTERM, SIGKILL after `stopTimeoutMs`), never a later
 * one that reuses the pid, and waits for it to exit. It runs detached from Pulumi: it
 * survives the provider, and stops only with delete (or a reboot, after which refresh
 * sees it gone).
 *
 * With `host` it runs on that machine: started, read and signalled there over SSH (one
 * small `sh` script per step; the start time is compared and the signal sent in the
 * same script), its log written there; the host needs `setsid` and `nsenter`
 * (util-linux) and a POSIX `sh`, and of course the program.
 */
export class Process extends NslabResource {
  /** The program and its arguments. */
  declare readonly command: pulumi.Output<string[]>;
  /** The namespace it runs in; undefined for the program's. */
  declare readonly namespace: pulumi.Output<string | undefined>;
  /** Its process id. */
  declare readonly pid: pulumi.Output<number>;
  /** Its start time in clock ticks after boot (/proc/PID/stat field 22). */
  declare readonly startTime: pulumi.Output<string>;
  /** The log file its output goes to (absolute; with `host`, on that machine). */
  declare readonly log: pulumi.Output<string>;

  constructor(name: string, args: ProcessArgs, opts?: pulumi.CustomResourceOptions) {
    // A JavaScript program may leave the arguments out: check then says what is missing.
    args ??= {} as ProcessArgs;
    super("Process", name, { namespace: undefined, ...args, pid: undefined, startTime: undefined, log: undefined, __links: linksOf(opts?.dependsOn, true) }, opts);
  }
}
