/**
 * What veth ends, bridges and tap devices share: normalising a live interface into the
 * properties nslab manages, the `ip` commands that converge it to the desired ones, and
 * the check after writing.
 */
import { NslabError } from "./errors";
import * as kernel from "./kernel";
import type { LinkJson, Netns } from "./kernel";
import { resourceNameOf, stableMac } from "./resource";
import type { DiffResult, FieldRule } from "./resource";
import { canonicalCidr, Checker, isUnknown, MAC_PATTERN, networkOf } from "./validate";

/** The per-interface properties users set. */
export interface LinkSettings {
  name: string;
  namespace?: string;
  addresses: string[];
  mac?: string;
  master?: string;
  up: boolean;
  mtu?: number;
}

/**
 * How the interface fields every link kind shares are diffed: name and namespace
 * replace; the rest change in place; mac and mtu left unset mean "whatever the kernel
 * has". `master: false` for kinds that cannot be a bridge port (a bridge). A kind adds
 * its own rules after these.
 */
export function linkRules(options: { master: boolean }): FieldRule[] {
  return [
    { name: "name", replace: true },
    { name: "namespace", replace: true },
    { name: "addresses", set: true },
    { name: "mac", computed: true },
    { name: "mtu", computed: true },
    ...(options.master ? [{ name: "master" }] : []),
    { name: "up" },
  ];
}

/** A live interface, normalised for comparison with LinkSettings. */
export interface LiveLink {
  name: string;
  ifindex: number;
  kind: string;
  mac: string;
  mtu: number;
  up: boolean;
  master?: string;
  alias?: string;
  /** Global (and user-managed) addresses, canonical; kernel-made link-local ones left out. */
  addresses: string[];
  /** All addresses, including link-local, canonical. */
  allAddresses: string[];
  info: Record<string, unknown>;
  /**
   * The other end (a veth's peer): by name when it is in the same namespace, else by its
   * ifindex in its own namespace (`elsewhere`).
   */
  peer?: { name?: string; index?: number; elsewhere: boolean; netnsid?: number };
  /**
   * Set by converge when it removed IPv6 addresses to add them again with another prefix
   * length: the kernel then cleared them as the source (`src`) of the routes that had
   * them, so the interface's dependents are written again (generationOf).
   */
  renewed?: true;
}

export function normaliseLink(link: LinkJson): LiveLink {
  const all = (link.addr_info ?? []).map((a) => canonicalCidr(`${a.local}/${a.prefixlen}`) ?? `${a.local}/${a.prefixlen}`);
  const global = (link.addr_info ?? [])
    .filter((a) => a.scope !== "link")
    .map((a) => canonicalCidr(`${a.local}/${a.prefixlen}`) ?? `${a.local}/${a.prefixlen}`);
  return {
    name: link.ifname,
    ifindex: link.ifindex,
    kind: link.linkinfo?.info_kind ?? "",
    mac: (link.address ?? "").toLowerCase(),
    mtu: link.mtu,
    up: link.flags.includes("UP"),
    master: link.master,
    alias: link.ifalias,
    addresses: global,
    allAddresses: all,
    info: link.linkinfo?.info_data ?? {},
    ...(link.link !== undefined || link.link_index !== undefined ? { peer: { name: link.link, index: link.link_index, elsewhere: link.link_netnsid !== undefined, netnsid: link.link_netnsid } } : {}),
  };
}

/** The interface from the namespace's snapshot (one dump per namespace per run). */
export async function findLink(name: string, netns: Netns): Promise<LiveLink | undefined> {
  if (netns !== undefined && !(await kernel.hostNetnsExists(netns))) return undefined;
  const found = (await kernel.links(netns)).find((l) => l.ifname === name);
  return found && normaliseLink(found);
}

/** The interface read fresh, bypassing the snapshot (after writing). */
export async function freshLink(name: string, netns: Netns): Promise<LiveLink | undefined> {
  const found = await kernel.link(name, netns);
  return found && normaliseLink(found);
}

/**
 * What the command that made an interface already set (`ip link add ... address MAC mtu
 * M`), so that converging the just-made interface (`live` undefined) does not set it
 * again; `announced`: its addresses are announced once it is up and heard (announceMade).
 */
export interface MadeWith {
  mac?: string;
  mtu?: number;
  announced?: boolean;
}

/**
 * The `ip` commands (for one `ip -batch`) that take `live` to `desired`, alias first
 * and link state last. `desired.mtu` undefined means "leave it".
 * Equivalent to: ip link set dev NAME alias TAG; ip link set dev NAME mtu M; ...
 */
export function convergeCommands(desired: LinkSettings, live: LiveLink | undefined, tag: string, made: MadeWith = {}, peerBack = false): string[][] {
  const dev = desired.name;
  const cmds: string[][] = [];
  const mtu = live ? live.mtu : made.mtu;
  const mac = live ? live.mac : made.mac;
  // Down first, up last: a link comes up once everything is in place (its IPv6
  // addresses stay while it is down: converge turns on keep_addr_on_down).
  if (!desired.up && live?.up !== false) cmds.push(["link", "set", "dev", dev, "down"]);
  if (live?.alias !== tag) cmds.push(["link", "set", "dev", dev, "alias", tag]);
  if (desired.mtu !== undefined && mtu !== desired.mtu) cmds.push(["link", "set", "dev", dev, "mtu", String(desired.mtu)]);
  if (desired.mac !== undefined && mac !== desired.mac) cmds.push(["link", "set", "dev", dev, "address", desired.mac]);
  if ((desired.master ?? "") !== (live?.master ?? "")) {
    cmds.push(desired.master ? ["link", "set", "dev", dev, "master", desired.master] : ["link", "set", "dev", dev, "nomaster"]);
  }
  const have = new Set(live?.allAddresses ?? []);
  const want = new Set(desired.addresses);
  const adds = desired.addresses.filter((addr) => !have.has(addr));
  const dels = (live?.addresses ?? []).filter((addr) => !want.has(addr));
  // New addresses go on before old ones come off: an interface left without an IPv4
  // address, even for a moment, loses every route through it (a host's default route).
  // An IPv6 address given a new prefix length is the exception: the kernel keys IPv6
  // addresses by address alone, so the old one must go first.
  const first = readdedFirst(desired, live);
  for (const addr of first) cmds.push(["address", "del", addr, "dev", dev]);
  // IPv6 addresses skip duplicate address detection (nodad): a lab's addresses are
  // declared, and a tentative address would leave the link unusable for a second or two
  // after every up, so traffic would not pass at the first try.
  for (const addr of adds) cmds.push(["address", "add", addr, "dev", dev, ...(addr.includes(":") ? ["nodad"] : [])]);
  for (const addr of dels) if (!first.includes(addr)) cmds.push(["address", "del", addr, "dev", dev]);
  if (desired.up && live?.up !== true) cmds.push(["link", "set", "dev", dev, "up"]);
  // Setting the MAC it has makes the kernel announce every address (with arp_notify and
  // ndisc_notify on: converge), and forget the interface's own neighbours.
  const announce = announcement(desired, live, peerBack);
  if (announce) cmds.push(["link", "set", "dev", dev, "address", announce.mac]);
  return cmds;
}

const isV6 = (addr: string) => addr.includes(":");

/** The IPv6 addresses converging removes first, to add them again with another prefix length. */
export function readdedFirst(desired: LinkSettings, live: LiveLink | undefined): string[] {
  const have = new Set(live?.allAddresses ?? []);
  const readded = new Set(desired.addresses.filter((addr) => isV6(addr) && !have.has(addr)).map((addr) => addr.split("/")[0]));
  return (live?.addresses ?? []).filter((addr) => !desired.addresses.includes(addr) && readded.has(addr.split("/")[0]));
}

/**
 * When converging adds addresses to an interface that already exists, is (or comes) up
 * and has a MAC, or brings such an interface back up, they are announced: a gratuitous
 * ARP (IPv4) and an unsolicited neighbour advertisement (IPv6) for each of its
 * addresses. A neighbour that knew an added address as another host's (a host removed
 * and its address given to one that stays, as a BridgedNetwork's sequential allocation
 * does) would otherwise keep sending
 * to the old MAC until its entry times out, 15 to 20 s or more, and this host's own
 * cached neighbours would keep it from asking. A new interface has no arp_notify (turning
 * it on would cost a process per interface): a veth end just made is announced by
 * announceMade instead; other new interfaces are not (README, "Changing a running lab").
 */
export function announcement(desired: LinkSettings, live: LiveLink | undefined, peerBack = false): { mac: string; v4: boolean; v6: boolean } | undefined {
  // An interface adopted without a MAC of the program's is left as it is (a bridge whose
  // MAC is set stops following its ports'); a tun device has none.
  if (!live || !desired.up || desired.mac === undefined || !MAC_PATTERN.test(desired.mac)) return undefined;
  const adds = desired.addresses.filter((addr) => !live.allAddresses.includes(addr));
  // A new MAC is announced too: its neighbours know the old one. So is an interface that
  // comes back up: a neighbour that sent to it while it was down is still asking (its
  // entry unresolved, asked again once a second, then failed with what it held), and the
  // first packets to it wait for the next question or are dropped with that entry.
  // So is one whose veth peer came back up (peerBack): the hosts of a bridge the peer is
  // a port of asked for it the same way while the port was down.
  const again = desired.mac !== live.mac || !live.up || peerBack;
  const v4 = adds.some((addr) => !addr.includes(":")) || (again && live.addresses.some((addr) => !addr.includes(":")));
  const v6 = adds.some((addr) => addr.includes(":")) || (again && live.addresses.some((addr) => addr.includes(":")));
  return v4 || v6 ? { mac: desired.mac, v4, v6 } : undefined;
}

/**
 * The commands that announce the addresses of an interface just made, once what is
 * beyond it can hear (a veth's peer up): a host made anew with the address of one just
 * removed (a `BridgedNetwork`'s sequential allocation) is otherwise reached by the
 * neighbours that knew the old one only once their entry for it fails, 15 to 20 s, or
 * never at the first try. Without a process per interface (as announcement's switches
 * would cost):
 * - IPv4: an entry for the interface's own address put in use makes the kernel ask for
 *   it at once, a gratuitous ARP (who has A, tell A) that every neighbour holding an
 *   entry for A takes; the entry is removed straight after, so nothing is left and
 *   nothing is asked again;
 * - IPv6: setting the MAC it has makes the kernel send an unsolicited neighbour
 *   advertisement of each address, as ndisc_notify (turned on with the interface's other
 *   IPv6 settings when it was made: ipv6Settings) asks.
 * None for an interface that is down, has no address or no MAC of the program's (see
 * announcement); no IPv4 one where `ip` is older than iproute2 5.16 (`neighUse` false),
 * which has no `use` (and ends its batch session at that word).
 * Equivalent to: ip link set dev DEV address MAC; ip neigh replace A dev DEV use; ip neigh del A dev DEV
 */
export function announceMade(desired: LinkSettings, live: LiveLink, neighUse: boolean): string[][] {
  if (!live.up || desired.mac === undefined || !MAC_PATTERN.test(desired.mac) || live.mac !== desired.mac) return [];
  const held = desired.addresses.filter((addr) => live.addresses.includes(addr));
  const commands = held.some(isV6) ? [["link", "set", "dev", desired.name, "address", desired.mac]] : [];
  // `use` came with iproute2 5.16 (kernel.ipNeighUse): an older ip announces no IPv4.
  for (const addr of neighUse ? held.filter((a) => !isV6(a)).map((a) => a.split("/")[0]) : []) {
    commands.push(["neigh", "replace", addr, "dev", desired.name, "use"], ["neigh", "del", addr, "dev", desired.name]);
  }
  return commands;
}

/**
 * Whether converging `live` to `desired` removes an IPv4 address that shares its subnet
 * with one that stays. The kernel keeps the first address of a subnet as its primary and
 * the others as secondaries, and removing a primary removes its secondaries too, unless
 * the interface's promote_secondaries is on.
 */
export function dropsPrimaryOfKept(desired: LinkSettings, live: LiveLink | undefined): boolean {
  const v4 = (addr: string) => !addr.includes(":");
  const kept = new Set(desired.addresses.filter(v4).map(networkOf));
  return (live?.addresses ?? []).some((addr) => v4(addr) && !desired.addresses.includes(addr) && kept.has(networkOf(addr)));
}

/**
 * Applies convergeCommands and reads the interface back, in one `ip -batch` process;
 * returns the interface as the kernel now has it. `live` undefined means "just made":
 * every desired setting is written. When an IPv4 address comes off while another of its
 * subnet stays (dropsPrimaryOfKept), promote_secondaries is on during the batch, so the
 * one that stays becomes the primary instead of going with it; the interface's own value
 * is put back after.
 * Equivalent to: [sysctl -w net/ipv4/conf/DEV/promote_secondaries=1;] ip -batch ...; [sysctl -w ...=PREVIOUS]
 */
export async function converge(desired: LinkSettings, live: LiveLink | undefined, tag: string, subject: string, made: MadeWith = {}, peerBack = false): Promise<LiveLink | undefined> {
  // Slashes: an interface name may hold a dot, which sysctl's dotted form would split.
  // Added addresses are announced (announcement) when the MAC is set: the switches that
  // make the kernel do it stay on (they only add announcements). Setting the MAC also
  // flushes the interface's neighbours, static ones too: those are put back.
  const announce = announcement(desired, live, peerBack);
  if (announce?.v4) await kernel.sysctlWrite(`net/ipv4/conf/${desired.name}/arp_notify`, "1", desired.namespace, subject);
  if (announce?.v6) await kernel.sysctlWrite(`net/ipv6/conf/${desired.name}/ndisc_notify`, "1", desired.namespace, subject);
  const statics = announce ? await kernel.ipJson<{ dst?: string; lladdr?: string }[]>(["neigh", "show", "dev", desired.name, "nud", "permanent"], desired.namespace, subject) : [];
  const commands = [
    ...convergeCommands(desired, live, tag, made, peerBack),
    ...statics.filter((n) => n.dst && n.lladdr).map((n) => ["neigh", "replace", n.dst!, "lladdr", n.lladdr!, "dev", desired.name, "nud", "permanent"]),
    ["address", "show", "dev", desired.name],
  ];
  const promote = `net/ipv4/conf/${desired.name}/promote_secondaries`;
  const previous = dropsPrimaryOfKept(desired, live) ? await kernel.sysctlRead(promote, desired.namespace, subject) : "1";
  if (previous !== "1") await kernel.sysctlWrite(promote, "1", desired.namespace, subject);
  if (ipv6Settings(desired, live)) {
    // An interface without IPv6 (an MTU below 1280, disable_ipv6) has no such switches:
    // the address add in the batch then fails with the kernel's reason.
    await kernel
      .sysctlWriteAll(
        [
          [`net/ipv6/conf/${desired.name}/accept_dad`, "0"],
          [`net/ipv6/conf/${desired.name}/keep_addr_on_down`, "1"],
          // Just made: its addresses are announced once its peer can hear (announceMade).
          ...(live === undefined && made.announced ? [[`net/ipv6/conf/${desired.name}/ndisc_notify`, "1"] as [string, string]] : []),
        ],
        desired.namespace,
        subject,
      )
      .catch(() => undefined);
  }
  try {
    const [after] = await kernel.ipBatchRead<LinkJson[]>(commands, desired.namespace, subject);
    const link = after?.[0] && desired.up && live?.up !== true && desired.addresses.some(isV6) ? await ipv6Started(after[0], desired, subject) : after?.[0];
    if (!link) return undefined;
    const converged = normaliseLink(link);
    return readdedFirst(desired, live).length ? { ...converged, renewed: true } : converged;
  } finally {
    if (previous !== "1") await kernel.sysctlWrite(promote, previous, desired.namespace, subject).catch(() => undefined);
  }
}

/**
 * Whether converging writes the interface's IPv6 settings first: it is to have an IPv6
 * address and was just made, has none yet, or is taken down. They are
 * - accept_dad 0: the link-local address the kernel gives it when it comes up skips
 *   duplicate address detection, as nslab's own addresses do (nodad). While it is
 *   tentative the kernel sends no neighbour solicitation for a packet it forwards (it
 *   has no source address for one), so a router's first forwarded packet was lost and
 *   the first ping through it took 1 to 2 s;
 * - keep_addr_on_down 1: the kernel removes an interface's IPv6 addresses when it goes
 *   down, so `up: false` could not keep them (the update failed verifying them) and the
 *   lab came back without them;
 * - ndisc_notify 1, when just made to be announced (MadeWith.announced): announceMade's
 *   announcement of its addresses.
 * Equivalent to: sysctl -w net/ipv6/conf/DEV/accept_dad=0 net/ipv6/conf/DEV/keep_addr_on_down=1 [net/ipv6/conf/DEV/ndisc_notify=1]
 */
export function ipv6Settings(desired: LinkSettings, live: LiveLink | undefined): boolean {
  if (!desired.addresses.some(isV6)) return false;
  return live === undefined || !live.addresses.some(isV6) || (!desired.up && live.up);
}

/** How long converge waits for the kernel to start IPv6 on an interface that came up. */
const IPV6_START_MS = 1500;

/**
 * The interface once the kernel has started IPv6 on it, after it came up with IPv6
 * addresses: that is when it joins its addresses' solicited-node groups and answers
 * neighbour solicitations for them (until then the first packets to it are lost, and
 * resent only after a second). The sign is its link-local address, no longer tentative.
 * Only with carrier: without (a tap no program holds, a bridge without ports) the
 * kernel starts IPv6 when carrier comes. Gives up after IPV6_START_MS (an interface
 * without link-local addresses, addrgenmode none) and returns what it last read.
 * Equivalent to: ip address show dev DEV, until a link-local address is not tentative
 */
async function ipv6Started(link: LinkJson, desired: LinkSettings, subject: string): Promise<LinkJson> {
  const started = (l: LinkJson) => !l.flags.includes("LOWER_UP") || (l.addr_info ?? []).some((a) => a.family === "inet6" && a.scope === "link" && !a.tentative);
  const until = Date.now() + IPV6_START_MS;
  let current = link;
  // 5 ms, then twice as long each time up to 100 ms: a few looks here, and few round
  // trips to another host when it takes longer.
  for (let wait = 5; !started(current) && Date.now() < until; wait = Math.min(wait * 2, 100)) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    const [again] = await kernel.ipBatchRead<LinkJson[]>([["address", "show", "dev", desired.name]], desired.namespace, subject);
    if (!again?.[0]) break;
    current = again[0];
  }
  return current;
}

/** Throws a Verification error naming the first property the kernel did not take. */
export function verifyLink(desired: LinkSettings, live: LiveLink | undefined, tag: string, subject: string, prefix = ""): LiveLink {
  if (!live) throw new NslabError("Verification", `${subject}: not found after writing it`);
  const mismatch = (property: string, want: unknown, have: unknown) =>
    new NslabError("Verification", `${subject}: ${prefix}${property}: desire '${String(want)}', current '${String(have)}'`);
  if (live.alias !== tag) throw mismatch("owner mark (alias)", tag, live.alias);
  if (desired.mtu !== undefined && live.mtu !== desired.mtu) throw mismatch("mtu", desired.mtu, live.mtu);
  if (desired.mac !== undefined && live.mac !== desired.mac) throw mismatch("mac", desired.mac, live.mac);
  if ((desired.master ?? "") !== (live.master ?? "")) throw mismatch("master", desired.master ?? "(none)", live.master ?? "(none)");
  const missing = desired.addresses.filter((a) => !live.allAddresses.includes(a));
  const extra = live.addresses.filter((a) => !desired.addresses.includes(a));
  if (missing.length || extra.length) throw mismatch("addresses", desired.addresses.join(","), live.addresses.join(","));
  if (live.up !== desired.up) throw mismatch("up", desired.up, live.up);
  return live;
}

/**
 * Fails before anything is written when the namespace is missing (a file check);
 * `recorded`: the object is in the stack's state (an update), see kernel.requireNetns.
 */
export async function requireNamespace(settings: { namespace?: string }, subject: string, property: string, recorded = false): Promise<void> {
  await kernel.requireNetns(settings.namespace, subject, property, recorded);
}

/**
 * After a failed write, says what was wrong with `master` when it was the cause (it
 * does not exist in the port's namespace, or is not a bridge); otherwise returns `err`.
 * Checked only on failure, so the common path spawns nothing for it.
 */
export async function explainMaster(err: unknown, settings: LinkSettings, subject: string, property: string): Promise<unknown> {
  if (!settings.master) return err;
  const ns = settings.namespace;
  const master = await freshLink(settings.master, ns).catch(() => undefined);
  if (!master) {
    return new NslabError(
      "NotFound",
      `${subject}: ${property}master "${settings.master}" does not exist in ${ns ? `namespace "${ns}"` : "the program's namespace"}. A port's bridge must be in the same namespace; pass the bridge's .name. If the stack made it (and a reboot or a hand removed it), run \`pulumi up --refresh\` to make it again.`,
    );
  }
  if (master.kind !== "bridge") {
    return new NslabError("InvalidArgument", `${subject}: ${property}master "${settings.master}" is a ${master.kind || "plain"} interface, not a bridge.`);
  }
  return err;
}

/**
 * What an interface's dependents go by: its ifindex (each time the interface is made it
 * gets a new one), and after a "+" how many times it was seen to come back up after
 * being down, or had IPv6 addresses made anew (`renewed`). The kernel removes the routes
 * through an interface, and its qdiscs, when it is deleted, its routes when it goes down,
 * and a route's source address when that address is removed; resources that depend on it (a Route,
 * a LinkImpairment, a Reachability with dependsOn) take its generation as an input
 * (`__links`, set by the SDK), so they are written again when it changes.
 * `previous`: the recorded outputs (update, read); a state written before there were
 * generations gets one from either.
 * In a preview the engine gives a dynamic resource that it updates or replaces its
 * inputs as outputs, which hold no generation, so the SDK sees that interface's
 * generation as unknown and its dependents are planned as updates; one that stays the
 * same keeps its recorded outputs, and its dependents stay the same.
 */
export function generationOf(live: LiveLink, previous?: { generation?: string; up?: boolean }): string {
  const base = String(live.ifindex);
  if (previous?.generation === undefined) return base;
  const [before, ups] = previous.generation.split("+");
  if (before !== base) return base;
  return (previous.up === false && live.up) || live.renewed ? `${base}+${Number(ups ?? 0) + 1}` : previous.generation;
}

/**
 * The settings as outputs report them. A MAC the program did not give (an adopted
 * interface keeps its own) is filled in from the kernel and flagged `macUnset`, so
 * that read can give back the inputs exactly as the program states them.
 */
export function linkOutputs<S extends { mac?: string }>(
  settings: S,
  live: LiveLink | undefined,
  previous?: { generation?: string; up?: boolean },
): S & { macUnset?: true; generation?: string } {
  const generation = live ? generationOf(live, previous) : previous?.generation;
  const out = { ...settings, ...(generation !== undefined ? { generation } : {}) };
  if (settings.mac !== undefined || !live?.mac) return out;
  return { ...out, mac: live.mac, macUnset: true };
}

/** The inputs within recorded outputs: what linkOutputs filled in from the kernel goes. */
export function linkInputs<S extends { mac?: string; macUnset?: true; generation?: string }>(outputs: S): Omit<S, "macUnset" | "generation"> {
  const { macUnset, generation: _generation, ...rest } = outputs;
  if (macUnset) delete rest.mac;
  return rest;
}

/**
 * The MAC an interface is given: the program's, or, unless it adopts an existing
 * interface (which keeps its own), a stable one derived from the owner and role
 * (resource.ts stableMac), so that it never changes across recreation.
 */
export function desiredMac(c: Checker, raw: unknown, property: string, adopt: unknown, owner: string, role: string): string | undefined {
  const given = c.mac(raw, property);
  if (given !== undefined || adopt === true || isUnknown(adopt)) return given;
  return stableMac(owner, role);
}

/**
 * An interface name that defaults to the resource's own name (the last part of its
 * owner) when the program leaves it out and that name is a valid interface name.
 */
export function nameOrResourceName(c: Checker, raw: unknown, owner: string, property = "name"): string | undefined {
  if (raw !== undefined && raw !== null && raw !== "") return c.ifname(raw, property);
  const fallback = resourceNameOf(owner);
  const probe = new Checker();
  if (fallback !== undefined && probe.ifname(fallback, property) !== undefined) return fallback;
  return c.fail(
    property,
    `${property} is not set, and the resource name ${JSON.stringify(fallback ?? "")} cannot be an interface name (1-15 characters of letters, digits, '_', '.' and '-'); set ${property}.`,
  );
}

/**
 * The settings as the kernel has them now (for read/refresh): what the user left
 * unset (mac, mtu) stays unset, so that only real drift shows as a diff.
 */
export function liveSettings(settings: LinkSettings, live: LiveLink): LinkSettings {
  return {
    ...settings,
    // The program's addresses that are live, in the program's order (the kernel lists
    // IPv6 ones newest first), then any extra ones (drift).
    addresses: settings.addresses.filter((a) => live.allAddresses.includes(a)).concat(live.addresses.filter((a) => !settings.addresses.includes(a))),
    mac: settings.mac === undefined ? undefined : live.mac,
    mtu: settings.mtu === undefined ? undefined : live.mtu,
    master: live.master,
    up: live.up,
  };
}

/**
 * A diff that also updates an interface whose recorded outputs have no generation (made
 * by an nslab from before generations): the update writes nothing to the kernel and
 * records one, so that its dependents have one to go by (once, after upgrading).
 */
export function recordingGeneration(d: DiffResult, recorded: { generation?: string }): DiffResult {
  return !d.changes && recorded.generation === undefined ? { ...d, changes: true } : d;
}

/** The interface fields every link kind takes, validated and normalised. */
export function checkLinkFields(c: Checker, news: Record<string, unknown>, owner: string, macRole: string | undefined): Omit<LinkSettings, "master"> {
  const fields = {
    name: nameOrResourceName(c, news.name, owner) as string,
    namespace: c.netns(news.namespace, "namespace"),
    addresses: c.addresses(news.addresses, "addresses"),
    mac: macRole === undefined ? c.mac(news.mac, "mac") : desiredMac(c, news.mac, "mac", news.adopt, owner, macRole),
    mtu: c.mtu(news.mtu, "mtu"),
    up: c.boolean(news.up, "up", true),
  };
  if (Array.isArray(fields.addresses)) c.ipv6Mtu(fields.addresses, fields.mtu, "mtu");
  return fields;
}

/**
 * Puts back the alias an adopted interface had before a failed create marked it (none:
 * removed), so that the object is left as it was, not marked as nslab's with nothing in
 * the state (best effort: the create's own error is the one to report).
 * Equivalent to: ip [-n NS] link set dev NAME alias ALIAS (alias "" removes it)
 */
export async function restoreAlias(name: string, netns: string | undefined, alias: string | undefined, subject: string): Promise<void> {
  await kernel.ipSetAlias(name, alias ?? "", netns, subject).catch(() => undefined);
}

/**
 * Deletes an interface only if it is of `kind` and carries `tag`; absent (or its
 * namespace gone) is success, and so is someone else's object, which is left alone.
 * Equivalent to: ip [-n NS] link del dev NAME
 */
export async function deleteOwnedLink(name: string, netns: string | undefined, kind: string, tag: string, subject: string): Promise<void> {
  const live = await freshLink(name, netns);
  if (!live || live.kind !== kind || live.alias !== tag) return;
  await kernel.ip(["link", "del", "dev", name], netns, subject).catch(async (err) => {
    if (await freshLink(name, netns)) throw err;
  });
}
