/**
 * What each stack made, kept on the machine: after every create and update the
 * provider records the object (kind, id, outputs) under
 * /run/nslab/netns-INODE/owned-HASH.json of the namespace the provider runs in, and
 * removes the record after a delete. The kernel marks (alias, comment) identify the
 * resource only by a hash; these records say which stack it belongs to, so that
 * `nslab-orphans` can list, and remove, the objects a stack made but does not have in
 * its state (a run killed before Pulumi wrote them, PULUMI_SKIP_CHECKPOINTS).
 *
 * A stack is identified by its project and stack name (the owner string every nslab
 * resource carries is project/stack/kind/name). Two stacks with the same project and
 * stack name on different state backends are therefore the same stack to nslab: their
 * marks are equal, so each would take over the other's objects. Give them different
 * stack names.
 */
import * as kernel from "./kernel";
import { ownerTag } from "./resource";

/** One object a stack made. */
export interface OwnedRecord {
  /** project/stack. */
  stack: string;
  /** The resource's owner string, project/stack/kind/name. */
  owner: string;
  kind: string;
  id: string;
  outs: Record<string, unknown>;
}

const PREFIX = "owned-";
const name = (owner: string) => `${PREFIX}${ownerTag(owner).slice("nslab:".length)}`;
/** project/stack of an owner string. */
export const stackOf = (owner: string) => owner.split("/").slice(0, 2).join("/");

/** Records an object made or updated (best effort: the lab itself does not depend on it). */
export function remember(kind: string, owner: unknown, id: string, outs: Record<string, unknown>): void {
  if (typeof owner !== "string") return;
  try {
    kernel.writeRecord(undefined, name(owner), { stack: stackOf(owner), owner, kind, id, outs } satisfies OwnedRecord, `${kind} ${id}`);
  } catch {
    // Not writable (/run read-only): only nslab-orphans loses sight of the object.
  }
}

/** Drops the record of a deleted object. */
export function forget(owner: unknown): void {
  if (typeof owner !== "string") return;
  try {
    kernel.removeRecord(undefined, name(owner));
  } catch {
    // Nothing to forget.
  }
}

/** Every object recorded in this namespace, of every stack. */
export function recorded(): OwnedRecord[] {
  return kernel.listRecords<OwnedRecord>(undefined, PREFIX);
}
