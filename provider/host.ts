/**
 * Where a resource lives: the machine that runs the engine, or another one reached over
 * SSH (`host: { ssh: "root@192.0.2.2" }`). This file is pure: the host's validation,
 * its label in messages, and the quoting of a command for the remote shell. The
 * transport itself (one OpenSSH ControlMaster per host) is ssh.ts.
 */
import * as ipaddr from "ipaddr.js";
import type { Checker } from "./validate";
import { isUnknown } from "./validate";

/**
 * Another machine to make a resource on, reached over SSH. Every command for the
 * resource runs there, through one OpenSSH master connection per host and provider run;
 * the host's key must be in `knownHostsFile` (never accepted blindly).
 */
export interface HostArgs {
  /** `user@address` (or `address`): the SSH destination, e.g. "root@192.0.2.2". */
  ssh: string;
  /** sshd's port; default 22. */
  port?: number;
  /** The private key to log in with (`ssh -i`); default: ssh's own (~/.ssh/id_*, an agent). */
  identityFile?: string;
  /** A known-hosts file that lists the host's key; default: ssh's (~/.ssh/known_hosts). */
  knownHostsFile?: string;
}

/** Kinds whose every kernel operation can run on another host. */
export const HOST_KINDS = new Set(["Namespace", "VethPair", "Bridge", "TapDevice", "Vxlan", "Route", "IpForwarding", "NatRule", "LinkImpairment", "Reachability", "Process"]);

/** A user name as OpenSSH and useradd accept it (no leading '-': never an option). */
const USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
/** A DNS name (no leading '-'). */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const HOST_FIELDS = new Set(["ssh", "port", "identityFile", "knownHostsFile"]);

/** How a host is named in messages: `root@192.0.2.2`, or `root@192.0.2.2:2222`. */
export function hostLabel(host: HostArgs): string {
  return host.port !== undefined && host.port !== 22 ? `${host.ssh}:${host.port}` : host.ssh;
}

/**
 * The machine a host names: its SSH destination and port. A resource lives on a machine;
 * how it is reached (identityFile, knownHostsFile) may change without moving anything.
 */
export function machineKey(host: HostArgs | undefined): string {
  return host === undefined ? "" : `${host.ssh}:${host.port ?? 22}`;
}

/** The identity of a connection to a host, for its master and shells (every field counts). */
export function hostKey(host: HostArgs | undefined): string {
  return host === undefined ? "" : JSON.stringify([host.ssh, host.port ?? 22, host.identityFile ?? "", host.knownHostsFile ?? ""]);
}

/** `" on root@192.0.2.2"` for a remote host, "" for the engine's machine. */
export function onHost(host: HostArgs | undefined): string {
  return host === undefined ? "" : ` on ${hostLabel(host)}`;
}

/** An absolute path without characters that a file name in ssh's options could not take. */
function checkPath(c: Checker, value: unknown, property: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || !value.startsWith("/") || /[\s"'\\%]/.test(value)) {
    return c.fail(property, `${property} must be an absolute path without spaces, quotes, '\\' or '%' (ssh reads it inside an option), got ${JSON.stringify(value)}.`);
  }
  return value;
}

/**
 * Validates and normalises `host` (pure). A `kind` that cannot run on other hosts
 * (not in HOST_KINDS) refuses any host rather than ignoring it.
 */
export function checkHost(c: Checker, value: unknown, kind: string, property = "host"): HostArgs | undefined {
  if (value === undefined || value === null) return undefined;
  if (isUnknown(value)) return value as never;
  if (!HOST_KINDS.has(kind)) {
    return c.fail(
      property,
      `${kind} cannot run on another host yet (only ${[...HOST_KINDS].join(", ")} can). Remove ${property}, or make this part of the lab on that host with the resources that can.`,
    );
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    return c.fail(property, `${property} must be an object like { ssh: "root@192.0.2.2" }, got ${JSON.stringify(value)}.`);
  }
  const raw = value as Record<string, unknown>;
  const unknownFields = Object.keys(raw).filter((k) => !HOST_FIELDS.has(k));
  if (unknownFields.length > 0) {
    return c.fail(property, `${property} has unknown field(s) ${unknownFields.join(", ")}; it takes ssh, port, identityFile and knownHostsFile.`);
  }
  const ssh = raw.ssh;
  if (isUnknown(ssh)) return value as never;
  if (typeof ssh !== "string" || !validDestination(ssh)) {
    return c.fail(`${property}.ssh`, `${property}.ssh must be "user@address" (or "address"): a user name of letters, digits, '_', '.', '-' and an IP address or DNS name, got ${JSON.stringify(ssh)}.`);
  }
  let port: number | undefined;
  if (raw.port !== undefined && raw.port !== null) {
    port = raw.port as number;
    if (!Number.isInteger(port) || port < 1 || port > 65535) return c.fail(`${property}.port`, `${property}.port must be an integer from 1 to 65535, got ${JSON.stringify(raw.port)}.`);
  }
  const identityFile = checkPath(c, raw.identityFile, `${property}.identityFile`);
  const knownHostsFile = checkPath(c, raw.knownHostsFile, `${property}.knownHostsFile`);
  const host: HostArgs = { ssh };
  if (port !== undefined && port !== 22) host.port = port;
  if (identityFile !== undefined) host.identityFile = identityFile;
  if (knownHostsFile !== undefined) host.knownHostsFile = knownHostsFile;
  return host;
}

/** True for `user@address` or `address` (an IP address or DNS name). */
function validDestination(text: string): boolean {
  const at = text.lastIndexOf("@");
  const user = at < 0 ? undefined : text.slice(0, at);
  const address = at < 0 ? text : text.slice(at + 1);
  if (user !== undefined && !USER.test(user)) return false;
  return ipaddr.isValid(address) || HOSTNAME.test(address);
}

/** Whether two hosts name the same machine (for diff: another machine replaces the resource). */
export function sameHost(a: unknown, b: unknown): boolean {
  return machineKey(a as HostArgs | undefined) === machineKey(b as HostArgs | undefined);
}

/** Words the remote shell takes as they are. */
const PLAIN_WORD = /^[A-Za-z0-9_\/.:=@%+,-]+$/;

/**
 * One argument quoted for a POSIX shell: ssh hands the remote side a single string,
 * which the user's shell there splits again, so every argument is quoted here, in one
 * place. Single quotes keep everything literal; a quote inside becomes '\''.
 */
export function shellQuote(word: string): string {
  if (word !== "" && PLAIN_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An argument vector as one remote command line, each argument quoted. */
export function remoteCommand(argv: string[]): string {
  return argv.map(shellQuote).join(" ");
}
