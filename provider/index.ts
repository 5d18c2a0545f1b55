/**
 * The nslab provider module. The Pulumi dynamic provider that the SDK serializes into
 * each resource's state is only a trampoline: at call time it does
 * `require("nslab/provider").dispatch(kind, op, args)`, so refresh and destroy always
 * run the installed code (not a copy frozen at the last update) and no third-party
 * module is ever captured.
 */
import { NslabError } from "./errors";
import { bridgeKind } from "./bridge";
import { forwardingKind } from "./forwarding";
import { tracked, watchEngine } from "./health";
import { forget, pending, remember, settled } from "./owned";
import { natKind } from "./nat";
import { routeKind } from "./route";
import { namespaceKind } from "./namespace";
import { tapKind } from "./tap";
import { vethKind } from "./veth";
import { impairmentKind } from "./impairment";
import { reachabilityKind } from "./reachability";
import { processKind } from "./process";
import { vxlanKind } from "./vxlan";
import type { ResourceKind } from "./resource";

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
export { recorded, forget, unmarked, removeUnmarked, stackOf } from "./owned";
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

export type Operation = "check" | "diff" | "create" | "read" | "update" | "delete";

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

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function run(impl: ResourceKind<any, any>, op: Operation, args: unknown[]): Promise<unknown> {
  switch (op) {
    case "check": {
      const olds = args[0] ? props(args[0]) : undefined;
      const checked = impl.check(olds, props(args[1]));
      // A resource keeps the owner (and so the marks) it was made with for as long as it
      // exists: objects made before owners named the backend (sdk/identity.ts), or before
      // the stack was renamed or moved, stay its own and are never re-marked.
      if (typeof olds?.__owner === "string" && checked.inputs && typeof checked.inputs === "object") {
        (checked.inputs as Record<string, unknown>).__owner = olds.__owner;
      }
      return checked;
    }
    case "diff":
      return impl.diff(String(args[0]), props(args[1]), props(args[2]));
    case "create": {
      const inputs = props(args[0]);
      pending(impl.kind, inputs.__owner, inputs);
      try {
        const made = await impl.create(inputs);
        remember(impl.kind, made.outs?.__owner, made.id, made.outs);
        return made;
      } finally {
        settled(inputs.__owner);
      }
    }
    case "read":
      return impl.read(String(args[0]), props(args[1]));
    case "update": {
      const updated = await impl.update(String(args[0]), props(args[1]), props(args[2]));
      remember(impl.kind, updated.outs?.__owner, String(args[0]), updated.outs);
      return updated;
    }
    case "delete": {
      await impl.delete(String(args[0]), props(args[1]));
      forget(props(args[1]).__owner);
      return undefined;
    }
    default:
      throw new NslabError("InvalidArgument", `unknown provider operation "${String(op)}"`);
  }
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
    check: (olds, news) => dispatch(kind, "check", [olds, news]),
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
