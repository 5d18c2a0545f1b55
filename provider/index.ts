/**
 * The nslab provider module. The Pulumi dynamic provider that the SDK serializes into
 * each resource's state is only a trampoline: at call time it does
 * `require("nslab/provider").dispatch(kind, op, args)`, so refresh and destroy always
 * run the installed code (not a copy frozen at the last update) and no third-party
 * module is ever captured.
 */
import { randomBytes } from "node:crypto";
import { NslabError } from "./errors";
import { bridgeKind } from "./bridge";
import { forwardingKind } from "./forwarding";
import { tracked, watchEngine } from "./health";
import { claimNames, namespacesElsewhere, releaseNames } from "./claims";
import { checkHost, HostArgs, hostKey, hostLabel, machineKey, sameHost } from "./host";
import { resourceNameOf } from "./resource";
import { ensureMaster } from "./ssh";
import * as kernel from "./kernel";
import { Checker } from "./validate";
import { forget, OwnedRecord, pending, recordOf, remember, settled } from "./owned";
import { natKind } from "./nat";
import { routeKind } from "./route";
import { namespaceKind } from "./namespace";
import { tapKind } from "./tap";
import { vethKind } from "./veth";
import { impairmentKind } from "./impairment";
import { reachabilityKind } from "./reachability";
import { processKind } from "./process";
import { vxlanKind } from "./vxlan";
import type { CheckResult, DiffResult, ResourceKind } from "./resource";

export { NslabError, isKind } from "./errors";
export type { ErrorKind } from "./errors";
export * as kernel from "./kernel";
export { namespaceKind } from "./namespace";
export type { NamespaceInputs, NamespaceOutputs } from "./namespace";
export { vethKind } from "./veth";
export type { VethInputs, VethOutputs, VethEnd } from "./veth";
export { bridgeKind } from "./bridge";
export type { BridgeInputs, BridgeOutputs } from "./bridge";
export { tapKind } from "./tap";
export type { TapInputs, TapOutputs } from "./tap";
export { routeKind, NSLAB_ROUTE_PROTO } from "./route";
export type { RouteInputs, RouteOutputs } from "./route";
export { forwardingKind } from "./forwarding";
export type { ForwardingInputs, ForwardingOutputs } from "./forwarding";
export { natKind, NAT_TABLE } from "./nat";
export type { NatInputs, NatOutputs, NatKind } from "./nat";
export { impairmentKind } from "./impairment";
export type { ImpairmentInputs, ImpairmentOutputs, ImpairmentDirection } from "./impairment";
export { reachabilityKind } from "./reachability";
export type { ReachabilityInputs, ReachabilityOutputs, ReachabilityProtocol, ReachabilityExpectation } from "./reachability";
export { processKind } from "./process";
export type { ProcessInputs, ProcessOutputs } from "./process";
export { vxlanKind } from "./vxlan";
export type { VxlanInputs, VxlanOutputs } from "./vxlan";
export { ownerTag } from "./resource";
export type { HostArgs } from "./host";
export { HOST_KINDS, hostLabel, machineKey } from "./host";
export { withHost } from "./kernel";
export { recorded, forget, unmarked, removeUnmarked, stackOf, ownerLabel } from "./owned";
export type { OwnedRecord, UnmarkedObject } from "./owned";
export type { CheckResult, DiffResult, ReadResult, ResourceKind } from "./resource";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const KINDS: Record<string, ResourceKind<any, any>> = {
  [namespaceKind.kind]: namespaceKind,
  [vethKind.kind]: vethKind,
  [bridgeKind.kind]: bridgeKind,
  [tapKind.kind]: tapKind,
  [routeKind.kind]: routeKind,
  [forwardingKind.kind]: forwardingKind,
  [natKind.kind]: natKind,
  [impairmentKind.kind]: impairmentKind,
  [reachabilityKind.kind]: reachabilityKind,
  [processKind.kind]: processKind,
  [vxlanKind.kind]: vxlanKind,
};

export type Operation = "check" | "diff" | "create" | "read" | "update" | "delete" | "exists";

/** Strips engine bookkeeping (the serialized provider) from a property bag. */
function props(value: unknown): Record<string, unknown> {
  if (!value || typeof value !== "object") return {};
  const { __provider: _ignored, ...rest } = value as Record<string, unknown>;
  return rest;
}

/** Entry point of the trampoline: runs one lifecycle operation of one resource kind. */
export async function dispatch(kind: string, op: Operation, args: unknown[]): Promise<unknown> {
  const impl = KINDS[kind];
  if (!impl) {
    throw new NslabError("InvalidArgument", `nslab has no resource kind "${kind}" (known: ${Object.keys(KINDS).join(", ")}). Is the installed nslab older than the program?`);
  }
  watchEngine();
  return tracked(() => run(impl, op, args));
}

// ---- host: common to every kind ----------------------------------------------------------

/**
 * `host` is handled here, the same way for every kind: validated in check (a kind that
 * cannot run elsewhere refuses it), part of the identity in diff (another machine
 * replaces; the same machine reached with another key or known-hosts file updates),
 * and every kernel operation of create/read/update/delete runs on it (kernel.withHost).
 * nslab's own bookkeeping of the stack (owned.ts) stays on this machine.
 */
function checkWithHost<I>(kind: string, result: CheckResult<I>, news: Record<string, unknown>): CheckResult<I> {
  const c = new Checker();
  const host = checkHost(c, news.host, kind);
  if (c.failures.length > 0) return { inputs: result.inputs, failures: [...result.failures, ...c.failures] };
  return host === undefined ? result : { inputs: { ...result.inputs, host }, failures: result.failures };
}

function diffWithHost(result: DiffResult, olds: Record<string, unknown>, news: Record<string, unknown>): DiffResult {
  if (!sameHost(olds.host, news.host)) return { ...result, changes: true, replaces: [...result.replaces, "host"] };
  if (olds.host === undefined) return result;
  // The same machine reached another way (a new key, a new known-hosts file): an update,
  // which reaches it the new way; nothing moves.
  if (hostKey(olds.host as HostArgs) !== hostKey(news.host as HostArgs)) return { ...result, changes: true };
  return { ...result, stables: [...result.stables, "host"] };
}

/** The outputs with the host they live on (kinds build their outputs without it). */
function withHostOut<T extends Result>(result: T, host: HostArgs | undefined): T {
  return host === undefined ? result : withFields(result, { host }, true);
}

/** A kind's result (create, update: outs; read: props and inputs). */
type Result = { outs?: Record<string, unknown>; props?: Record<string, unknown>; inputs?: Record<string, unknown> };

/** RESULT with FIELDS added to its outputs, and with INPUTS to its inputs too. */
function withFields<T extends Result>(result: T, fields: Record<string, unknown>, inputs: boolean): T {
  const out = { ...result };
  if (out.outs) out.outs = { ...out.outs, ...fields };
  if (out.props) out.props = { ...out.props, ...fields };
  if (inputs && out.inputs) out.inputs = { ...out.inputs, ...fields };
  return out;
}

/**
 * Runs `work` on `host`; an error that does not say where gets the host added. The
 * host's SSH connection is made first, so that an unreachable host fails before any
 * work, naming the resource (`Namespace "b1" on root@192.0.2.2: cannot reach ...`).
 */
async function onHost<T>(kind: string, owner: unknown, host: HostArgs | undefined, work: () => Promise<T>): Promise<T> {
  if (host === undefined) return work();
  try {
    await ensureMaster(host, `${kind} "${resourceNameOf(owner) ?? String(owner)}" on ${hostLabel(host)}`);
    return await kernel.withHost(host, work);
  } catch (err) {
    const label = hostLabel(host);
    if (err instanceof NslabError && !err.message.includes(label)) throw new NslabError(err.kind, `${err.message} (on ${label})`, err.details);
    throw err;
  }
}

const hostOf = (p: Record<string, unknown>) => p.host as HostArgs | undefined;

/**
 * The objects creates of this provider process made again while a completed create of
 * the same owner had recorded them (kind, machine, id, owner): another resource of that
 * owner, still in the state, holds them. That happens when the program gives a resource
 * another URN (puts it under a parent, without `aliases`), or the engine replaces it
 * creating first (`pulumi up --replace`): nslab's create takes over the object, which
 * carries its own mark (the way an interrupted create is taken over), and the engine
 * then deletes the old resource, in the same run. That delete is left out, once:
 * deleting would remove the object the new resource holds, with `up` green.
 */
const madeThisRun = new Set<string>();
const madeKey = (kind: string, host: HostArgs | undefined, id: unknown, owner: unknown) => JSON.stringify([kind, machineKey(host), String(id), String(owner)]);
/** The key of the object an owned record describes. */
const recordKey = (r: OwnedRecord) => madeKey(r.kind, r.outs?.host as HostArgs | undefined, r.id, r.owner);

/**
 * Which create made a resource's object, and which write last changed it: `__made` in
 * its outputs, "MADE" after a create (a token new to each create) and "MADE.WROTE" after
 * an update (a token new to each update), kept by reads, recorded with the object
 * (provider/owned.ts). When the record of an owner's object carries another MADE than a
 * resource being deleted, a later create of that owner (the resource made again:
 * replaced creating first, moved to another URN, its host spelled another way) holds the
 * object now. A Reachability takes the whole token of each resource in its dependsOn
 * (sdk/base.ts writesOf), so it probes again after any of them is written.
 */
const newMade = () => randomBytes(6).toString("base64url");
/** The create part of a `__made` token; undefined for none (a resource recorded before tokens has ".WROTE" after an update). */
const madePart = (made: unknown) => (typeof made === "string" ? made.split(".")[0] || undefined : undefined);
/**
 * The token of an update: the create's part kept, a write's new. A resource recorded
 * before tokens gets no create part: its record names none either, so a delete from a
 * state that missed this update (a run killed after it) still removes the object.
 */
const written = (made: unknown) => `${madePart(made) ?? ""}.${newMade()}`;
function withMade<T extends Result>(result: T, made: unknown): T {
  return typeof made === "string" ? withFields(result, { __made: made }, false) : result;
}

/**
 * A diff that also updates a resource whose recorded outputs have no `__made` (made by an
 * nslab from before tokens), once: a Reachability that depends on it would otherwise see
 * its token as unknown in every preview and plan to probe again each time. The update
 * writes nothing to the kernel (stampOnly), only the token, to the state and the record.
 */
function stamping(d: DiffResult, olds: Record<string, unknown>): DiffResult {
  return !d.changes && olds.__made === undefined ? { ...d, changes: true } : d;
}
/** Whether an update is only the one that records a token (stamping): nothing else differs. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function stampOnly(impl: ResourceKind<any, any>, id: string, olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  return olds.__made === undefined && !diffWithHost(impl.diff(id, olds, news), olds, news).changes;
}

/**
 * Whether the object a resource being deleted (OLD, of id ID and key KEY) describes was
 * made again by a later create of its owner, which holds it now: RECORD, the owner's
 * record, names that object (kind, id, machine) under another create's token. The run
 * that made it again deletes the original itself (madeThisRun); this is for an original
 * the engine deletes in a later run, the one that made it again having failed first.
 */
async function madeAgain(kind: string, record: OwnedRecord, old: Record<string, unknown>, id: string, key: string): Promise<boolean> {
  const made = madePart(record.outs?.__made);
  if (made === undefined || made === madePart(old.__made)) return false;
  if (record.kind !== kind || String(record.id) !== id || record.owner !== old.__owner) return false;
  return recordKey(record) === key || sameMachine(kind, old.__owner, record.outs?.host as HostArgs | undefined, hostOf(old));
}

/** Whether two hosts (undefined: this machine) reach one machine; false when either cannot tell. */
async function sameMachine(kind: string, owner: unknown, a: HostArgs | undefined, b: HostArgs | undefined): Promise<boolean> {
  const identity = (host: HostArgs | undefined) =>
    onHost(kind, owner, host, () => kernel.machineIdentity(`${kind} "${resourceNameOf(owner) ?? String(owner)}"${host ? ` on ${hostLabel(host)}` : ""}`)).catch(() => undefined);
  const [x, y] = await Promise.all([identity(a), identity(b)]);
  return x !== undefined && x === y;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function run(impl: ResourceKind<any, any>, op: Operation, args: unknown[]): Promise<unknown> {
  switch (op) {
    case "check": {
      const olds = args[0] ? props(args[0]) : undefined;
      const given = props(args[1]);
      // A resource keeps the owner (and so the marks) it was made with for as long as it
      // exists: objects made before owners named the backend (sdk/identity.ts), or before
      // the stack was renamed or moved, or by a program that saw another backend (an
      // inline Automation API program whose process lacks the workspace's
      // PULUMI_BACKEND_URL), stay its own and are never re-marked; and what check derives
      // from the owner (a stable MAC) is derived from that one, so it never changes either.
      const news = typeof olds?.__owner === "string" && typeof given.__owner === "string" ? { ...given, __owner: olds.__owner } : given;
      const checked = impl.check(olds, news);
      // A property nothing would apply (a misspelt one: "adresses") fails, naming it.
      const c = new Checker();
      // A value the engine carries over from the old inputs (ignoreChanges) is not the program's.
      const carried = Object.keys(news).filter((k) => olds !== undefined && k in olds && JSON.stringify(olds[k]) === JSON.stringify(news[k]));
      c.knownKeys(news, [...impl.properties, "host", "__owner", ...carried], "", `a ${impl.kind}`);
      const result = checkWithHost(impl.kind, c.failures.length ? { ...checked, failures: [...checked.failures, ...c.failures] } : checked, news);
      // Two resources of the program that would make one namespace or interface, or impair
      // one direction of one. Claimed under the program's name for the resource, not the
      // owner it keeps: a resource renamed with aliases that must be replaced is checked
      // twice, with its old owner and then (as its replacement, without olds) its new one,
      // and the second check gives up the first's claims only when both are under one name.
      const inputs = result.inputs as Record<string, unknown> | undefined;
      if (result.failures.length > 0 || typeof inputs?.__owner !== "string") return result;
      const claimant = typeof given.__owner === "string" ? given.__owner : inputs.__owner;
      const taken = [...claimNames(impl.kind, claimant, inputs), ...namespacesElsewhere(impl.kind, inputs)];
      return taken.length ? { ...result, failures: taken } : result;
    }
    case "diff": {
      const [olds, news] = [props(args[1]), props(args[2])];
      return stamping(diffWithHost(impl.diff(String(args[0]), olds, news), olds, news), olds);
    }
    case "create": {
      const inputs = props(args[0]);
      // What a completed create of this owner recorded, before this one replaces it.
      const before = recordOf(inputs.__owner);
      pending(impl.kind, inputs.__owner, inputs);
      try {
        const made = withMade(withHostOut(await onHost(impl.kind, inputs.__owner, hostOf(inputs), () => impl.create(inputs)), hostOf(inputs)), newMade());
        remember(impl.kind, made.outs?.__owner, made.id, made.outs);
        const key = madeKey(impl.kind, hostOf(inputs), made.id, made.outs?.__owner ?? inputs.__owner);
        if (before && recordKey(before) === key) madeThisRun.add(key);
        else if (before && before.kind === impl.kind && String(before.id) === String(made.id) && before.owner === (made.outs?.__owner ?? inputs.__owner)) {
          // The same object under the same owner, recorded on a machine spelled another
          // way ("root@h" for "h"): the engine replaces the resource for its new host,
          // creating first, and its delete of the old one would remove this object if
          // both spellings reach one machine.
          const old = before.outs?.host as HostArgs | undefined;
          if (await sameMachine(impl.kind, inputs.__owner, old, hostOf(inputs))) madeThisRun.add(recordKey(before));
        }
        return made;
      } finally {
        settled(inputs.__owner);
      }
    }
    case "read": {
      const old = props(args[1]);
      const read = withMade(withHostOut(await onHost(impl.kind, old.__owner, hostOf(old), () => impl.read(String(args[0]), old)), hostOf(old)), old.__made);
      // The token is an output only: not among the inputs a read gives back (the kinds
      // derive them from the recorded outputs).
      if (read.inputs && "__made" in read.inputs) {
        const { __made: _made, ...inputs } = read.inputs as Record<string, unknown>;
        return { ...read, inputs };
      }
      return read;
    }
    case "exists": {
      const old = props(args[1]);
      const id = String(args[0]);
      return onHost(impl.kind, old.__owner, hostOf(old), async () => (impl.exists ? impl.exists(id, old) : (await impl.read(id, old)).props !== undefined));
    }
    case "update": {
      const [olds, news] = [props(args[1]), props(args[2])];
      const id = String(args[0]);
      // Only the token to record (stamping): the recorded outputs as they are, without
      // reaching the resource's machine.
      const result = stampOnly(impl, id, olds, news) ? { outs: olds } : await onHost(impl.kind, news.__owner, hostOf(news), () => impl.update(id, olds, news));
      const updated = withMade(withHostOut(result, hostOf(news)), written(olds.__made));
      remember(impl.kind, updated.outs?.__owner, id, updated.outs);
      return updated;
    }
    case "delete": {
      const old = props(args[1]);
      // The same object, now another resource's (madeThisRun): left to it, with its
      // records. Once: a later delete of it (another operation) is a real one.
      const key = madeKey(impl.kind, hostOf(old), args[0], old.__owner);
      if (madeThisRun.delete(key)) return undefined;
      // The same object, made again by a later create of the owner, in an earlier run:
      // one that failed before this original's delete (which the engine does now).
      const record = recordOf(old.__owner);
      if (record && (await madeAgain(impl.kind, record, old, String(args[0]), key))) return undefined;
      await onHost(impl.kind, old.__owner, hostOf(old), () => impl.delete(String(args[0]), old));
      // The owner's records go, unless they now describe another object of the owner (a
      // Process's new program, the resource made on another machine: a create of this
      // run), which is still the new resource's.
      if (!record || recordKey(record) === key) forget(old.__owner);
      releaseNames(String(old.__owner), true);
      return undefined;
    }
    default:
      throw new NslabError("InvalidArgument", `unknown provider operation "${String(op)}"`);
  }
}

/**
 * Check failures as the engine prints them. The engine shows a failure's property with its
 * value looked up as one top-level key, so a nested one ("a.addresses[0]") would read
 * "property a.addresses[0] value {<nil>} has a problem"; it goes as a failure of the whole
 * resource instead, its reason naming the property ("resource 'p' has a problem:
 * a.addresses[0] ...").
 */
export function engineFailures<I>(result: CheckResult<I>): CheckResult<I> {
  const nested = (property: string) => /[.[]/.test(property);
  if (!result.failures?.some((f) => nested(f.property))) return result;
  return {
    ...result,
    failures: result.failures.map((f) => (nested(f.property) ? { property: "", reason: f.reason.includes(f.property) ? f.reason : `${f.property}: ${f.reason}` } : f)),
  };
}

/** A kind's lifecycle operations, as the dynamic-provider process calls them. */
export interface Handler {
  check(olds: unknown, news: unknown): Promise<unknown>;
  diff(id: unknown, olds: unknown, news: unknown): Promise<unknown>;
  create(inputs: unknown): Promise<unknown>;
  read(id: unknown, props: unknown): Promise<unknown>;
  update(id: unknown, olds: unknown, news: unknown): Promise<unknown>;
  delete(id: unknown, props: unknown): Promise<unknown>;
}

/**
 * The dynamic provider of one kind, as the provider text in each resource's state
 * (sdk/base.ts) asks for it: every operation goes to {@link dispatch}. A kind this nslab
 * does not know fails at the first operation, naming it.
 */
export function handlerFor(kind: string): Handler {
  return {
    check: async (olds, news) => engineFailures((await dispatch(kind, "check", [olds, news])) as CheckResult<unknown>),
    diff: (id, olds, news) => dispatch(kind, "diff", [id, olds, news]),
    create: (inputs) => dispatch(kind, "create", [inputs]),
    read: (id, props) => dispatch(kind, "read", [id, props]),
    update: (id, olds, news) => dispatch(kind, "update", [id, olds, news]),
    delete: (id, props) => dispatch(kind, "delete", [id, props]),
  };
}

// Benchmarks (bench/run.js) ask the provider process for its peak memory: when
// NSLAB_PROVIDER_STATS names a file, a line with the process's maximum resident set
// size (KiB) is appended to it on exit.
if (process.env.NSLAB_PROVIDER_STATS) {
  const file = process.env.NSLAB_PROVIDER_STATS;
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    try {
      require("node:fs").appendFileSync(file, `${JSON.stringify({ pid: process.pid, maxRssKiB: process.resourceUsage().maxRSS, cpuMs: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000) })}\n`);
    } catch {
      // Statistics are best effort: never fail the provider for them.
    }
  };
  process.on("exit", write);
  // The engine stops plugins with SIGINT; record before going.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      write();
      process.exit(0);
    });
  }
}
