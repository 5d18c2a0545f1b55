/**
 * Route: one route in a namespace's routing table. Its identity is (destination,
 * table, metric): changing any of these makes a new route, while gateway, device and
 * source change in place (`ip route replace`).
 * Ownership: nslab's routes carry `proto 151` (NSLAB_ROUTE_PROTO).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { NslabError } from "./errors";
import * as kernel from "./kernel";
import type { RouteJson } from "./kernel";
import { sameHost } from "./host";
import { ownerLabel, recordedByOther, sameStack, stackOf, takenOverBy } from "./owned";
import { CommonInputs, compact, diffFields, FieldRule, LinkDependentInputs, LINKS_RULE, linksInput, ResourceKind } from "./resource";
import { canonicalAddress, canonicalCidr, Checker, familyOf, isUnknown } from "./validate";
import * as ipaddr from "ipaddr.js";

/** The routing protocol number nslab's routes carry (unassigned in rt_protos). */
export const NSLAB_ROUTE_PROTO = "151";
const MAIN_TABLE = 254;
/** IPv6 routes added without a metric get this one from the kernel. */
const IPV6_DEFAULT_METRIC = 1024;

export interface RouteInputs extends CommonInputs, LinkDependentInputs {
  namespace?: string;
  /** "default" or a canonical network. */
  destination: string;
  family: "ipv4" | "ipv6";
  gateway?: string;
  device?: string;
  metric?: number;
  table?: number;
  source?: string;
}
export type RouteOutputs = RouteInputs;

const RULES: FieldRule[] = [
  { name: "namespace", replace: true },
  { name: "destination", replace: true },
  { name: "family", replace: true },
  { name: "table", replace: true },
  { name: "metric", replace: true },
  { name: "gateway" },
  { name: "device" },
  { name: "source" },
  // An interface it goes through made anew or back up: the kernel removed the route.
  LINKS_RULE,
];

const subject = (r: RouteInputs) =>
  `route ${r.destination}${r.table ? ` table ${r.table}` : ""}${r.metric !== undefined ? ` metric ${r.metric}` : ""} in ${r.namespace ? `namespace "${r.namespace}"` : "the program's namespace"}${kernel.where()}`;

/** The selector part shared by add, replace, del and show. */
function selector(verb: string, r: RouteInputs): string[] {
  return [
    "route",
    verb,
    r.destination,
    ...(r.table !== undefined ? ["table", String(r.table)] : []),
    ...(r.metric !== undefined ? ["metric", String(r.metric)] : []),
  ];
}

/**
 * The family flag a command needs: "-6" for IPv6; none for IPv4, which is what ip
 * assumes for `default` and infers from IPv4 addresses (so IPv4 route commands share
 * the namespace's ip session with everything else).
 */
const familyFlag = (r: RouteInputs): "-6" | undefined => (r.family === "ipv6" ? "-6" : undefined);

/** Equivalent to: ip [-6] route VERB DEST [table T] [metric M] [via GW] [dev DEV] [src S] proto 151 */
function command(verb: "add" | "replace", r: RouteInputs): string[] {
  const args = selector(verb, r);
  if (r.gateway) args.push("via", r.gateway);
  if (r.device) args.push("dev", r.device);
  if (r.source) args.push("src", r.source);
  args.push("proto", NSLAB_ROUTE_PROTO);
  return args;
}

/** Writes the route and reads it back in one process; returns the routes shown. */
function writeAndShow(verb: "add" | "replace", r: RouteInputs): Promise<RouteJson[]> {
  return showRoutes(r, command(verb, r));
}

/** The routes to r's destination in its table, read fresh: after `write` in the same exchange, when given. */
async function showRoutes(r: RouteInputs, write?: string[]): Promise<RouteJson[]> {
  const table = String(r.table ?? MAIN_TABLE);
  const [shown] = await kernel.ipBatchRead<RouteJson[]>([...(write ? [write] : []), ["route", "show", r.destination, "table", table]], r.namespace, subject(r), familyFlag(r));
  // `show ... table T` leaves the table out of each route: put it back for matching, and
  // the family it was shown with.
  return (shown ?? []).map((route) => ({ ...route, table: route.table ?? table, family: r.family }));
}

/** What the kernel says when a route's way is not up (with and without the nexthop's own words). */
const WAY_DOWN = /Nexthop has invalid gateway|Network is unreachable|Network is down|Device for nexthop is not up|Nexthop device is not up/;

/** Whether the route's way is down: its device, or (without one) an interface of its namespace other than lo. */
async function wayDown(r: RouteInputs): Promise<boolean> {
  const down = (await kernel.links(r.namespace)).filter((l) => l.ifname !== "lo" && !l.flags.includes("UP")).map((l) => l.ifname);
  return r.device ? down.includes(r.device) : down.length > 0;
}

/**
 * Where the gateway's subnet is in the route's namespace now: "up" (an interface that is
 * up holds it), the name of an interface that holds it but is down, or undefined (none
 * does), with the namespace's addresses of the gateway's family, as "ADDRESS/LEN on DEV".
 */
async function gatewaySubnet(r: RouteInputs): Promise<{ holder: "up" | { down: string } | undefined; addresses: string[] }> {
  const gw = ipaddr.parse(r.gateway!);
  const addresses: string[] = [];
  let holder: "up" | { down: string } | undefined;
  // The failed write dropped the namespace's snapshots: this reads the kernel afresh.
  for (const link of await kernel.links(r.namespace)) {
    for (const a of link.addr_info ?? []) {
      if (a.scope === "host" || a.scope === "link") continue;
      const local = ipaddr.parse(a.local);
      if (local.kind() !== gw.kind()) continue;
      addresses.push(`${a.local}/${a.prefixlen} on ${link.ifname}`);
      if (!gw.match(local, a.prefixlen)) continue;
      if (link.flags.includes("UP")) holder = "up";
      else if (holder === undefined) holder = { down: link.ifname };
    }
  }
  return { holder, addresses };
}

/** Explains the kernel's terse answers for routes in terms of what the user wrote. */
async function explain(err: unknown, r: RouteInputs): Promise<never> {
  if (err instanceof NslabError && err.kind !== "AlreadyExists" && err.kind !== "Permission") {
    let hint = "";
    if (/Nexthop has invalid gateway|Network is unreachable|No route to host/.test(err.message)) {
      const dependOn = "make the route depend on it (pass the VethPair's output or use dependsOn)";
      // What the namespace holds now tells a gateway off every subnet from an interface
      // not made (or not up) yet; a link-local gateway (on no subnet of addresses: the
      // device says where) keeps the general advice.
      const where = r.gateway && ipaddr.isValid(r.gateway) && ipaddr.parse(r.gateway).range() !== "linkLocal" ? await gatewaySubnet(r).catch(() => undefined) : undefined;
      const ns = r.namespace ? `namespace "${r.namespace}"` : "the program's namespace";
      if (where?.holder && where.holder !== "up") {
        hint = ` Its subnet is on "${where.holder.down}", which is down: set it up (up: true), or, if this program sets it up, ${dependOn}.`;
      } else if (where && where.holder === undefined) {
        const have = where.addresses.length ? `its addresses now: ${where.addresses.join(", ")}` : `it has no ${r.gateway!.includes(":") ? "IPv6" : "IPv4"} address now`;
        hint = ` No interface in ${ns} has a subnet that holds ${r.gateway} (${have}): give a gateway on one of them, or, if the interface that will hold it is made by this program, ${dependOn}.`;
      } else {
        hint = ` The gateway ${r.gateway} must be on a subnet of an interface that is up: ${dependOn}.`;
      }
    } else if (/Cannot find device|No such device/.test(err.message)) {
      hint = ` Device "${r.device}" does not exist in that namespace yet: pass the interface's output name or use dependsOn.`;
    }
    throw new NslabError(err.kind, `${err.message}${hint}`, err.details);
  }
  throw err;
}

/** Normalises a kernel route to compare with inputs. */
function liveKey(route: RouteJson): { destination: string; family: "ipv4" | "ipv6"; table: number; metric: number } | undefined {
  if (route.type && route.type !== "unicast") return undefined;
  const dst = route.dst;
  // The dump says the family (kernel.routes); a route shown after writing it is of the
  // family it was written with (writeAndShow tags it too).
  const family = route.family ?? (dst.includes(":") || route.gateway?.includes(":") ? "ipv6" : "ipv4");
  let destination: string;
  if (dst === "default") destination = "default";
  else destination = canonicalCidr(dst.includes("/") ? dst : `${dst}/${family === "ipv6" ? 128 : 32}`) ?? dst;
  const table = tableNumber(route.table);
  return { destination, family, table, metric: route.metric ?? 0 };
}

/**
 * A table as `ip -json route` prints it: its number, or the name iproute2 gives it. The
 * kernel's own names are known (253 prints as "default"); another name is looked up in
 * the rt_tables files (/etc/iproute2/rt_tables, rt_tables.d/*.conf, /usr/share/iproute2/...)
 * of the machine that runs the provider (a remote host's own names are not read there).
 */
function tableNumber(table: string | undefined): number {
  if (table === undefined) return MAIN_TABLE;
  if (/^\d+$/.test(table)) return Number(table);
  const known: Record<string, number> = { main: MAIN_TABLE, default: 253, local: 255, unspec: 0 };
  return known[table] ?? namedTables().get(table) ?? NaN;
}

/** The table names of this machine's iproute2 files (name to number). */
function namedTables(): Map<string, number> {
  const names = new Map<string, number>();
  const files = ["/usr/share/iproute2/rt_tables", "/etc/iproute2/rt_tables"];
  for (const dir of ["/usr/share/iproute2/rt_tables.d", "/etc/iproute2/rt_tables.d"]) {
    try {
      for (const f of fs.readdirSync(dir)) if (f.endsWith(".conf")) files.push(path.join(dir, f));
    } catch {
      // none there
    }
  }
  for (const file of files) {
    let text = "";
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const m = /^\s*(\d+)\s+(\S+)/.exec(line);
      if (m) names.set(m[2], Number(m[1]));
    }
  }
  return names;
}

/** The table and metric a route of these inputs gets from the kernel when they are unset. */
const tableAndMetric = (r: Partial<RouteInputs>) => ({ table: r.table ?? MAIN_TABLE, metric: r.metric ?? (r.family === "ipv6" ? IPV6_DEFAULT_METRIC : 0) });

/** True when recorded inputs/outputs `o` name the route with r's identity (host, namespace, destination, family, table, metric). */
function sameRoute(o: Partial<RouteInputs> & { host?: unknown }, r: RouteInputs): boolean {
  const [mine, theirs] = [tableAndMetric(r), tableAndMetric(o)];
  return sameHost(o.host, kernel.currentHost()) && (o.namespace ?? "") === (r.namespace ?? "") && o.destination === r.destination && o.family === r.family && theirs.table === mine.table && theirs.metric === mine.metric;
}

/** The route of `routes` with r's identity (destination, family, table, metric). */
function matchRoute(r: RouteInputs, routes: RouteJson[]): RouteJson | undefined {
  const want = tableAndMetric(r);
  return routes.find((route) => {
    const k = liveKey(route);
    return k && k.destination === r.destination && k.family === r.family && k.table === want.table && k.metric === want.metric;
  });
}

/** r's route from the namespace's snapshot (one dump per namespace per run). */
async function findRoute(r: RouteInputs): Promise<RouteJson | undefined> {
  if (r.namespace !== undefined && !(await kernel.hostNetnsExists(r.namespace))) return undefined;
  return matchRoute(r, await kernel.routes(r.namespace));
}

function fromLive(r: RouteInputs, live: RouteJson): RouteInputs {
  return compact({
    ...r,
    gateway: live.gateway ? canonicalAddress(live.gateway) : undefined,
    device: r.device === undefined ? undefined : live.dev,
    source: live.prefsrc ? canonicalAddress(live.prefsrc) : undefined,
  });
}

/** Checks what the kernel shows against r. */
function verify(r: RouteInputs, shown: RouteJson[]): void {
  const live = matchRoute(r, shown);
  const seen = live && fromLive(r, live);
  for (const prop of ["gateway", "device", "source"] as const) {
    if (r[prop] !== undefined && seen?.[prop] !== r[prop]) {
      throw new NslabError("Verification", `${subject(r)}: ${prop}: desire '${r[prop]}', current '${seen?.[prop] ?? "(no route)"}'`);
    }
  }
  if (live?.protocol !== NSLAB_ROUTE_PROTO) {
    throw new NslabError("Verification", `${subject(r)}: owner mark (proto): desire '${NSLAB_ROUTE_PROTO}', current '${live?.protocol ?? "(no route)"}'`);
  }
}

export const routeKind: ResourceKind<RouteInputs, RouteOutputs> = {
  kind: "Route",
  properties: ["namespace", "destination", "family", "gateway", "device", "metric", "table", "source", "adopt", "__links"],

  check(_olds, news) {
    const c = new Checker();
    const rawDest = c.string(news.destination, "destination", true);
    let destination = "default";
    let family: "ipv4" | "ipv6" | undefined;
    if (rawDest !== undefined && rawDest !== "default") {
      const net = c.network(rawDest, "destination");
      if (isUnknown(net)) {
        destination = net!;
      } else if (net === "0.0.0.0/0" || net === "::/0") {
        family = familyOf(net);
      } else if (net) {
        destination = net;
        family = familyOf(net);
      }
    }
    const rawFamily = c.string(news.family, "family", false);
    if (rawFamily !== undefined && !isUnknown(rawFamily)) {
      if (rawFamily !== "ipv4" && rawFamily !== "ipv6") c.fail("family", `family must be "ipv4" or "ipv6", got ${JSON.stringify(news.family)}.`);
      else if (family && family !== rawFamily) c.fail("family", `family "${rawFamily}" does not match destination ${rawDest} (${family}); drop family or fix the destination.`);
      else family = rawFamily;
    }
    const gateway = c.address(news.gateway, "gateway");
    const source = c.address(news.source, "source");
    for (const [prop, addr] of [["gateway", gateway], ["source", source]] as const) {
      if (!addr || isUnknown(addr)) continue;
      if (family && familyOf(addr) !== family) {
        c.fail(prop, `${prop} ${addr} is ${familyOf(addr)} but destination ${rawDest} is ${family}; use an address of the destination's family.`);
      }
      family ??= familyOf(addr);
    }
    const device = c.ifname(news.device, "device", false, true);
    // Only when neither was given: a given one that failed says so itself.
    const given = (v: unknown) => v !== undefined && v !== null && v !== "";
    if (!given(news.gateway) && !given(news.device)) c.fail("gateway", "a route needs a gateway, a device, or both.");
    // fe80::/10 is on every interface: the kernel needs to be told which one.
    if (typeof gateway === "string" && !isUnknown(gateway) && !given(news.device) && ipaddr.isValid(gateway) && ipaddr.parse(gateway).range() === "linkLocal" && gateway.includes(":")) {
      c.fail("gateway", `gateway ${gateway} is a link-local address, which is on every interface: set device to the interface it is reached through.`);
    }
    const inputs = compact({
      namespace: c.netns(news.namespace, "namespace"),
      destination,
      family: family ?? "ipv4",
      gateway,
      device,
      metric: c.integer(news.metric, "metric", 0, 4294967295),
      table: c.integer(news.table, "table", 1, 4294967295),
      source,
      adopt: c.boolean(news.adopt, "adopt", false),
      __links: linksInput(news.__links),
      __owner: String(news.__owner ?? `Route:${rawDest}`),
    });
    if (inputs.table === 255) c.fail("table", "table 255 is the kernel's local table; use main (omit table) or another number.");
    // IPv6 has no metric 0: the kernel stores such a route at its default, 1024.
    if (inputs.metric === 0 && inputs.family === "ipv6") c.fail("metric", `metric 0 is not an IPv6 metric: the kernel gives such a route ${IPV6_DEFAULT_METRIC}, its default; omit metric (${IPV6_DEFAULT_METRIC}) or give 1 or more.`);
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    // Two routes with one identity cannot coexist: delete the old one first.
    return diffFields(olds as never, news as never, RULES);
  },

  async create(r) {
    await kernel.requireNetns(r.namespace, subject(r));
    let adopted = false;
    let shown: RouteJson[];
    try {
      shown = await writeAndShow("add", r);
    } catch (err) {
      if (!(err instanceof NslabError && err.kind === "AlreadyExists")) return explain(err, r);
      kernel.resetSnapshots();
      const existing = await findRoute(r);
      // Routes carry no per-owner mark (proto 151 says only "nslab"): a route of nslab's
      // that is exactly what this resource asks for is taken over as an interrupted
      // create; any other is refused unless adopt.
      // A route another resource recorded (another stack's, on another backend too) is
      // never taken over without adopt, however identical.
      const identical = existing?.protocol === NSLAB_ROUTE_PROTO && (() => { try { verify(r, [existing]); return true; } catch { return false; } })();
      const other = existing?.protocol === NSLAB_ROUTE_PROTO ? recordedByOther("Route", r.__owner, (o) => sameRoute(o, r)) : undefined;
      if (!r.adopt && (!identical || other)) {
        const whose =
          existing?.protocol !== NSLAB_ROUTE_PROTO ? `proto ${existing?.protocol ?? "boot"}`
          : other ? ownerLabel(other)
          : "nslab (another resource or an earlier run)";
        const mine = other !== undefined && stackOf(other) === stackOf(r.__owner) ? sameStack(other) : "";
        if (existing?.protocol === "kernel" && existing.dev) {
          // The route the kernel keeps for an address's subnet: most often an interface this
          // same `pulumi up` removes (a network detached from a router), which Pulumi deletes
          // only after its creates, so every run would stop here. adopt would replace the
          // kernel's route, which the address still needs while it stays.
          throw new NslabError(
            "AlreadyExists",
            `${subject(r)} already exists: it is the route the kernel keeps for an address of "${existing.dev}" in that subnet (proto kernel). If "${existing.dev}" goes away in this same change (Pulumi deletes only after it creates), make the change in two runs of pulumi up: first without this route, then with it. Otherwise remove that address, or change destination/table/metric.`,
          );
        }
        // Of this same stack: sameStack names the maker, once.
        throw new NslabError("AlreadyExists", `${subject(r)} already exists${mine ? "." : ` (made by ${whose}).`}${mine} Remove it, change destination/table/metric, or set adopt: true to take it over.`);
      }
      adopted = true;
      shown = await writeAndShow("replace", r).catch((e) => explain(e, r));
    }
    try {
      verify(r, shown);
    } catch (err) {
      if (!adopted) await deleteOwn(r).catch(() => undefined);
      throw err;
    }
    return { id: `${r.namespace ?? ""}/${r.family}/${r.destination}/${r.table ?? MAIN_TABLE}/${r.metric ?? ""}`, outs: r };
  },

  async read(id, props) {
    const live = await findRoute(props);
    if (!live || live.protocol !== NSLAB_ROUTE_PROTO) return {};
    const inputs = fromLive(props, live);
    return { id, props: inputs, inputs };
  },

  async update(_id, olds, news) {
    await kernel.requireNetns(news.namespace, subject(news), "", true);
    const taker = news.adopt ? undefined : takenOverBy("Route", news.__owner, (o) => sameRoute(o, olds));
    if (taker) {
      throw new NslabError(
        "AlreadyExists",
        `${subject(olds)} was taken over by ${ownerLabel(taker)} (adopt) since this resource last wrote it, and is that one's now. Remove this resource from the program (the route stays with the other), or set adopt: true to take it back.`,
      );
    }
    // Written again only because an interface it depends on changed (__links): if its
    // way is down now (a link set up: false), the kernel cannot hold it, as when that
    // link went down; it comes back when the link does. Any other refusal fails.
    const linksOnly = !diffFields(olds as never, news as never, RULES.filter((r) => r !== LINKS_RULE)).changes;
    const shown = await writeAndShow("replace", news).catch(async (e) => {
      if (linksOnly && e instanceof NslabError && WAY_DOWN.test(e.message) && (await wayDown(news))) return undefined;
      return explain(e, news);
    });
    if (shown) verify(news, shown);
    return { outs: news };
  },

  async delete(_id, props) {
    if (props.namespace !== undefined && !(await kernel.hostNetnsExists(props.namespace))) return;
    // Taken over by another resource (adopt) since: its route now, left to it.
    if (takenOverBy("Route", props.__owner, (o) => sameRoute(o, props))) return;
    await deleteOwn(props).catch((err) => {
      // Already gone (or not ours: the proto selector matched nothing) is success.
      if (err instanceof NslabError && (err.kind === "NotFound" || /No such process/.test(err.message))) return;
      throw err;
    });
  },
};

/**
 * Deletes only a route carrying nslab's proto, at this route's own metric: the kernel
 * takes a delete without one (or, for IPv4, with metric 0) as "any metric" and removes
 * the first match, which may be another resource's route to the same destination.
 * IPv6 names its default metric (1024); an IPv4 route of metric 0 sorts first, so the
 * delete takes it when it is there, and it is looked up first (fresh, that destination
 * only) so that, when it is gone, another's at a higher metric is not taken instead.
 * Equivalent to: ip [-6] route del DEST [table T] [metric M] proto 151
 */
async function deleteOwn(r: RouteInputs): Promise<void> {
  if (r.family !== "ipv6" && !r.metric) {
    if (matchRoute(r, await showRoutes(r))?.protocol !== NSLAB_ROUTE_PROTO) return;
  }
  const metric = r.metric ?? (r.family === "ipv6" ? IPV6_DEFAULT_METRIC : undefined);
  await kernel.ip([...selector("del", { ...r, metric }), "proto", NSLAB_ROUTE_PROTO], r.namespace, subject(r), familyFlag(r));
}
