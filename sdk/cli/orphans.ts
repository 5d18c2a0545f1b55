#!/usr/bin/env node
/**
 * nslab-orphans: lists the kernel objects a stack made that are not in its state, and
 * with --delete removes them.
 *
 *   nslab-orphans [--cwd DIR] [--stack NAME [--removed]] [--delete [--legacy]] [--forget-host HOST]
 *
 * After a run was killed, `pulumi destroy` deletes only what the state records; objects
 * the killed run made but never recorded stay. nslab's provider keeps, on the machine,
 * a record of every object each stack made (see provider/owned.ts); this command
 * compares those records of the stack (project, stack name and backend: see
 * sdk/identity.ts) with the resources in
 * its state (`pulumi stack export`, the `pulumi` on PATH), and lists each object that
 * still exists in the kernel but is not in the state. --delete removes them with
 * nslab's own delete (which deletes only objects carrying the resource's mark), in
 * reverse dependency order. It also lists namespaces and interfaces that a create of
 * the stack made but was killed before marking (its intent record says so, and the
 * object carries no mark), and programs a Process of the stack started (their
 * environment's NSLAB_OWNER) that are not in its state: --delete removes (stops) those too.
 * Records made by an nslab before owners named the backend (PROJECT/STACK only) are
 * listed too, and deleted only with --legacy: they may be a same-named stack's on
 * another backend.
 * Run it where the lab's provider ran (the same machine and network namespace): the
 * records are there; objects on other hosts (a resource's `host`) are looked at, and
 * deleted, over SSH as the provider does. A host it cannot reach is said ("not
 * searched") and its records kept; the rest is listed and deleted all the same. For a
 * machine that is gone for good, --forget-host HOST (as `ssh`, or `ssh:port`) with
 * --delete drops the stack's records of it, deleting nothing there.
 * Exits 0, or 1 when something could not be read or deleted.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { dispatch, forget, hostLabel, machineKey, ownerLabel, recorded, removeUnmarked, stackOf, unmarked, withHost } from "../../provider";
import { resourceNameOf } from "../../provider/resource";
import type { HostArgs, OwnedRecord, UnmarkedObject } from "../../provider";
import { backendUrl, processSources, stackIdentity } from "../identity";
import { pulumiErrorHint, pulumiSpawnError } from "./hints";

const USAGE = "nslab-orphans [--cwd DIR] [--stack NAME [--removed]] [--delete [--legacy]] [--forget-host HOST]";

interface Options {
  cwd: string;
  stack?: string;
  remove: boolean;
  legacy: boolean;
  /** The stack was removed (pulumi stack rm --force): it has no state, everything recorded for it is outside it. */
  removed: boolean;
  /** Machines gone for good (their hostLabel): their records are dropped (with --delete), not looked at. */
  forgetHosts: string[];
}

function parse(argv: string[]): Options | undefined {
  const options: Options = { cwd: process.cwd(), remove: false, legacy: false, removed: false, forgetHosts: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--help" || argv[i] === "-h") return undefined;
    if (argv[i] === "--cwd") options.cwd = path.resolve(argv[++i] ?? ".");
    else if (argv[i] === "--stack") options.stack = argv[++i];
    else if (argv[i] === "--delete") options.remove = true;
    else if (argv[i] === "--legacy") options.legacy = true;
    else if (argv[i] === "--removed") options.removed = true;
    else if (argv[i] === "--forget-host") {
      const host = argv[++i];
      if (!host) throw new Error(`--forget-host needs the host as the program names it (its ssh, e.g. root@192.0.2.3, or ssh:port); usage: ${USAGE}`);
      options.forgetHosts.push(host);
    }
    else throw new Error(`unknown argument ${JSON.stringify(argv[i])}; usage: ${USAGE}`);
  }
  return options;
}

/** Runs the pulumi CLI on the selected stack (`--cwd`, `--stack`). */
function pulumiRun(args: string[], options: Options) {
  return spawnSync("pulumi", [...args, "--cwd", options.cwd, ...(options.stack ? ["--stack", options.stack] : [])], { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
}

function pulumi(args: string[], options: Options): string {
  const r = pulumiRun(args, options);
  if (r.error) throw new Error(pulumiSpawnError("nslab-orphans", r.error));
  if (r.status !== 0) {
    const said = (r.stderr || r.stdout).trim();
    const hint = pulumiErrorHint(said, options.cwd);
    throw new Error(`pulumi ${args.join(" ")} exited ${r.status}: ${said}${hint ? `\n${hint.trimEnd()}` : ""}`);
  }
  return r.stdout;
}

/** What identifies the selected stack, and the owner strings of the resources in its state. */
interface StackState {
  /** PROJECT/STACK@BACKEND as the stack's resources are marked now (sdk/identity.ts), and as found in its state. */
  stacks: Set<string>;
  /** PROJECT/STACK: the stack part of owners made before owners named the backend. */
  legacy: string;
  owners: Set<string>;
}

function stackState(options: Options): StackState {
  // Pulumi takes either name for the project file.
  const file = ["Pulumi.yaml", "Pulumi.yml"].map((f) => path.join(options.cwd, f)).find((f) => fs.existsSync(f));
  if (!file) throw new Error(`no Pulumi.yaml (or Pulumi.yml) in ${options.cwd}: run it in the project's folder, or give --cwd DIR`);
  const yaml = fs.readFileSync(file, "utf8");
  const project = /^name:\s*["']?([^"'\s]+)/m.exec(yaml)?.[1];
  if (!project) throw new Error(`no project name in ${file}`);
  // A stack removed with `pulumi stack rm --force` has no state: every object recorded
  // for it is outside its state. Said with --removed (a stack the CLI does not find may
  // also be one asked of the wrong backend): its name is the one given (ORG/PROJECT/STACK,
  // or STACK on a file backend, whose organization is "organization").
  const removed = options.removed;
  if (removed && !options.stack) throw new Error("--removed needs --stack NAME: the removed stack's name (ORG/PROJECT/STACK on a backend with organizations)");
  const qualified = (() => {
    if (removed) {
      const r = pulumiRun(["stack", "--show-name"], options);
      if (r.error) throw new Error(pulumiSpawnError("nslab-orphans", r.error));
      if (r.status === 0) throw new Error(`--removed: stack ${options.stack} exists in this backend; run without --removed to compare with its state.`);
      // Only "no such stack" says it was removed: any other failure (the backend not
      // reachable, a lock) says nothing, and --delete would remove a live stack's objects.
      const said = (r.stderr || r.stdout).trim();
      if (!/no stack named/i.test(said)) throw new Error(`--removed: pulumi stack --show-name failed, so whether stack ${options.stack} was removed is not known: ${said}`);
      return options.stack!.split("/");
    }
    try {
      return pulumi(["stack", "--show-name", "--fully-qualify-stack-names"], options).trim().split("/");
    } catch (err) {
      if (options.stack && /no stack named/i.test((err as Error).message)) {
        throw new Error(`${(err as Error).message}\nIf the stack was removed without destroying it (pulumi stack rm --force), run again with --removed to list everything recorded for it (check that PULUMI_BACKEND_URL names its backend).`);
      }
      throw err;
    }
  })();
  const stack = qualified[qualified.length - 1];
  const organization = qualified.length === 3 ? qualified[0] : "organization";
  const resources: { outputs?: Record<string, unknown>; inputs?: Record<string, unknown> }[] = removed ? [] : (JSON.parse(pulumi(["stack", "export"], options)).deployment?.resources ?? []);
  const owners = new Set(resources.flatMap((r) => [r.outputs?.__owner, r.inputs?.__owner]).filter((o): o is string => typeof o === "string"));
  // The backend as the program finds it (the same function, from the program's folder);
  // plus whatever the state's own resources say (made when it was spelled another way).
  const stacks = new Set([stackIdentity(project, stack, organization, backendUrl({ ...processSources(), cwd: options.cwd }))]);
  for (const owner of owners) if (stackOf(owner).startsWith(`${project}/${stack}@`)) stacks.add(stackOf(owner));
  return { stacks, legacy: `${project}/${stack}`, owners };
}

/**
 * Deleting in this order never deletes a namespace, bridge or interface before what is
 * in it or on it: probes, programs (which may hold a device or port), impairments and
 * rules first, namespaces last. Every kind is named (test/unit/orphans-order.test.ts).
 */
export const DELETE_ORDER = ["Reachability", "Process", "LinkImpairment", "NatRule", "Route", "IpForwarding", "TapDevice", "Vxlan", "VethPair", "Bridge", "Namespace"];

/** True when a record's stack is the selected one, or its owners made before backends were named. */
const ofStack = (stack: string, state: StackState) => state.stacks.has(stack) || stack === state.legacy;

/**
 * Whether `given` (a --forget-host) names `host`: as hostLabel spells it (ssh, with
 * ":PORT" when not 22), or as ssh:PORT with the port written out (":22" too). Never by
 * cutting a ":22" off the end, which an IPv6 address may end in (root@fd00::22).
 */
export const namesHost = (given: string, host: HostArgs) => given === hostLabel(host) || given === `${host.ssh}:${host.port ?? 22}`;

/** A record's machine: its `host`, or undefined for the one that runs this. */
const hostOf = (record: OwnedRecord): HostArgs | undefined => {
  const host = record.outs?.host as HostArgs | undefined;
  return host?.ssh ? host : undefined;
};

/** What orphans() found: the objects, the hosts it could not reach, and the records of machines to forget. */
interface Found {
  found: OwnedRecord[];
  /** Per machine (machineKey) it could not reach: why, and how many records there were not looked at. */
  unreachable: Map<string, { host: HostArgs; reason: string; records: number }>;
  /** Records of machines --forget-host names. */
  forgotten: OwnedRecord[];
}

/**
 * The stack's recorded objects that are not in its state and still exist (stale records
 * of gone objects are dropped). A host that cannot be reached is asked once: its other
 * records are counted, not looked at, and kept.
 */
async function orphans(state: StackState, forgetHosts: string[]): Promise<Found> {
  const out: Found = { found: [], unreachable: new Map(), forgotten: [] };
  for (const record of recorded()) {
    if (!ofStack(record.stack, state) || state.owners.has(record.owner) || out.found.some((f) => f.owner === record.owner) || out.forgotten.some((f) => f.owner === record.owner)) continue;
    const host = hostOf(record);
    if (host && forgetHosts.some((f) => namesHost(f, host))) {
      out.forgotten.push(record);
      continue;
    }
    const failed = out.unreachable.get(machineKey(host));
    if (failed) {
      failed.records++;
      continue;
    }
    try {
      // Gone (or carrying no mark of this resource): nothing to list.
      if (await dispatch(record.kind, "exists", [record.id, record.outs])) out.found.push(record);
      else forget(record.owner);
    } catch (err) {
      // Only a machine that cannot be reached is passed over; anything else stops here.
      if (!host || !/cannot reach /.test((err as Error).message)) throw err;
      out.unreachable.set(machineKey(host), { host, reason: (err as Error).message, records: 1 });
    }
  }
  out.found.sort((a, b) => DELETE_ORDER.indexOf(a.kind) - DELETE_ORDER.indexOf(b.kind));
  return out;
}

const ORDER: UnmarkedObject["type"][] = ["process", "forwarding", "link", "netns"];

/**
 * The stack's unmarked objects of killed creates whose resource is not in its state;
 * links first. Intent records are kept next to their objects: on this machine, and on
 * every other host the stack's records name (a resource's `host`).
 */
async function unmarkedOrphans(state: StackState, hosts: (HostArgs | undefined)[]): Promise<{ found: UnmarkedObject[]; unreachable: string[] }> {
  const mine = (stack: string) => ofStack(stack, state);
  const found: UnmarkedObject[] = [];
  const unreachable: string[] = [];
  for (const host of hosts) {
    try {
      found.push(...(await withHost(host, () => unmarked(mine))));
    } catch (err) {
      unreachable.push((err as Error).message);
    }
  }
  return { found: found.filter((o) => mine(o.stack) && !state.owners.has(o.owner)).sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type)), unreachable };
}

/**
 * This machine, and every other machine the stack's records name (a resource's `host`),
 * once each: read before anything is forgotten, since the pending record of a killed
 * create may be all that names its host.
 */
function hostsOf(state: StackState): (HostArgs | undefined)[] {
  const hosts = new Map<string, HostArgs | undefined>([["", undefined]]);
  for (const r of recorded()) {
    const host = r.outs?.host as HostArgs | undefined;
    if (host?.ssh && ofStack(r.stack, state) && !hosts.has(machineKey(host))) hosts.set(machineKey(host), host);
  }
  return [...hosts.values()];
}

async function main(): Promise<number> {
  const options = parse(process.argv.slice(2));
  if (!options) {
    console.log(`Usage: ${USAGE}\n\nLists the kernel objects the stack made that its state does not record (a killed run's), and with --delete removes them.\n  --cwd DIR     the project's folder (default: this one)\n  --stack NAME  the stack (default: the selected one)\n  --removed     the stack was removed (pulumi stack rm --force): everything recorded for it\n  --delete      remove them, with nslab's own delete\n  --legacy      with --delete, also those recorded by an nslab that did not name the backend\n  --forget-host HOST  with --delete, drop the stack's records of a machine gone for good (HOST as its ssh, or ssh:port), deleting nothing there\nExits 0, or 1 when something could not be read or deleted.`);
    return 0;
  }
  const state = stackState(options);
  const name = [...state.stacks][0];
  if (options.removed) console.log(`stack ${name}: not found in the backend (removed?): every object recorded for it is outside its state`);
  const { found, unreachable: passedOver, forgotten } = await orphans(state, options.forgetHosts);
  // A machine found unreachable, or to be forgotten, is not asked again for its intent records.
  const skip = new Set([...passedOver.keys(), ...forgotten.map((r) => machineKey(hostOf(r)))]);
  const hosts = hostsOf(state).filter((h) => !(h && (skip.has(machineKey(h)) || options.forgetHosts.some((f) => namesHost(f, h)))));
  // A --forget-host that names no machine the stack's records name: said (exit 1).
  const known = hostsOf(state).filter((h): h is HostArgs => h !== undefined);
  const named = new Set(known.map((h) => hostLabel(h)));
  const unknownHosts = options.forgetHosts.filter((f) => !known.some((h) => namesHost(f, h)) && !forgotten.some((r) => namesHost(f, hostOf(r)!)));
  for (const f of unknownHosts) {
    console.error(`nslab-orphans: --forget-host ${f}: the stack's records name no such machine (they name: ${[...named].join(", ") || "none but this one"}); write it as the program's host.ssh, with :PORT when it is not 22`);
  }
  const { found: unmarkedFound, unreachable } = await unmarkedOrphans(state, hosts);
  for (const { host, reason, records } of passedOver.values()) {
    unreachable.push(
      `${reason} (${records} recorded object(s) of the stack there not looked at, and kept; if that machine is gone for good, run again with --forget-host ${hostLabel(host)} --delete to drop them, deleting nothing there)`,
    );
  }
  for (const record of forgotten) {
    const host = hostOf(record)!;
    console.log(`  ${record.kind} "${resourceNameOf(record.owner) ?? record.owner}" on ${hostLabel(host)} (--forget-host): ${options.remove ? "record dropped, nothing deleted there" : "its record would be dropped with --delete"}`);
    if (options.remove) forget(record.owner);
  }
  // A program whose Process completed its create is listed once, by its record, above; so
  // is a switch whose IpForwarding did (its restore record stays for the resource's life).
  const half = unmarkedFound.filter(
    (o) =>
      !(o.type === "process" && found.some((f) => f.owner === o.owner && String(f.outs?.pid) === o.name)) &&
      !(o.type === "forwarding" && found.some((f) => f.owner === o.owner && f.kind === "IpForwarding" && (f.outs?.namespace ?? undefined) === (o.namespace ?? undefined))),
  );
  for (const reason of unreachable) console.error(`nslab-orphans: not searched: ${reason}`);
  if (!found.length && !half.length) {
    console.log(`stack ${name}: no objects outside its state`);
    return unreachable.length || unknownHosts.length ? 1 : 0;
  }
  console.log(`stack ${name}: ${found.length + half.length} object(s) not in its state${options.remove ? ", deleting" : " (run with --delete to remove them)"}:`);
  let status = unreachable.length || unknownHosts.length ? 1 : 0;
  // Objects recorded as PROJECT/STACK (an nslab before owners named the backend) may be a
  // same-named stack's on another backend: deleted only when --legacy says they are ours.
  const act = async (what: string, stack: string, remove: () => Promise<unknown>) => {
    const old = stack === state.legacy;
    let note = old ? " (made by an nslab that did not name the backend: it may belong to a stack of this name on another backend)" : "";
    if (options.remove && old && !options.legacy) {
      note += " NOT deleted: add --legacy to delete it";
    } else if (options.remove) {
      try {
        await remove();
        note += " deleted";
      } catch (err) {
        note += ` NOT deleted: ${(err as Error).message}`;
        status = 1;
      }
    }
    console.log(`  ${what}${note}`);
  };
  const nameOf = (owner: string) => resourceNameOf(owner) ?? owner;
  for (const r of found) {
    const on = hostOf(r) ? ` on ${hostLabel(hostOf(r)!)}` : "";
    await act(`${r.kind} "${nameOf(r.owner)}"${on} ${r.id ? `(id ${r.id})` : "(its create was killed)"}`, r.stack, () => dispatch(r.kind, "delete", [r.id, r.outs]));
  }
  for (const o of half) {
    const where = (o.type === "netns" || o.type === "process" ? "" : ` in ${o.namespace ? `namespace "${o.namespace}"` : "the program's namespace"}`) + (o.host ? ` on ${hostLabel(o.host)}` : "");
    if (o.type === "process") {
      await act(`${ownerLabel(o.owner)}: program pid ${o.name}${where} (not in the state: its create was killed, or the state lost it)`, o.stack, () => removeUnmarked(o));
      continue;
    }
    const what = o.type === "netns" ? "namespace" : o.type === "link" ? "interface" : "switch";
    const why = o.marked ? "its create was killed, or a recovery's create took it over and failed; it carries the resource's mark" : "its create was killed";
    await act(`${ownerLabel(o.owner)}: ${o.marked || o.type === "forwarding" ? "" : "unmarked "}${what} "${o.name}"${where} (${why})`, o.stack, () => removeUnmarked(o));
  }
  return status;
}

if (require.main === module) {
  // nslab's ip sessions do not hold the event loop open (in the provider, the gRPC
  // server does): hold it while the command works.
  const keepAlive = setInterval(() => undefined, 60_000);
  main()
    .finally(() => clearInterval(keepAlive))
    .then(
    (code) => process.exit(code),
    (err) => {
      console.error(`nslab-orphans: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
