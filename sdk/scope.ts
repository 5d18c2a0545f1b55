import * as pulumi from "@pulumi/pulumi";

/**
 * Lab-wide checks (overlapping networks, a namespace made twice, two IpForwarding for
 * one switch, a port in another namespace than its bridge) look at everything one
 * program declares. They must forget it when the run ends: the Automation API runs
 * `preview()`, `up()` and other stacks' programs in one process, and each run is a new
 * program. So every registry lives in a scope keyed by the run's root Stack resource,
 * which Pulumi makes anew for each run; a WeakMap lets it go with the run.
 */
const scopes = new WeakMap<object, Map<string, unknown>>();

/** The scope used where no program run is under way (code declaring resources outside one). */
let outsideRun: { key: object } | undefined;

/**
 * The registry `name` of the current program run, made by `make` on first use. Call it
 * when a resource is constructed (synchronously), not later inside an `apply`.
 * @internal
 */
export function runRegistry<T>(name: string, make: () => T): T {
  const key = pulumi.runtime.getStackResource() ?? (outsideRun ??= { key: {} }).key;
  let scope = scopes.get(key);
  if (!scope) scopes.set(key, (scope = new Map()));
  if (!scope.has(name)) scope.set(name, make());
  return scope.get(name) as T;
}
