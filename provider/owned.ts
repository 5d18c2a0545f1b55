/**
 * What each stack made, kept on the machine: after every create and update the
 * provider records the object (kind, id, outputs) under
 * /run/nslab/netns-INODE/owned-HASH.json of the namespace the provider runs in, and
 * removes the record after a delete. The kernel marks (alias, comment) identify the
 * resource only by a hash; these records say which stack it belongs to, so that
 * `nslab-orphans` can list, and remove, the objects a stack made but does not have in
 * its state (a run killed before Pulumi wrote them, PULUMI_SKIP_CHECKPOINTS).
 *
 * A stack is identified by its project, its stack name and its state backend: the
 * owner string every nslab resource carries is PROJECT/STACK@BACKEND/KIND/NAME, where
 * BACKEND hashes the backend URL and organization (sdk/identity.ts). Two stacks with
 * the same project and stack name on different backends therefore have different
 * marks and different records: neither takes over the other's objects. Resources made
 * by an nslab before this carry PROJECT/STACK/KIND/NAME (no backend) and keep it.
 */
import { NslabError } from "./errors";
import { SWITCHES } from "./forwarding";
import { stop as stopProcess, STOP_TIMEOUT_MS_DEFAULT } from "./process";
import type { HostArgs } from "./host";
import * as kernel from "./kernel";
import { isNslabTag, ownerTag, resourceNameOf } from "./resource";

/** One object a stack made. */
export interface OwnedRecord {
  /** PROJECT/STACK@BACKEND (see stackOf). */
  stack: string;
  /** The resource's owner string, PROJECT/STACK@BACKEND/KIND/NAME. */
  owner: string;
  kind: string;
  id: string;
  outs: Record<string, unknown>;
  /** When it was written (ms since the epoch; absent in records of an earlier nslab): see takenOverBy. */
  at?: number;
}

const PREFIX = "owned-";
const name = (owner: string) => `${PREFIX}${ownerTag(owner).slice("nslab:".length)}`;
/** PROJECT/STACK@BACKEND (or PROJECT/STACK for owners made before backends were named) of an owner string. */
export const stackOf = (owner: string) => owner.split("/").slice(0, 2).join("/");
/** `nslab KIND "NAME" of stack PROJECT/STACK@BACKEND`: an owner string, for messages. */
export const ownerLabel = (owner: string) => `nslab ${owner.split("/")[2]} "${resourceNameOf(owner) ?? owner}" of stack ${stackOf(owner)}`;

/** Records an object made or updated (best effort: the lab itself does not depend on it). */
export function remember(kind: string, owner: unknown, id: string, outs: Record<string, unknown>): void {
  if (typeof owner !== "string") return;
  try {
    kernel.writeRecord(undefined, name(owner), { stack: stackOf(owner), owner, kind, id, outs, at: Date.now() } satisfies OwnedRecord, `${kind} ${id}`);
  } catch {
    // Not writable (/run read-only): only nslab-orphans loses sight of the object.
  }
}

/** The record of the object `owner`'s last completed create made (this machine keeps them all), if any. */
export function recordOf(owner: unknown): OwnedRecord | undefined {
  if (typeof owner !== "string") return undefined;
  try {
    return kernel.onThisMachine(() => kernel.readRecord<OwnedRecord>(undefined, name(owner))) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Drops the records (owned and pending) of a deleted object. */
export function forget(owner: unknown): void {
  if (typeof owner !== "string") return;
  try {
    kernel.removeRecord(undefined, name(owner));
    kernel.removeRecord(undefined, `pending-${name(owner).slice(PREFIX.length)}`);
  } catch {
    // Nothing to forget.
  }
}

/**
 * Records a create about to run (its inputs), removed by settled() when it returns:
 * a create killed half-way leaves this record, so nslab-orphans can find what it made
 * (a marked route, an nft rule, a marked interface) although no owned record exists.
 */
export function pending(kind: string, owner: unknown, inputs: Record<string, unknown>): void {
  if (typeof owner !== "string") return;
  try {
    kernel.writeRecord(undefined, `pending-${name(owner).slice(PREFIX.length)}`, { stack: stackOf(owner), owner, kind, id: "", outs: inputs } satisfies OwnedRecord, `${kind} create`);
  } catch {
    // Best effort, like remember().
  }
}

/** Drops the pending() record of a create that returned (made, or failed and undone). */
export function settled(owner: unknown): void {
  if (typeof owner !== "string") return;
  kernel.removeRecord(undefined, `pending-${name(owner).slice(PREFIX.length)}`);
}

/** Every object recorded in this namespace, of every stack: made (owned) and being made (pending). */
export function recorded(): OwnedRecord[] {
  return [...kernel.listRecords<OwnedRecord>(undefined, PREFIX), ...kernel.listRecords<OwnedRecord>(undefined, "pending-")];
}

/** An object a killed create made but never marked: its intent record is all there is. */
export interface UnmarkedObject {
  /** PROJECT/STACK@BACKEND (see stackOf). */
  stack: string;
  owner: string;
  /**
   * "netns", "link", "forwarding" (a switch set by a killed create: name is its sysctl),
   * or "process" (a program a Process started, found by its NSLAB_OWNER: name is its pid).
   */
  type: "netns" | "link" | "forwarding" | "process";
  name: string;
  /** A process's start time (with its pid, its identity). */
  startTime?: string;
  /** A process's stopTimeoutMs, as it was started with (undefined: started without one). */
  stopTimeoutMs?: number;
  /** Namespace of a link (undefined: the program's). */
  namespace?: string;
  /** The host it is on (undefined: this machine). */
  host?: HostArgs;
  /** A namespace or link that carries its resource's own mark (a create that took it over, then failed). */
  marked?: true;
}

/**
 * Intent records (kernel.intend) in every namespace of the current host (this machine,
 * or the one kernel.withHost names: intents are kept next to their objects), whose
 * object exists and carries no mark or the resource's own; and the programs running
 * there that a Process started (their NSLAB_OWNER), of every stack. Records of the stacks
 * `dropStaleOf` says yes to whose object does not exist (the create was killed before
 * making it) are removed.
 */
export async function unmarked(dropStaleOf: (stack: string) => boolean = () => false): Promise<UnmarkedObject[]> {
  const found: UnmarkedObject[] = [];
  const host = kernel.currentHost();
  for (const { netns, name: file, record } of await kernel.hostListRecords<{ owner?: string; by?: string; set?: string }>(["intent-", "forwarding-"])) {
    if (!record?.by) continue;
    if (file.startsWith("forwarding-")) {
      // Forwarding switches: their record is written before the switch is set; one that
      // still holds nslab's value is a switch the killed create set.
      const key = SWITCHES[file.slice("forwarding-".length) as keyof typeof SWITCHES];
      if (!key || (await kernel.sysctlRead(key, netns, `forwarding in ${netns ?? "the program's namespace"}${kernel.where()}`)) !== record.set) continue;
      found.push({ stack: stackOf(record.by), owner: record.by, type: "forwarding", name: key, namespace: netns, ...(host ? { host } : {}) });
      continue;
    }
    const m = /^intent-(netns|link)-(.+)$/.exec(file);
    if (!m) continue;
    const [, type, name] = m as unknown as [string, "netns" | "link", string];
    const mark = type === "netns" ? await namespaceMark(name) : await linkMark(name, netns);
    if (mark === undefined && dropStaleOf(stackOf(record.by))) await kernel.intentDone(netns, file.slice("intent-".length));
    if (mark === undefined || (mark !== "" && mark !== record.owner)) continue;
    found.push({ stack: stackOf(record.by), owner: record.by, type, name, namespace: netns, ...(host ? { host } : {}), ...(mark ? { marked: true as const } : {}) });
  }
  // Programs nslab started: their NSLAB_OWNER names the resource (no record needed).
  for (const p of await kernel.markedProcesses()) {
    found.push({ stack: stackOf(p.owner), owner: p.owner, type: "process", name: String(p.pid), startTime: p.startTime, ...(p.stopTimeoutMs !== undefined ? { stopTimeoutMs: p.stopTimeoutMs } : {}), ...(host ? { host } : {}) });
  }
  return found;
}

/** lo's alias in a namespace ("" when none); undefined when the namespace does not exist (on the current host). */
async function namespaceMark(name: string): Promise<string | undefined> {
  const { state, mark } = await kernel.netnsLoMark(name, `namespace "${name}"${kernel.where()}`, true);
  if (state === "absent") return undefined;
  return state === "half" ? "" : mark;
}
async function linkMark(name: string, netns: string | undefined): Promise<string | undefined> {
  const live = await kernel.link(name, netns);
  return live ? live.ifalias ?? "" : undefined;
}

/**
 * Deletes an unmarked object of a killed create and its intent record, on its host,
 * after checking again that it carries no other mark; stops a program (its pid only
 * while it is still the one that started at its start time).
 * Equivalent to: ip netns delete NAME / ip [-n NS] link del NAME
 */
export function removeUnmarked(o: UnmarkedObject): Promise<void> {
  return kernel.withHost(o.host, async () => {
    const where = kernel.where();
    if (o.type === "process") {
      // SIGTERM, then SIGKILL after its resource's stopTimeoutMs (5 s for a program
      // started without one), only while the pid is still the program that started at
      // startTime.
      await stopProcess({ pid: Number(o.name), startTime: o.startTime ?? "", stopTimeoutMs: o.stopTimeoutMs ?? STOP_TIMEOUT_MS_DEFAULT, __owner: o.owner, command: [] });
      return;
    }
    if (o.type === "forwarding") {
      const file = `forwarding-${o.name === SWITCHES.ipv4 ? "ipv4" : "ipv6"}`;
      const record = await kernel.hostReadRecord<{ previous?: string; set?: string }>(o.namespace, file);
      const subject = `forwarding in ${o.namespace ?? "the program's namespace"}${where}`;
      // Equivalent to: [nsenter --net=NS] sysctl -w KEY=PREVIOUS
      if (record?.previous !== undefined && (await kernel.sysctlRead(o.name, o.namespace, subject)) === record.set) {
        await kernel.sysctlWrite(o.name, record.previous, o.namespace, subject);
      }
      await kernel.hostRemoveRecord(o.namespace, file);
      return;
    }
    const intentNetns = o.type === "netns" ? undefined : o.namespace;
    const mark = o.type === "netns" ? await namespaceMark(o.name) : await linkMark(o.name, o.namespace);
    if (mark !== undefined && (mark === "" || mark === ownerTag(o.owner))) {
      if (o.type === "netns") await kernel.netnsDelete(o.name, `namespace "${o.name}"${where}`);
      else await kernel.ip(["link", "del", "dev", o.name], o.namespace, kernel.describe("link", o.name, o.namespace));
    }
    await kernel.intentDone(intentNetns, `${o.type}-${o.name}`);
  });
}

/**
 * Says whose an existing object is, for "already exists" messages: the nslab resource
 * (kind, name, stack) whose record matches the object's mark, or that it carries
 * another nslab resource's mark; "" for an object without an nslab mark. A stack of the
 * same name on another state backend shows here with its own BACKEND part.
 */
export function whoseMark(mark: string | undefined, asker?: string): string {
  if (!isNslabTag(mark)) return "";
  const owner = markRecord(mark!)?.owner;
  if (owner && asker !== undefined && stackOf(asker) === stackOf(owner)) return sameStack(owner);
  return markSentence(mark!, owner, "; adopting it takes it from that stack");
}

/** The record of the resource whose mark (`nslab:HASH`) this is, made or being made on this machine. */
function markRecord(mark: string): OwnedRecord | undefined {
  const hash = mark.slice("nslab:".length);
  // The stack's records are on this machine, even while a resource on another host asks.
  return kernel.onThisMachine(() => kernel.readRecord<OwnedRecord>(undefined, `${PREFIX}${hash}`) ?? kernel.readRecord<OwnedRecord>(undefined, `pending-${hash}`));
}

/** " It belongs to nslab KIND "NAME" of stack S." for an nslab mark whose record is here; else "". */
export function markOwnerSentence(mark: string | undefined): string {
  return isNslabTag(mark) ? markSentence(mark!, markRecord(mark!)?.owner, "") : "";
}

/** Whose an nslab mark is, with `after` added to the owner's sentence; an owner without a record here is named by the mark. */
function markSentence(mark: string, owner: string | undefined, after: string): string {
  return owner ? ` It belongs to ${ownerLabel(owner)}${after}.` : ` It carries the mark of another nslab resource (${mark}).`;
}

/**
 * Refuses an update of an object that carries another nslab resource's mark: that one
 * took it over (adopt: true, in another stack or this one) since this resource last
 * wrote it, and an update would quietly take it back (its mark, its settings) while the
 * other still holds it. A mark that is no nslab resource's (absent, or someone's text)
 * is drift the update repairs, as before. `adopt: true` takes it back on purpose.
 */
export function notTakenOver(mark: string | undefined, owner: string, subject: string): void {
  if (!isNslabTag(mark) || mark === ownerTag(owner)) return;
  throw new NslabError(
    "AlreadyExists",
    `${subject} was taken over by another resource (adopt) since this one last wrote it.${whoseMark(mark)} Remove this resource from the program (the object stays with the other), or set adopt: true to take it back.`,
  );
}

/**
 * An object another resource of the asking resource's own stack holds: most often that
 * resource renamed in the program (Pulumi sees a new resource and deletes the old one
 * after creating it), which `aliases` says; adopting would not do, the old resource's
 * delete would remove the object in the same run. A renamed component takes aliases
 * itself (its children follow). A child moved to another component (a BridgedNetwork's
 * host) is renamed too, with no aliases of the component's to cover it: two runs, one
 * that deletes the old, one that makes the new.
 */
export function sameStack(owner: string): string {
  const [, , kind] = owner.split("/");
  const name = resourceNameOf(owner) ?? owner;
  return ` It belongs to nslab ${kind} "${name}" of this same stack (${stackOf(owner)}). If this resource is that one renamed, give it the option aliases: [{ name: "${name}" }] so that Pulumi keeps it as one resource and nothing moves; if a component made both and it was the component that was renamed, give the component aliases: [{ name: "ITS-OLD-NAME" }] instead (what it makes follows it); if both are in the program, they make one object: drop one. A resource moved from one component to another (a host moved from one BridgedNetwork to another) is made before the old one is deleted: move it in two runs (take it out, pulumi up; put it where it goes, pulumi up). Otherwise:`;
}

/**
 * The owner of another resource that took over an object without a per-owner mark (a
 * route) matching `same` since `self` last wrote it (adopt: true, in another stack or
 * this one): its record is newer than self's. The object is that resource's now, so
 * self's update refuses it and self's delete (a destroy, nslab-orphans) leaves it.
 */
export function takenOverBy(kind: string, self: string, same: (outs: Record<string, unknown>) => boolean): string | undefined {
  const since = recordOf(self)?.at ?? 0;
  const all = kernel.onThisMachine(() => kernel.listRecords<OwnedRecord>(undefined, PREFIX));
  return all.find((r) => r.kind === kind && r.owner !== self && (r.at ?? 0) > since && same(r.outs ?? {}))?.owner;
}

/**
 * The owner of another resource that recorded an object matching `same` (made, or
 * being made), when no completed create of `self` recorded it: for objects without a per-owner mark
 * (routes), whose takeover after a killed create must not take another stack's.
 */
export function recordedByOther(kind: string, self: string, same: (outs: Record<string, unknown>) => boolean): string | undefined {
  // The stack's records are on this machine, even while a resource on another host asks.
  const matching = kernel.onThisMachine(() => recorded()).filter((r) => r.kind === kind && same(r.outs ?? {}));
  // Our own pending record is this very create's (written before it): only a record of
  // an earlier create of ours that completed (id set) says the object is ours.
  if (matching.some((r) => r.owner === self && r.id !== "")) return undefined;
  return matching.find((r) => r.owner !== self)?.owner;
}
