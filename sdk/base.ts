import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { shapeCallSites } from "./callsites";
import { backendUrl, processSources, stackIdentity } from "./identity";
import { runRegistry } from "./scope";
import { HostArgs, machineKey } from "../provider/host";

/** Another machine to make a resource on (see the README, "Labs across machines"). */
export type { HostArgs };

/**
 * The dynamic provider of one resource kind, as the text Pulumi keeps in each resource's
 * state (`__provider`) and the dynamic-provider process loads (`require-from-string`,
 * then `handler()`). It is a trampoline: at call time it loads the installed nslab
 * provider by package name (see provider/index.ts for why), so it captures nothing but
 * `kind`.
 *
 * `pulumi.dynamic.Resource` would produce the same kind of text by serializing a
 * closure (`runtime.serializeFunction`) on every program run: about 0.3 s of inspector
 * work before the first resource can be registered. This text is written once, here.
 */
export function providerModule(kind: string): string {
  let text = providerTexts.get(kind);
  if (text === undefined) providerTexts.set(kind, (text = writeProviderModule(kind)));
  return text;
}

/** One text per kind, made once per program run. */
const providerTexts = new Map<string, string>();

/**
 * One line, the same for every resource of a kind: every byte of it is written twice
 * (inputs and outputs) into each resource's state, and the whole state is rewritten
 * after every step of an update (docs/benchmark.md, "State per resource").
 */
function writeProviderModule(kind: string): string {
  return `exports.handler = () => require("nslab/provider").handlerFor(${JSON.stringify(kind)});\n`;
}

/** The `host` argument of the resources that can live on another machine. */
export interface OnHostArgs {
  /**
   * The machine the resource lives on; omitted means the machine that runs `pulumi`.
   * Moving to another machine (`ssh`, `port`) replaces the resource; another
   * `identityFile` or `knownHostsFile` for the same machine updates it in place. Namespaces, interfaces and bridges named in the
   * other arguments are that machine's.
   */
  host?: pulumi.Input<HostArgs>;
}

/** How a host is told apart in the program's registries (a port and its bridge, one switch per namespace). */
export function placeKey(namespace: string | undefined, host: HostArgs | undefined): string {
  return host === undefined ? namespace ?? "" : `${namespace ?? ""}\0${machineKey(host)}`;
}

/** A place key in words: `namespace "ns1"`, `the program's namespace on root@192.0.2.2`. */
export function placeText(key: string): string {
  const [ns, host] = key.split("\0");
  return `${ns ? `namespace "${ns}"` : "the program's namespace"}${host ? ` on ${host.replace(/:22$/, "")}` : ""}`;
}

/**
 * The backend of the current program run when the code driving it knows it better than
 * the environment (an inline program of {@link localLab}, whose backend URL is passed
 * to the CLI, not set in this process). Set before the program declares resources.
 * @internal
 */
export function runBackend(): { url?: string } {
  return runRegistry("backend", () => ({}));
}

/** PROJECT/STACK@BACKEND of the current run (sdk/identity.ts), worked out once per run. */
function currentStack(): string {
  return runRegistry("stackIdentity", () =>
    stackIdentity(pulumi.getProject(), pulumi.getStack(), organization(), runBackend().url ?? backendUrl(processSources())),
  );
}

/** The run's organization; "organization" (what file backends use) where the engine gives none (mocks). */
function organization(): string {
  try {
    return pulumi.getOrganization();
  } catch {
    return "organization";
  }
}

/** Options every nslab resource accepts besides its own arguments. */
export interface AdoptArgs {
  /**
   * Take over an existing kernel object with the same identity that matches these
   * arguments, instead of failing with "already exists". This is nslab's answer to
   * dynamic providers not supporting `pulumi import`. The object is then the stack's:
   * `pulumi destroy` deletes it (an IpForwarding puts back the value it found). Changing
   * it later changes nothing by itself, but an interface without a `mac` of the
   * program's keeps its own MAC only while adopt is true (with adopt false it gets
   * nslab's stable one). Default false.
   */
  adopt?: pulumi.Input<boolean>;
}

/**
 * Base of every nslab resource: a Pulumi dynamic resource, type
 * `pulumi-nodejs:dynamic/nslab:<Kind>`, served by the dynamic-provider process. It is
 * what `pulumi.dynamic.Resource` registers (same type, same `__provider` property),
 * with the provider text written by {@link providerModule} instead of serialized.
 */
export abstract class NslabResource extends pulumi.CustomResource {
  /**
   * Which create made its object and which write last changed it (the provider's
   * `__made`): a {@link Reachability} with this resource in its `dependsOn` probes again
   * when it changes. @internal
   */
  declare readonly __made: pulumi.Output<string | undefined>;
  /** The resources its `dependsOn` lists (writesOf follows them). @internal */
  readonly nslabDependsOn: unknown[];

  protected constructor(kind: string, name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    const owner = `${currentStack()}/${kind}/${name}`;
    // While the resource is constructed, @pulumi/pulumi wraps four promises per
    // property in `debuggablePromise`, and each takes a stack trace (`new Error().stack`,
    // mapped through source maps under ts-node): about three quarters of the cost of
    // declaring a resource. Those traces are printed only when PULUMI_DEBUG_PROMISE_LEAKS
    // is set, so without it they are taken empty. The resource's own source position
    // is unaffected: Pulumi lifts the limit itself to take it.
    const limit = Error.stackTraceLimit;
    if (!process.env.PULUMI_DEBUG_PROMISE_LEAKS) Error.stackTraceLimit = 0;
    // The call sites Pulumi records in the state: the user's, not nslab's (sdk/callsites.ts).
    const unshape = shapeCallSites();
    try {
      super(`pulumi-nodejs:dynamic/nslab:${kind}`, name, { ...props, __made: undefined, __owner: owner, __provider: providerModule(kind) }, opts);
      this.nslabDependsOn = listed(opts?.dependsOn);
      joinParent(this, opts?.parent);
    } catch (err) {
      Error.stackTraceLimit = limit;
      // An error thrown meanwhile was taken without frames: give it this one's.
      if (err instanceof Error) Error.captureStackTrace(err, NslabResource);
      throw err;
    } finally {
      Error.stackTraceLimit = limit;
      unshape();
    }
  }
}

/**
 * Base of the resources that are interfaces (VethPair, Bridge, TapDevice, Vxlan): each
 * records a `generation`, which the resources that depend on it go by.
 */
export abstract class NslabLink extends NslabResource {
  /**
   * Changes when the interface is made anew or comes back up (its ifindex, and a count;
   * a VethPair's holds both ends'): a Route, LinkImpairment or Reachability with this
   * resource in its `dependsOn` is then written again, as the kernel removed the routes
   * and qdiscs on the old interface.
   */
  declare readonly generation: pulumi.Output<string | undefined>;

  /** Where it is, as the program gave it: its inputs [host, namespace, name], or a pair's [host, a, b] (see linkPlace). */
  private readonly placeInputs: unknown[];

  protected constructor(kind: string, name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    super(kind, name, { generation: undefined, ...props }, opts);
    this.placeInputs = props.a !== undefined ? [props.host, props.a, props.b] : [props.host, props.namespace, props.name];
  }

  /**
   * Its generation, for the resources that depend on it; `keyed`: as KEY=GENERATION, KEY
   * a short digest of where it is (see linkKey), so that a dependent tells this
   * interface made anew from another one added while one went. @internal
   */
  linkGenerations(keyed = false): pulumi.Output<string | undefined>[] {
    if (!keyed) return [this.generation];
    return [pulumi.all([this.linkPlace(), this.generation]).apply(([place, generation]) => (generation === undefined ? undefined : `${linkKey(place)}=${generation}`))];
  }

  /**
   * Where the interface is: its machine, namespace and name (a VethPair's: both ends').
   * Not its URN: one renamed with aliases and made anew in the same run (a TapDevice a program
   * holds) is the same interface made anew; a BridgedNetwork host renamed is another
   * (its namespace and port are named after it).
   */
  private linkPlace(): pulumi.Output<unknown[]> {
    // From the inputs, not the outputs: an output the state does not hold (no host, a
    // default name) is unknown at preview, which would plan the Process's replacement in
    // every preview. A name left to its default is none: two such in one namespace share
    // a key, which the provider's comparison allows for.
    return pulumi.output(this.placeInputs).apply(([host, ...rest]) => {
      const machine = host && typeof host === "object" ? machineKey(host as HostArgs) : "";
      const ends = rest.length === 2 && rest.every((end) => end && typeof end === "object") ? (rest as { namespace?: string; name?: string }[]).flatMap((end) => [end.namespace ?? "", end.name ?? ""]) : rest.map((v) => v ?? "");
      return [machine, ...ends];
    });
  }
}

/** The key of an interface among keyed generations: 8 hex digits of the SHA-256 of where it is (NslabLink.linkPlace). @internal */
export function linkKey(place: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(place)).digest("hex").slice(0, 8);
}

/**
 * A resource that is an interface, or a component that holds some: the `generation`
 * outputs that its dependents go by (the provider's link.ts generationOf), keyed or not.
 */
interface HasLinks {
  linkGenerations(keyed?: boolean): pulumi.Output<string | undefined>[];
}
const hasLinks = (r: unknown): r is HasLinks => !!r && typeof (r as HasLinks).linkGenerations === "function";

/**
 * `__links` of a resource that is written again when an interface it depends on is made
 * anew or comes back up (a Route, a LinkImpairment, a Process, a Vxlan; a Reachability
 * takes more: writesOf): the generations of
 * the VethPairs, Bridges, TapDevices and Vxlans in its `dependsOn`, and of those of the
 * components there (a BridgedNetwork's bridge and host links, a HostLink's ends, a
 * Router's links). A `dependsOn` given as an Output or Promise is not looked into.
 * `keyed` (a Process's): each as KEY=GENERATION (NslabLink.linkGenerations).
 */
export function linksOf(dependsOn: pulumi.CustomResourceOptions["dependsOn"], keyed = false): pulumi.Output<string[]> | undefined {
  // An Output or a Promise (the whole list, or one in it) is passed over: its resource is
  // not known while the program declares resources.
  const generations = listed(dependsOn).flatMap((d) => (hasLinks(d) ? d.linkGenerations(keyed) : []));
  if (generations.length === 0) return undefined;
  return pulumi.all(generations).apply((all) => all.filter((g): g is string => typeof g === "string"));
}

/** An nslab component as writesOf looks into it (by shape: another copy of nslab's components count too). */
interface HasMembers {
  nslabMembers: unknown[];
}
const hasMembers = (r: unknown): r is HasMembers => !!r && Array.isArray((r as HasMembers).nslabMembers);

/** The resources a `dependsOn` lists; one given as an Output or Promise (the list, or one in it) is not known while the program declares resources. */
function listed(dependsOn: pulumi.CustomResourceOptions["dependsOn"]): unknown[] {
  if (dependsOn === undefined || dependsOn === null || pulumi.Output.isInstance(dependsOn) || dependsOn instanceof Promise) return [];
  return (Array.isArray(dependsOn) ? dependsOn : [dependsOn]).filter((d) => !pulumi.Output.isInstance(d) && !(d instanceof Promise));
}

/** Lists a resource or component among its parent's members, when that is an nslab component. */
function joinParent(self: unknown, parent: unknown): void {
  if (hasMembers(parent)) parent.nslabMembers.push(self);
}

/**
 * `__links` of a {@link Reachability}: one digest of the `__made` token of every nslab
 * resource it depends on, which changes when that resource is updated or made anew (a
 * listener's Process moved to another port, a LinkImpairment set to drop everything, a
 * link set down), and of the generations of the interfaces among them (as
 * {@link linksOf}): the probe runs again after any of them is written. It depends on
 * what its `dependsOn` lists, the members of the components there (nested ones
 * included), and, in turn, what their own `dependsOn` lists (a Process's link). One
 * digest, not the list: a matrix of n hosts on a network holds n x (n - 1) probes that
 * each depend on all of its resources. Members a component gets after the probe is
 * declared, a `dependsOn` given as an Output or Promise, and what a resource uses only
 * through an input (a namespace's name) are not followed.
 */
export function writesOf(dependsOn: pulumi.CustomResourceOptions["dependsOn"]): pulumi.Output<string[]> | undefined {
  // One walk per dependsOn value of this run: a reachabilityMatrix gives its every probe the same.
  if (dependsOn === null || typeof dependsOn !== "object") return undefined;
  const memo = runRegistry("writesOf", () => new WeakMap<object, pulumi.Output<string[]> | undefined>());
  if (!memo.has(dependsOn)) memo.set(dependsOn, walkWrites(dependsOn));
  return memo.get(dependsOn);
}

function walkWrites(dependsOn: pulumi.CustomResourceOptions["dependsOn"]): pulumi.Output<string[]> | undefined {
  const seen = new Set<unknown>();
  const tokens = (d: unknown): pulumi.Output<string | undefined>[] => {
    if (!d || typeof d !== "object" || seen.has(d)) return [];
    seen.add(d);
    const made = (d as { __made?: unknown }).__made;
    const after = (d as { nslabDependsOn?: unknown }).nslabDependsOn;
    return [
      ...(pulumi.Output.isInstance(made) ? [made as pulumi.Output<string | undefined>] : []),
      ...(hasLinks(d) && !hasMembers(d) ? d.linkGenerations() : []),
      ...(hasMembers(d) ? d.nslabMembers.flatMap(tokens) : []),
      ...(Array.isArray(after) ? after.flatMap(tokens) : []),
    ];
  };
  const all = listed(dependsOn).flatMap(tokens);
  if (all.length === 0) return undefined;
  return pulumi.all(all).apply(writesDigest);
}

/** The digest writesOf keeps: of the tokens and generations given, in any order; none for none. @internal */
export function writesDigest(values: (string | undefined)[]): string[] {
  const known = values.filter((v): v is string => typeof v === "string");
  return known.length ? [createHash("sha256").update([...known].sort().join("\n")).digest("base64url").slice(0, 16)] : [];
}

/**
 * Base of nslab's components (BridgedNetwork, Router, NatGateway, HostLink): a
 * `pulumi.ComponentResource` whose recorded call sites are the user's
 * (sdk/callsites.ts), as for nslab's resources.
 */
export class NslabComponent extends pulumi.ComponentResource {
  /** The nslab resources and components made with this one as their parent (writesOf). @internal */
  readonly nslabMembers: (NslabResource | NslabComponent)[] = [];
  /** The resources its `dependsOn` lists (writesOf follows them). @internal */
  readonly nslabDependsOn: unknown[];

  constructor(type: string, name: string, args: pulumi.Inputs, opts?: pulumi.ComponentResourceOptions) {
    const unshape = shapeCallSites();
    try {
      super(type, name, args, opts);
      this.nslabDependsOn = listed(opts?.dependsOn);
      joinParent(this, opts?.parent);
    } finally {
      unshape();
    }
  }
}
