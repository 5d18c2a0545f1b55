#!/usr/bin/env node
/**
 * nslab-orphans: lists the kernel objects a stack made that are not in its state, and
 * with --delete removes them.
 *
 *   nslab-orphans [--cwd DIR] [--stack NAME] [--delete]
 *
 * After a run was killed, `pulumi destroy` deletes only what the state records; objects
 * the killed run made but never recorded stay. nslab's provider keeps, on the machine,
 * a record of every object each stack made (see provider/owned.ts); this command
 * compares those records of the stack (project and stack name) with the resources in
 * its state (`pulumi stack export`, the `pulumi` on PATH), and lists each object that
 * still exists in the kernel but is not in the state. --delete removes them with
 * nslab's own delete (which deletes only objects carrying the resource's mark), in
 * reverse dependency order. It also lists namespaces and interfaces that a create of
 * the stack made but was killed before marking (its intent record says so, and the
 * object carries no mark): --delete removes those too.
 * Run it where the lab's provider ran (the same machine and network namespace).
 * Exits 0, or 1 when something could not be read or deleted.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { dispatch, forget, recorded, removeUnmarked, unmarked } from "../../provider";
import type { OwnedRecord, UnmarkedObject } from "../../provider";

interface Options {
  cwd: string;
  stack?: string;
  remove: boolean;
}

function parse(argv: string[]): Options {
  const options: Options = { cwd: process.cwd(), remove: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--cwd") options.cwd = path.resolve(argv[++i] ?? ".");
    else if (argv[i] === "--stack") options.stack = argv[++i];
    else if (argv[i] === "--delete") options.remove = true;
    else throw new Error(`unknown argument ${JSON.stringify(argv[i])}; usage: nslab-orphans [--cwd DIR] [--stack NAME] [--delete]`);
  }
  return options;
}

function pulumi(args: string[], options: Options): string {
  const r = spawnSync("pulumi", [...args, "--cwd", options.cwd, ...(options.stack ? ["--stack", options.stack] : [])], { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** project/stack of the selected stack, and the owner strings of the resources in its state. */
function stackState(options: Options): { stack: string; owners: Set<string> } {
  const yaml = fs.readFileSync(path.join(options.cwd, "Pulumi.yaml"), "utf8");
  const project = /^name:\s*["']?([^"'\s]+)/m.exec(yaml)?.[1];
  if (!project) throw new Error(`no project name in ${path.join(options.cwd, "Pulumi.yaml")}`);
  const stack = options.stack ?? pulumi(["stack", "--show-name"], options).trim();
  const resources: { outputs?: Record<string, unknown>; inputs?: Record<string, unknown> }[] = JSON.parse(pulumi(["stack", "export"], options)).deployment?.resources ?? [];
  const owners = new Set(resources.flatMap((r) => [r.outputs?.__owner, r.inputs?.__owner]).filter((o): o is string => typeof o === "string"));
  return { stack: `${project}/${stack.split("/").pop()}`, owners };
}

/** Deleting in this order never deletes a namespace or bridge before what is in it. */
const DELETE_ORDER = ["NatRule", "Route", "IpForwarding", "TapDevice", "VethPair", "Bridge", "Namespace"];

/** The stack's recorded objects that are not in its state and still exist (stale records of gone objects are dropped). */
export async function orphans(stack: string, owners: Set<string>): Promise<OwnedRecord[]> {
  const found: OwnedRecord[] = [];
  for (const record of recorded()) {
    if (record.stack !== stack || owners.has(record.owner) || found.some((f) => f.owner === record.owner)) continue;
    // read answers {} when the object is gone (or carries no mark of this resource).
    const live = (await dispatch(record.kind, "read", [record.id, record.outs])) as { props?: unknown };
    if (live?.props) found.push(record);
    else forget(record.owner);
  }
  return found.sort((a, b) => DELETE_ORDER.indexOf(a.kind) - DELETE_ORDER.indexOf(b.kind));
}

const ORDER: UnmarkedObject["type"][] = ["forwarding", "link", "netns"];

/** The stack's unmarked objects of killed creates whose resource is not in its state; links first. */
export async function unmarkedOrphans(stack: string, owners: Set<string>): Promise<UnmarkedObject[]> {
  return (await unmarked(stack)).filter((o) => o.stack === stack && !owners.has(o.owner)).sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type));
}

async function main(): Promise<number> {
  const options = parse(process.argv.slice(2));
  const { stack, owners } = stackState(options);
  const found = await orphans(stack, owners);
  const half = await unmarkedOrphans(stack, owners);
  if (!found.length && !half.length) {
    console.log(`stack ${stack}: no objects outside its state`);
    return 0;
  }
  console.log(`stack ${stack}: ${found.length + half.length} object(s) not in its state${options.remove ? ", deleting" : " (run with --delete to remove them)"}:`);
  let status = 0;
  const act = async (what: string, remove: () => Promise<unknown>) => {
    let note = "";
    if (options.remove) {
      try {
        await remove();
        note = " deleted";
      } catch (err) {
        note = ` NOT deleted: ${(err as Error).message}`;
        status = 1;
      }
    }
    console.log(`  ${what}${note}`);
  };
  const nameOf = (owner: string) => owner.split("/").slice(3).join("/");
  for (const r of found) await act(`${r.kind} "${nameOf(r.owner)}" (id ${r.id})`, () => dispatch(r.kind, "delete", [r.id, r.outs]));
  for (const o of half) {
    const where = o.type === "link" ? ` in ${o.namespace ? `namespace "${o.namespace}"` : "the program's namespace"}` : "";
    const what = o.type === "netns" ? "unmarked namespace" : o.type === "link" ? "unmarked interface" : "switch";
    const where2 = o.type === "forwarding" ? ` in ${o.namespace ? `namespace "${o.namespace}"` : "the program's namespace"}` : where;
    await act(`${o.owner.split("/")[2]} "${nameOf(o.owner)}": ${what} "${o.name}"${where2} (its create was killed)`, () => removeUnmarked(o));
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
