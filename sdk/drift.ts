/**
 * Drift reports: what `pulumi preview --refresh --json` (the live lab against the
 * program) or the engine events of `pulumi refresh --preview-only` (the live lab against
 * the stack's state, without running the program) say, per resource and per property,
 * in words a person reads in a CI log.
 */

/** One step of `pulumi preview --json` (the fields the report reads). */
export interface PreviewStep {
  /** The step's operation: "same", "refresh", "update", "create", "replace", ... */
  op: string;
  /** The resource's URN. */
  urn: string;
  /** State before the step (after a refresh: the live state); `inputs` are compared. */
  oldState?: StepState;
  /** State the program asks for; `inputs` are compared. */
  newState?: StepState;
}

/** The part of a step's state the report reads. */
export interface StepState {
  /** The resource's inputs. */
  inputs?: Record<string, unknown>;
  /** The resource's outputs (read for nslab's `__made` token). */
  outputs?: Record<string, unknown>;
  /** False for a component (the stack too): it has no live object of its own. */
  custom?: boolean;
}

/** One property that differs: the live value (after refresh) and the program's. */
export interface PropertyDrift {
  /** Dotted path of the property, e.g. "a.addresses". */
  property: string;
  /** Its value in the live system (after refresh). */
  live: unknown;
  /** Its value in the program (compared with the stack's state: the recorded value). */
  program: unknown;
}

/** One resource whose live state differs from the program. */
export interface ResourceDrift {
  /** "update" (in place), "replace", "create" (missing from the live system) or "delete" (not in the program). */
  change: "update" | "replace" | "create" | "delete";
  /** The resource's type, e.g. "VethPair". */
  type: string;
  /** The resource's name. */
  name: string;
  /** The resource's Pulumi URN. */
  urn: string;
  /** The properties that differ (for updates and replacements). */
  properties: PropertyDrift[];
  /**
   * True when an interface in its `dependsOn` was made anew or is back up (its generation
   * changed): the resource is written again for it.
   */
  interfaceRenewed?: boolean;
  /**
   * True when what it depends on is itself to be updated or replaced by the same `up`, so
   * whether that renews an interface (and writes this again, or restarts a Process) is
   * known only then: the preview shows the dependency's outputs as unknown.
   */
  interfaceMayRenew?: boolean;
  /**
   * True when the state has no write token for it (`__made`: recorded by an nslab from
   * before tokens): the update records one and writes nothing else.
   */
  tokenMissing?: boolean;
}

/** Engine bookkeeping and nslab's hidden inputs: never drift a person cares about. */
const HIDDEN = (key: string) => key.startsWith("__") || key === "adopt";
/** Properties the kernel picks when the program leaves them unset. */
const KERNEL_DEFAULTS = new Set(["mac", "mtu"]);

function flatten(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (!prefix && HIDDEN(k)) continue;
      flatten(v, prefix ? `${prefix}.${k}` : k, out);
    }
  } else if (prefix) {
    out.set(prefix, value);
  }
}

/**
 * The properties whose values differ between two input bags. A property the program
 * leaves unset (a MAC, an MTU) takes whatever the kernel chose and is not drift.
 */
export function propertyDrift(live: Record<string, unknown> = {}, program: Record<string, unknown> = {}): PropertyDrift[] {
  const a = new Map<string, unknown>();
  const b = new Map<string, unknown>();
  flatten(live, "", a);
  flatten(program, "", b);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const same = (x: unknown, y: unknown) => JSON.stringify(x ?? null) === JSON.stringify(y ?? null);
  const kernelChosen = (k: string) => b.get(k) === undefined && KERNEL_DEFAULTS.has(k.split(".").pop()!);
  return keys.filter((k) => !kernelChosen(k) && !same(a.get(k), b.get(k))).map((k) => ({ property: k, live: a.get(k), program: b.get(k) }));
}

const CHANGE: Record<string, ResourceDrift["change"]> = {
  update: "update",
  replace: "replace",
  "create-replacement": "replace",
  create: "create",
  delete: "delete",
};

/** A change the engine reported for one resource: its live inputs and the ones compared with them. */
interface Seen {
  change?: ResourceDrift["change"];
  urn: string;
  live?: Record<string, unknown>;
  other?: Record<string, unknown>;
  /** False for a component: nothing live to differ, so not reported. */
  custom?: boolean;
  /** The live outputs, when known. */
  outputs?: Record<string, unknown>;
}

/**
 * The URN of one of nslab's resources. A resource under a component has its parent's type
 * before its own (`...::nslab:index:BridgedNetwork$pulumi-nodejs:dynamic/nslab:Namespace::lan-h1`).
 */
const NSLAB_URN = /(?:::|\$)pulumi-nodejs:dynamic\/nslab:[^:$]+::/;

/** How `pulumi preview --json` writes a value known only once the update runs. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** One entry per changed resource (its first report), typed and named from its URN. */
function report(seen: Seen[]): ResourceDrift[] {
  const done = new Set<string>();
  const out: ResourceDrift[] = [];
  for (const { change, urn, live, other, custom, outputs } of seen) {
    // The stack itself, its providers and components (the user's, nslab's BridgedNetwork)
    // are no part of the live lab (a stack never deployed listed "Stack ... is missing",
    // and every component, among its resources).
    if (!change || custom === false || done.has(urn) || /::pulumi:(?:pulumi:Stack|providers:[^:]*)::/.test(urn)) continue;
    done.add(urn);
    const parts = urn.split("::");
    const changed = change === "update" || change === "replace";
    const type = (parts[2] ?? "").split(":").pop() ?? "";
    // A Reachability probes again after any write of what it depends on: a dependency
    // to be updated or replaced (its outputs unknown in the preview) is certain to do that.
    const renewal = (links: unknown) => (type !== "Reachability" && JSON.stringify(links).includes(UNKNOWN) ? { interfaceMayRenew: true } : { interfaceRenewed: true });
    out.push({
      change,
      type,
      name: parts[3] ?? urn,
      urn,
      properties: changed ? propertyDrift(live, other) : [],
      ...(changed && other?.__links !== undefined && JSON.stringify(live?.__links ?? null) !== JSON.stringify(other.__links)
        ? renewal(other.__links)
        : {}),
      ...(change === "update" && outputs !== undefined && outputs.__made === undefined && NSLAB_URN.test(urn) ? { tokenMissing: true } : {}),
    });
  }
  return out;
}

/** Reads the steps of `pulumi preview --refresh --json` into a per-resource report. */
export function driftFromPreview(preview: { steps?: PreviewStep[] }): ResourceDrift[] {
  return report((preview.steps ?? []).map((step) => ({ change: CHANGE[step.op], urn: step.urn, live: step.oldState?.inputs, other: step.newState?.inputs, custom: step.newState?.custom ?? step.oldState?.custom, outputs: step.oldState?.outputs })));
}

/**
 * One engine event of `pulumi refresh --preview-only --event-log FILE` (one JSON object
 * per line; the fields the report reads). A `resOutputsEvent` says how a resource's
 * refresh ended: op "same", "update" (the live object differs: `old` is the state,
 * `new` what was read) or "delete" (the object is gone).
 */
export interface EngineEvent {
  /** A step the engine is about to take for a resource (in a preview: the plan). */
  resourcePreEvent?: ResourceEvent;
  /** How a resource's step ended (in a refresh: what was read). */
  resOutputsEvent?: ResourceEvent;
  /** A message of the engine, the program or a provider. */
  diagnosticEvent?: DiagnosticEvent;
}

/** An engine event about one resource. */
export interface ResourceEvent {
  /** The resource and its step. */
  metadata: StepEventMetadata;
}

/** One resource's step, as the engine reports it (the fields the reports read). */
export interface StepEventMetadata {
  /** The operation: "same", "update", "replace", "create", "delete", "refresh", ... */
  op: string;
  /** The resource's URN. */
  urn: string;
  /** Its state before the step. */
  old?: StepState;
  /** Its state after the step. */
  new?: StepState;
}

/** A message the engine reports. */
export interface DiagnosticEvent {
  /** "error", "warning", "info", "info#err" (what a program wrote to stderr) or "debug". */
  severity: string;
  /** The text. */
  message: string;
  /** The resource it is about, if any. */
  urn?: string;
}

/**
 * Reads the engine events of a preview with refresh into the same report as
 * driftFromPreview: with the Automation API, the events `stack.preview({ refresh: true,
 * onEvent })` passes (`onEvent: (e) => events.push(e)`); with the CLI, the lines of
 * `pulumi preview --refresh --event-log FILE`. Its `resourcePreEvent`s are the steps.
 */
export function driftFromPreviewEvents(events: EngineEvent[]): ResourceDrift[] {
  return report(
    events.flatMap(({ resourcePreEvent: e }) =>
      e ? [{ change: CHANGE[e.metadata.op], urn: e.metadata.urn, live: e.metadata.old?.inputs, other: e.metadata.new?.inputs, custom: e.metadata.new?.custom ?? e.metadata.old?.custom, outputs: e.metadata.old?.outputs }] : [],
    ),
  );
}

/** What a refresh's op means for the live lab against the state: gone means missing. */
const REFRESH_CHANGE: Record<string, ResourceDrift["change"]> = { update: "update", delete: "create" };

/**
 * How many of nslab's resources (NSLAB_URN) a refresh's events saw (none: the state
 * records no lab).
 */
export function refreshedResources(events: EngineEvent[]): number {
  return new Set(events.flatMap(({ resOutputsEvent: e }) => (e && NSLAB_URN.test(e.metadata.urn) ? [e.metadata.urn] : []))).size;
}

/**
 * Reads the events of `pulumi refresh --preview-only` into a per-resource report of how
 * the live lab differs from the stack's state (what the last `pulumi up` made). With the
 * Automation API: the events `stack.previewRefresh({ onEvent })` passes.
 */
export function driftFromRefreshEvents(events: EngineEvent[]): ResourceDrift[] {
  return report(
    events.flatMap(({ resOutputsEvent: e }) => (e ? [{ change: REFRESH_CHANGE[e.metadata.op], urn: e.metadata.urn, live: e.metadata.new?.inputs, other: e.metadata.old?.inputs, custom: e.metadata.new?.custom ?? e.metadata.old?.custom }] : [])),
  );
}

const show = (v: unknown) => (v === undefined ? "(unset)" : JSON.stringify(v));

/**
 * The report as text: one block per resource, one line per property. `against` says what
 * the live values were compared with: the program (`preview --refresh`), or the stack's
 * state, i.e. what the last `pulumi up` recorded (`refresh --preview-only`).
 */
export function formatDrift(drift: ResourceDrift[], against: "program" | "state" = "program"): string {
  const other = against === "program" ? "the program" : "the stack's state (the last pulumi up)";
  if (drift.length === 0) return `no drift: the live lab matches ${other}`;
  const lines = [`drift: ${drift.length} resource${drift.length === 1 ? " differs" : "s differ"} from ${other}`];
  const label = against === "program" ? "program" : "recorded";
  for (const d of drift) {
    const what =
      against === "program"
        ? {
            update: "differs (pulumi up would update it in place)",
            replace: "differs (pulumi up would replace it)",
            create: "is missing from the live system (pulumi up would create it)",
            delete: "exists but is no longer in the program (pulumi up would delete it)",
          }[d.change]
        : { update: "differs", replace: "differs", create: "is missing from the live system", delete: "exists but is not in the state" }[d.change];
    // Nothing of its own differs, and whether it is written again waits for a dependency's update.
    const only = d.interfaceMayRenew && d.properties.length === 0;
    const may = d.type === "Process" ? "may be restarted by pulumi up" : "may be written again by pulumi up";
    lines.push(`  ${d.type} "${d.name}" ${only && against === "program" ? may : what}`);
    for (const p of d.properties) lines.push(`      ${p.property}: live ${show(p.live)}, ${label} ${show(p.program)}`);
    if (d.interfaceRenewed && d.type === "Reachability") {
      lines.push("      a resource in its dependsOn was written or made anew, or an interface there is back up: pulumi up probes again");
    } else if (d.interfaceRenewed) {
      lines.push(
        "      an interface in its dependsOn was made anew or is back up: pulumi up writes it again (a Route, a LinkImpairment); a Process restarts only if the interface was made anew, which a preview cannot tell from back up",
      );
    }
    // Its own properties differing decide its change anyway: no "may" under "would replace it".
    if (d.interfaceMayRenew && d.properties.length === 0) {
      lines.push(
        "      something in its dependsOn is itself to be updated or replaced by this up (listed here): only if that makes an interface anew or brings it back up is this written again (a Route, a LinkImpairment) or restarted (a Process), which a preview cannot tell",
      );
    }
    // Only when nothing else differs: otherwise the update writes that too.
    if (d.tokenMissing && d.properties.length === 0 && !d.interfaceRenewed && !d.interfaceMayRenew) lines.push("      recorded by an nslab from before write tokens: pulumi up records one and writes nothing else (once)");
  }
  return lines.join("\n");
}
