/**
 * The shape every nslab resource kind implements, and the pure helpers they share:
 * diffing normalised properties and ownership tags.
 */
import { createHash } from "node:crypto";
import { isUnknown } from "./validate";
import type { Failure } from "./validate";

export interface CheckResult<I> {
  inputs: I;
  failures: Failure[];
}

export interface DiffResult {
  changes: boolean;
  replaces: string[];
  stables: string[];
  deleteBeforeReplace: boolean;
}

export interface ReadResult<I, O> {
  id?: string;
  props?: O;
  inputs?: I;
}

/** Inputs every resource takes besides its own. */
export interface CommonInputs {
  /** Take over an existing object that matches instead of failing. */
  adopt?: boolean;
  /** Identifies the owning resource (PROJECT/STACK@BACKEND/KIND/NAME, sdk/identity.ts); set by the SDK. */
  __owner: string;
}

/** Inputs of the kinds that are written again when an interface they depend on changes (LINKS_RULE). */
export interface LinkDependentInputs {
  /** The generations of the interfaces in the resource's dependsOn; set by the SDK. */
  __links?: string[];
}

/**
 * One resource kind: pure `check` and `diff`, kernel `create/read/update/delete`.
 * `olds` passed to diff/update/read are the previous *outputs*, which always contain
 * the inputs under the same names.
 */
export interface ResourceKind<I extends CommonInputs, O extends I> {
  readonly kind: string;
  /** The properties a program may give it besides `host` (a key not listed fails check). */
  readonly properties: readonly string[];
  check(olds: Partial<I> | undefined, news: Record<string, unknown>): CheckResult<I>;
  diff(id: string, olds: O, news: I): DiffResult;
  create(inputs: I): Promise<{ id: string; outs: O }>;
  read(id: string, props: O): Promise<ReadResult<I, O>>;
  update(id: string, olds: O, news: I): Promise<{ outs: O }>;
  delete(id: string, props: O): Promise<void>;
  /**
   * Whether anything of the object is in the kernel, for a kind whose read reports a
   * missing part as drift rather than the object gone (nslab-orphans lists only what
   * exists). Default: read finds it.
   */
  exists?(id: string, props: O): Promise<boolean>;
}

/** How a property is compared and what changing it means. */
export interface FieldRule {
  name: string;
  /** Changing it needs a new object (replace); otherwise it is updated in place. */
  replace?: boolean;
  /** Compared as a set (order does not matter). */
  set?: boolean;
  /** Optional and filled in by the kernel (e.g. a MAC): unset in news means "any". */
  computed?: boolean;
}

/**
 * The generations of the interfaces a resource depends on (`__links`: the SDK takes
 * them from the VethPairs, Bridges, TapDevices and Vxlans in its dependsOn; link.ts
 * generationOf). A change means an interface was made anew or came back up, and lost
 * what the kernel keeps on it (its routes, its qdiscs): the resource is written again,
 * in place. Left out of a program (no such dependsOn), it is no change.
 * A preview cannot know an interface's next generation (the engine gives a dynamic
 * resource that it updates or replaces its inputs as outputs there), so it plans an
 * update of every dependent of an interface that changes at all; `up` then writes only
 * those whose interfaces really were made anew or came back up.
 */
export const LINKS_RULE: FieldRule = { name: "__links", set: true, computed: true };

/**
 * `__links` as check passes it on: a list of strings, or the unknown value of a preview
 * (an interface about to be made). An empty list is left out, as a state written before
 * there were generations has none: no change to report.
 */
export function linksInput(raw: unknown): string[] | undefined {
  if (isUnknown(raw)) return raw as string[];
  if (!Array.isArray(raw)) return undefined;
  const links = raw.filter((g) => g !== undefined && g !== null).map(String);
  return links.length ? links : undefined;
}

/** Normalised form used for comparison. */
function comparable(value: unknown, rule: FieldRule): string {
  if (value === undefined || value === null) return "";
  if (rule.set && Array.isArray(value)) return JSON.stringify([...value].map(String).sort());
  return JSON.stringify(value);
}

/** Names of the fields whose values differ between olds and news. */
export function changedFields(olds: Record<string, unknown>, news: Record<string, unknown>, rules: FieldRule[]): FieldRule[] {
  return rules.filter((rule) => {
    const next = news[rule.name];
    if (rule.computed && (next === undefined || next === null)) return false;
    return comparable(olds[rule.name], rule) !== comparable(next, rule);
  });
}

/** A pure diff from field rules; replacements delete first when names would clash. */
export function diffFields(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  rules: FieldRule[],
  deleteBeforeReplace = true,
): DiffResult {
  const changed = changedFields(olds, news, rules);
  const replaces = changed.filter((r) => r.replace).map((r) => r.name);
  const stables = rules.filter((r) => r.replace && !changed.includes(r)).map((r) => r.name);
  return {
    changes: changed.length > 0,
    replaces,
    stables,
    deleteBeforeReplace: replaces.length > 0 && deleteBeforeReplace,
  };
}

/** Marker written on kernel objects nslab owns (interface alias, nft comment, ...). */
export function ownerTag(owner: string): string {
  return `nslab:${createHash("sha256").update(owner).digest("hex").slice(0, 16)}`;
}

/**
 * A stable, locally administered unicast MAC for an interface nslab makes without a
 * `mac` of the user's: a hash of its owner (PROJECT/STACK@BACKEND/KIND/NAME) and its role
 * ("bridge", "a", "b", "tap"), so the interface gets the same address every time it is
 * (re)created and the kernel never picks another. Like systemd's MACAddressPolicy=
 * persistent (a hash of machine and interface name), without which a bridge takes the
 * lowest MAC of its ports and moves whenever ports come and go, and a recreated veth
 * end gets a new random MAC that every neighbour still has the old one of.
 */
export function stableMac(owner: string, role: string): string {
  const bytes = createHash("sha256").update(`${owner}\0${role}`).digest().subarray(0, 6);
  // Locally administered (bit 1 set), unicast (bit 0 clear).
  bytes[0] = (bytes[0] & 0xfc) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * The resource name at the end of an owner ("PROJECT/STACK@BACKEND/KIND/NAME"), for defaults
 * such as a bridge's interface name; undefined when the owner has no such shape.
 */
export function resourceNameOf(owner: unknown): string | undefined {
  if (typeof owner !== "string") return undefined;
  const parts = owner.split("/");
  return parts.length >= 4 ? parts.slice(3).join("/") : undefined;
}

/** True when `marker` (an alias or comment) says the object belongs to any nslab resource. */
export function isNslabTag(marker: string | undefined): boolean {
  return typeof marker === "string" && /^nslab:[0-9a-f]{16}$/.test(marker);
}

/** Removes undefined values so that outputs compare and serialise cleanly. */
export function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Runs independent steps at once (on another host, side by side over its shells) and
 * fails as running them in turn would have: with the first failure by position, not by
 * time, once all have ended.
 */
export async function allInOrder<T extends readonly unknown[]>(steps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(steps as readonly Promise<unknown>[]);
  for (const step of settled) if (step.status === "rejected") throw step.reason;
  return settled.map((step) => (step as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
