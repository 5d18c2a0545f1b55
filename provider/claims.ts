/**
 * The kernel names the resources of one program claim: two resources that would make
 * the same namespace, or the same interface in one namespace, on one machine, or the
 * same route, or impair one direction of one interface, fail at check (so `pulumi preview` says so, naming
 * both) instead of the second failing at `up` with "already exists" (or a verification
 * error, when the two were made at once) after the first was made.
 *
 * The claims live in the provider process, which the engine starts for one operation
 * (a preview, an update) of one stack: every resource of the program is checked in it.
 * A resource checked again (the update after the preview) gives up its earlier claims
 * first, and a deleted one gives up its own. Names not known yet (a preview's unknowns)
 * claim nothing.
 */
import { HostArgs, machineKey, onHost } from "./host";
import { ImpairmentDirection, needsShaping } from "./impairment";
import { resourceNameOf } from "./resource";
import { Failure, isUnknown } from "./validate";

/** A name: what it is in words, its key, and the property that gives it. */
interface Claim {
  key: string;
  what: string;
  property: string;
  /** What the other does with it and the fix, when not "made" (default: give each its own name). */
  clash?: (other: string) => string;
  /** A way to make it once the default fix does not spell out, added to it in parentheses. */
  also?: string;
}

/** key -> the owner (PROJECT/STACK@BACKEND/KIND/NAME) that claimed it. */
const claimed = new Map<string, string>();
/** owner -> its keys. */
const byOwner = new Map<string, string[]>();

/** Known values (a host whose ssh is not known yet is not). */
const known = (...values: unknown[]) => values.every((v) => !isUnknown(v) && !(v && typeof v === "object" && isUnknown((v as { ssh?: unknown }).ssh)));

/** " on HOST" for a name on another machine (a resource's checked `host`), "" on this one. */
const onMachine = (host: unknown) => onHost(host && typeof host === "object" ? (host as HostArgs) : undefined);

function linkClaim(host: unknown, namespace: unknown, name: unknown, property: string): Claim[] {
  if (typeof name !== "string" || !known(host, namespace, name)) return [];
  const ns = typeof namespace === "string" ? namespace : "";
  const where = ns ? `namespace "${ns}"` : "the program's namespace";
  return [{ key: `link\0${machineKey(host as HostArgs | undefined)}\0${ns}\0${name}`, what: `interface "${name}" in ${where}${onMachine(host)}`, property }];
}

/** The names a checked resource makes. */
function claimsOf(kind: string, inputs: Record<string, unknown>): Claim[] {
  const host = inputs.host;
  switch (kind) {
    case "Namespace":
      if (typeof inputs.name !== "string" || !known(host, inputs.name)) return [];
      return [
        {
          key: `netns\0${machineKey(host as HostArgs | undefined)}\0${inputs.name}`,
          what: `namespace "${inputs.name}"${onMachine(host)}`,
          property: "name",
          // A BridgedNetwork makes a namespace per host unless told to join one.
          also: `a BridgedNetwork host joins a namespace made elsewhere as { name: "${inputs.name}", namespace: ns.name }`,
        },
      ];
    case "VethPair": {
      const [a, b] = [inputs.a, inputs.b] as (Record<string, unknown> | undefined)[];
      if (!known(a, b)) return [];
      return [...linkClaim(host, a?.namespace, a?.name, "a.name"), ...linkClaim(host, b?.namespace, b?.name, "b.name")];
    }
    case "Bridge":
    case "TapDevice":
    case "Vxlan":
      return linkClaim(host, inputs.namespace, inputs.name, "name");
    case "LinkImpairment": {
      // One LinkImpairment per interface and direction: a second would take over the
      // first's root qdisc (egress) or see frames before its redirect (ingress).
      if (typeof inputs.device !== "string" || !known(host, inputs.namespace, inputs.device)) return [];
      const ns = typeof inputs.namespace === "string" ? inputs.namespace : "";
      const where = `interface "${inputs.device}" in ${ns ? `namespace "${ns}"` : "the program's namespace"}`;
      // Egress loss alone is a netdev chain in front of the qdisc, which another's rate
      // does not disturb: egress is claimed by a rate or delay only.
      return (["egress", "ingress"] as const)
        .filter((d) => inputs[d] !== undefined && inputs[d] !== null && !isUnknown(inputs[d]) && (d === "ingress" || needsShaping(inputs[d] as ImpairmentDirection)))
        .map((d) => ({
          key: `impairment-${d}\0${machineKey(host as HostArgs | undefined)}\0${ns}\0${inputs.device}`,
          what: `the ${d} of ${where}${onMachine(host)}`,
          property: d,
          clash: (other: string) => `is also impaired by ${other} of this program; declare one LinkImpairment per interface and direction (one resource can hold both directions).`,
        }));
    }
    case "Route": {
      // The kernel keys a route by table, destination and metric (and family): a second
      // one failed at up ("already exists, made by ..."), or, made side by side, one of the
      // two won at random. Defaults as the kernel fills them in: main table, metric 0 for
      // IPv4 and 1024 for IPv6.
      const { namespace, destination, family, table, metric } = inputs;
      if (typeof destination !== "string" || !known(host, namespace, destination, family, table, metric)) return [];
      // "default" takes its family from the gateway or source: while one is unknown (a
      // preview), check's "ipv4" is a guess, and an IPv6 default would clash with the IPv4 one.
      if (destination === "default" && !known(inputs.gateway, inputs.source)) return [];
      const ns = typeof namespace === "string" ? namespace : "";
      // The kernel gives an IPv6 route with metric 0 its default, 1024.
      const kernelMetric = family === "ipv6" ? (metric === undefined || metric === 0 ? 1024 : metric) : (metric ?? 0);
      const key = [family, table ?? 254, destination, kernelMetric].join("\0");
      const where = ns ? `namespace "${ns}"` : "the program's namespace";
      const extras = [table !== undefined ? `table ${table}` : "", metric !== undefined ? `metric ${metric}` : ""].filter(Boolean).join(", ");
      return [
        {
          key: `route\0${machineKey(host as HostArgs | undefined)}\0${ns}\0${key}`,
          what: `the ${family} route to ${destination}${extras ? ` (${extras})` : ""} in ${where}${onMachine(host)}`,
          property: "destination",
          clash: (other: string) => `is also made by ${other} of this program; the kernel holds one route per destination, table and metric: drop one, or give them different metrics.`,
        },
      ];
    }
    default:
      return [];
  }
}

/** Where a resource names namespaces it uses (not makes): the property and its value. */
function namespacesUsed(kind: string, inputs: Record<string, unknown>): [string, unknown][] {
  if (kind === "Namespace") return [];
  if (kind === "VethPair") {
    const [a, b] = [inputs.a, inputs.b] as (Record<string, unknown> | undefined)[];
    return [
      ["a.namespace", a?.namespace],
      ["b.namespace", b?.namespace],
    ];
  }
  return [[kind === "Reachability" ? "from" : "namespace", kind === "Reachability" ? inputs.from : inputs.namespace]];
}

/** A machine as messages name it: "root@192.0.2.2" (with a port other than 22), or this one. */
const machineLabel = (machine: string) => (machine === "" ? "the machine that runs pulumi" : machine.replace(/:22$/, ""));

/**
 * Failures for namespaces the resource uses that the program makes only on another
 * machine (as its host is spelled): the resource would fail at `up`, saying the namespace
 * does not exist there, after the namespace and other resources were made.
 */
export function namespacesElsewhere(kind: string, inputs: Record<string, unknown>): Failure[] {
  const host = inputs.host;
  if (!known(host)) return [];
  const here = machineKey(host as HostArgs | undefined);
  const failures: Failure[] = [];
  for (const [property, name] of namespacesUsed(kind, inputs)) {
    if (typeof name !== "string" || isUnknown(name) || claimed.has(`netns\0${here}\0${name}`)) continue;
    const other = [...claimed.entries()].find(([key]) => key.startsWith("netns\0") && key.endsWith(`\0${name}`) && key.split("\0").length === 3);
    if (!other) continue;
    const machine = other[0].split("\0")[1];
    const them = `${other[1].split("/")[2]} "${resourceNameOf(other[1]) ?? other[1]}"`;
    failures.push({
      property,
      reason: `${property} "${name}" is made by ${them} of this program on ${machineLabel(machine)}, but this ${kind} is on ${machineLabel(here)}: give both the same host, spelled alike (nslab tells machines apart by how host names them).`,
    });
  }
  return failures;
}

/** The owners checked in this provider process (the resources of the program being run). */
const checkedOwners = new Set<string>();

/**
 * Gives up `owner`'s claims (checked again, or deleted: a name a deleted resource had is
 * free). `deleted`: for a delete, which keeps them when the owner was checked in this
 * run: a resource replaced deleting first was checked (and claimed) as its replacement.
 */
export function releaseNames(owner: string, deleted = false): void {
  if (deleted && checkedOwners.has(owner)) return;
  for (const key of byOwner.get(owner) ?? []) if (claimed.get(key) === owner) claimed.delete(key);
  byOwner.delete(owner);
}

/** `owner`'s claims for `inputs`; failures for the names another resource of the program claimed first. */
export function claimNames(kind: string, owner: string, inputs: Record<string, unknown>): Failure[] {
  releaseNames(owner);
  checkedOwners.add(owner);
  const failures: Failure[] = [];
  const mine: string[] = [];
  for (const claim of claimsOf(kind, inputs)) {
    const other = claimed.get(claim.key);
    if (other !== undefined && other !== owner) {
      const [, , otherKind] = other.split("/");
      const them = `${otherKind} "${resourceNameOf(other) ?? other}"`;
      failures.push({
        property: claim.property,
        reason: `${claim.what} ${claim.clash ? claim.clash(them) : `is also made by ${them} of this program; give each its own name, or make it once and pass its name to the resources that use it${claim.also ? ` (${claim.also})` : ""}.`}`,
      });
      continue;
    }
    claimed.set(claim.key, owner);
    mine.push(claim.key);
  }
  byOwner.set(owner, mine);
  return failures;
}
