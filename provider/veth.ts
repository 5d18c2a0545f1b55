/**
 * VethPair: two connected virtual Ethernet interfaces ("a cable with a NIC at each
 * end"), each end in any namespace, optionally a port of a bridge.
 * Ownership: both ends carry nslab's alias.
 */
import { mayHaveRun, NslabError } from "./errors";
import * as kernel from "./kernel";
import { describe } from "./kernel";
import { notTakenOver, whoseMark } from "./owned";
import {
  announceMade,
  announcement,
  converge,
  findLink,
  freshLink,
  LinkSettings,
  linkOutputs,
  liveSettings,
  LiveLink,
  deleteOwnedLink,
  desiredMac,
  explainMaster,
  linkInputs,
  recordingGeneration,
  requireNamespace,
  restoreAlias,
  verifyLink,
} from "./link";
import { allInOrder, CommonInputs, compact, diffFields, FieldRule, ownerTag, ResourceKind, stableMac } from "./resource";
import { Checker, isUnknown } from "./validate";

export type VethEnd = Omit<LinkSettings, "mtu">;

export interface VethInputs extends CommonInputs {
  a: VethEnd;
  b: VethEnd;
  mtu?: number;
}
/** An end as recorded: a MAC the program left unset. */
export type VethEndOutputs = VethEnd & { mac?: string; macUnset?: true };
export interface VethOutputs extends VethInputs {
  a: VethEndOutputs;
  b: VethEndOutputs;
  /** What its dependents go by: both ends' generations, "A/B" (link.ts generationOf). */
  generation?: string;
}

/** Per-end rules, compared on the flattened properties ("a.name", ...). */
const END_RULES: FieldRule[] = [
  { name: "name", replace: true },
  // Moving an end to another namespace loses its addresses and routes: replace.
  { name: "namespace", replace: true },
  { name: "addresses", set: true },
  { name: "mac", computed: true },
  { name: "master" },
  { name: "up" },
];

/** What an end takes. */
const END_PROPERTIES = ["name", "namespace", "addresses", "mac", "master", "up"];

function checkEnd(c: Checker, raw: unknown, end: "a" | "b", adopt: unknown, owner: string): VethEnd {
  if (isUnknown(raw)) return raw as never;
  const e = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  c.knownKeys(e, END_PROPERTIES, `${end}.`, "a veth end", { mtu: "mtu is the pair's: set it beside a and b" });
  if (!raw || typeof raw !== "object") c.fail(end, `${end} is required: { name, namespace?, addresses?, mac?, master?, up? }.`);
  else if (e.name === undefined || e.name === null || e.name === "") {
    c.fail(`${end}.name`, `${end}.name is required: the interface's name in its namespace, 1-15 characters (e.g. "eth0").`);
  }
  return compact({
    name: c.ifname(e.name, `${end}.name`, false) as string,
    namespace: c.netns(e.namespace, `${end}.namespace`),
    addresses: c.addresses(e.addresses, `${end}.addresses`),
    // A stable MAC unless given (or adopting): a recreated end keeps its address, so
    // its neighbours' ARP entries stay right.
    mac: desiredMac(c, e.mac, `${end}.mac`, adopt, owner, end),
    master: c.ifname(e.master, `${end}.master`, false),
    up: c.boolean(e.up, `${end}.up`, true),
  });
}

const endSubject = (e: { name: string; namespace?: string }) => describe("veth", e.name, e.namespace);
const pairSubject = (i: VethInputs) => `veth pair ${endSubject(i.a)} <-> ${endSubject(i.b)}`;
const settings = (end: VethEnd, mtu?: number): LinkSettings => ({ ...end, mtu });
const idOf = (i: VethInputs) => `${i.a.namespace ?? ""}/${i.a.name}:${i.b.namespace ?? ""}/${i.b.name}`;

function outputs(inputs: VethInputs, liveA?: LiveLink, liveB?: LiveLink, previous?: VethOutputs): VethOutputs {
  const [before, after] = previous?.generation?.split("/") ?? [];
  const { generation: a, ...endA } = linkOutputs(inputs.a, liveA, previous && { generation: before, up: previous.a.up });
  const { generation: b, ...endB } = linkOutputs(inputs.b, liveB, previous && { generation: after, up: previous.b.up });
  return compact({ ...inputs, a: compact(endA), b: compact(endB), generation: a !== undefined && b !== undefined ? `${a}/${b}` : undefined });
}

/**
 * Converges both ends (alias, addresses, master, up) and verifies them, one `ip`
 * process per end. `created`: the pair was just made, so there is nothing to read first.
 */
async function apply(inputs: VethInputs, created: boolean): Promise<[LiveLink, LiveLink]> {
  const tag = ownerTag(inputs.__owner);
  const cameUp = { "a.": false, "b.": false };
  const one = async (label: "a." | "b.", end: VethEnd): Promise<LiveLink> => {
    const desired = settings(end, inputs.mtu);
    const live = created ? undefined : await freshLink(end.name, end.namespace);
    // Taken over by another resource since this one wrote it (adopt): not taken back.
    if (!inputs.adopt) notTakenOver(live?.alias, inputs.__owner, endSubject(end));
    // Made with its address and MTU (create): not set again; announced after (announceMade).
    const made = created ? { mac: desired.mac, mtu: inputs.mtu, announced: true } : {};
    const after = await converge(desired, live, tag, endSubject(end), made).catch(async (err) => {
      throw await explainMaster(err, desired, pairSubject(inputs), label);
    });
    cameUp[label] = live?.up === false && desired.up;
    return verifyLink(desired, after, tag, endSubject(end), label);
  };
  // The two ends at once (each in its own namespace's session, or side by side on
  // another host); a's failure is reported first, as when they ran in turn.
  const ends = await allInOrder<[LiveLink, LiveLink]>([one("a.", inputs.a), one("b.", inputs.b)]);
  // An end whose peer came back up announces its addresses (link.ts announcement), now
  // that the peer carries them: what is beyond the peer (the hosts of a bridge it is a
  // port of) asked for this end while the peer was down. Also when both came up at once:
  // the first one up announced before its peer had carrier, into nothing. So does an end
  // of a pair just made, once its peer is up (announceMade): what is beyond may know its
  // addresses as a removed host's.
  const again = async (label: "a." | "b.", end: VethEnd, live: LiveLink, peer: "a." | "b."): Promise<LiveLink> => {
    const desired = settings(end, inputs.mtu);
    if (created) {
      const other = peer === "a." ? inputs.a : inputs.b;
      if (!ends[peer === "a." ? 0 : 1].up || announceMade(desired, live, true).length === 0) return live;
      const announce = announceMade(desired, live, await kernel.ipNeighUse(endSubject(end)));
      // Best effort: the pair is made as asked whether or not its neighbours heard.
      if (announce.length) await operUp(other).then(() => kernel.ipBatchRead(announce, end.namespace, endSubject(end))).catch(() => undefined);
      return live;
    }
    // Nothing to announce (no addresses; adopted without a MAC of the program's): no pass.
    if (!cameUp[peer] || !live.up || !announcement(desired, live, true)) return live;
    // The announcement changes nothing the first pass read back (its generation included).
    verifyLink(desired, await converge(desired, live, tag, endSubject(end), {}, true), tag, endSubject(end), label);
    return live;
  };
  return allInOrder<[LiveLink, LiveLink]>([again("a.", inputs.a, ends[0], "b."), again("b.", inputs.b, ends[1], "a.")]);
}

/**
 * Waits until a veth end that was just set up is up for the kernel too (operstate UP,
 * LOWER_UP): its carrier seen by the kernel's link worker, which is also when a bridge
 * it is a port of starts to forward through it (without STP; with STP, only after the
 * forward delay, which nothing here waits for). What its peer announces before that is
 * lost at the bridge. Gives up after OPER_UP_MS. Equivalent to: ip address show dev END, until UP
 */
async function operUp(end: VethEnd): Promise<void> {
  const until = Date.now() + OPER_UP_MS;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    const link = await kernel.link(end.name, end.namespace);
    if (!link || link.operstate === "UP" || Date.now() >= until) return;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** How long operUp waits at most. */
const OPER_UP_MS = 500;

/**
 * Both ends exist, are veths and peers of each other: in one namespace each names the
 * other; in two, each holds the other's ifindex (in the other's namespace).
 */
function isPair(a: LiveLink | undefined, b: LiveLink | undefined): boolean {
  if (!a || !b || a.kind !== "veth" || b.kind !== "veth") return false;
  if (!a.peer?.elsewhere && !b.peer?.elsewhere) return a.peer?.name === b.name && b.peer?.name === a.name;
  return !!a.peer?.elsewhere && !!b.peer?.elsewhere && a.peer.index === b.ifindex && b.peer.index === a.ifindex;
}

/**
 * For ends in two namespaces, that one end's peer is in the other end's namespace (so,
 * with isPair's ifindexes, is that end: an ifindex is unique within a namespace, not
 * across them). Asked where the peer's namespace has a name: the nsid the kernel gives
 * it, in the end's namespace, read back as that name.
 * Equivalent to: ip [-n NS] -json netns list-id (an ip of its own, not the session's)
 */
async function peersAcross(a: VethEnd, liveA: LiveLink, b: VethEnd, liveB: LiveLink): Promise<boolean> {
  if ((a.namespace ?? "") === (b.namespace ?? "")) return true;
  const [end, peer, other] = b.namespace !== undefined ? [a, liveA.peer, b] : [b, liveB.peer, a];
  if (peer?.netnsid === undefined) return false;
  const ids = await kernel.netnsIds(end.namespace, describe("namespace ids", "*", end.namespace));
  return ids.some((id) => id.nsid === peer.netnsid && id.name === other.namespace);
}

export const vethKind: ResourceKind<VethInputs, VethOutputs> = {
  kind: "VethPair",
  properties: ["a", "b", "mtu", "adopt"],

  check(_olds, news) {
    const c = new Checker();
    const rawA = (news.a && typeof news.a === "object" ? news.a : {}) as Record<string, unknown>;
    const owner = String(news.__owner ?? `VethPair:${rawA.name}`);
    const a = checkEnd(c, news.a, "a", news.adopt, owner);
    const b = checkEnd(c, news.b, "b", news.adopt, owner);
    if (a.name && b.name && a.name === b.name && (a.namespace ?? "") === (b.namespace ?? "")) {
      c.fail("b.name", `a and b are both "${a.name}" in the same namespace; give the ends different names.`);
    }
    // The two ends are one link: an address on both is a duplicate on it (IPv6 duplicate
    // address detection fails it; IPv4 answers ARP for it from both sides).
    const hostsOf = (e: VethEnd) => (Array.isArray(e.addresses) ? e.addresses.filter((x) => typeof x === "string" && !isUnknown(x)).map((x) => x.split("/")[0]) : []);
    const shared = hostsOf(a).filter((h) => hostsOf(b).includes(h));
    if (shared.length > 0) {
      c.fail("b.addresses", `a and b both hold ${shared.map((h) => `"${h}"`).join(", ")}: the two ends of a pair are one link, on which an address must be unique. Give each end its own address (e.g. .1 and .2 of one subnet), or leave one end without.`);
    }
    c.ipv6Mtu([...(Array.isArray(a.addresses) ? a.addresses : []), ...(Array.isArray(b.addresses) ? b.addresses : [])], typeof news.mtu === "number" ? news.mtu : undefined, "mtu");
    const inputs = compact({
      a,
      b,
      mtu: c.mtu(news.mtu, "mtu"),
      adopt: c.boolean(news.adopt, "adopt", false),
      __owner: owner,
    });
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    const flat = (i: Partial<VethInputs>) => {
      const out: Record<string, unknown> = { mtu: i.mtu };
      for (const end of ["a", "b"] as const) for (const r of END_RULES) out[`${end}.${r.name}`] = (i[end] as never)?.[r.name];
      return out;
    };
    const rules: FieldRule[] = [{ name: "mtu", computed: true }];
    for (const end of ["a", "b"]) for (const r of END_RULES) rules.push({ ...r, name: `${end}.${r.name}` });
    const d = recordingGeneration(diffFields(flat(olds), flat(news), rules), olds);
    // Report replacements on the top-level property that holds them.
    return { ...d, replaces: [...new Set(d.replaces.map((p) => p.split(".")[0]))], stables: [] };
  },

  async create(inputs) {
    const { a, b } = inputs;
    // The looks that come before the pair is made, at once.
    const [, , earlier] = await allInOrder<[void, void, kernel.IntentRecord | undefined]>([requireNamespace(a, pairSubject(inputs), "a."), requireNamespace(b, pairSubject(inputs), "b."), kernel.intentRecord(a.namespace, `link-${a.name}`)]);
    // Adopting without a mac of the program's, a pair made here still gets stable ones.
    const end = (e: VethEnd, role: "a" | "b") => [
      "name",
      e.name,
      ...(e.namespace ? ["netns", e.namespace] : []),
      "address",
      e.mac ?? stableMac(inputs.__owner, role),
      ...(inputs.mtu ? ["mtu", String(inputs.mtu)] : []),
    ];
    let created = true;
    /** The ends' aliases as found, when an existing pair is taken over: put back if the create fails. */
    let found: [string | undefined, string | undefined] | undefined;
    const tag = ownerTag(inputs.__owner);
    const intent = `link-${a.name}`;
    // The intent record, then (one request on another host):
    // ip link add name A [netns NS] ... type veth peer name B [netns NS] ...
    const add = () => kernel.ip(["link", "add", ...end(a, "a"), "type", "veth", "peer", ...end(b, "b")], undefined, pairSubject(inputs), undefined, { before: { netns: a.namespace, object: intent, owner: tag, by: inputs.__owner } });
    try {
      await add().catch(async (err) => {
        // One end of this resource's own pair, without the other where it belongs: that one
        // went with a namespace deleted by hand that a program still holds (the kernel keeps
        // a namespace while a process is in it), and `pulumi up --refresh` made the
        // namespace anew. It is this resource's (its mark): removed, and the pair made anew.
        if (!(err instanceof NslabError && err.kind === "AlreadyExists") || inputs.adopt) throw err;
        const [liveA, liveB] = [await freshLink(a.name, a.namespace), await freshLink(b.name, b.namespace)];
        const lone = !liveA && liveB?.alias === tag && liveB.kind === "veth" ? b : !liveB && liveA?.alias === tag && liveA.kind === "veth" ? a : undefined;
        if (!lone) throw err;
        await kernel.ip(["link", "del", "dev", lone.name], lone.namespace, pairSubject(inputs));
        await add();
      });
    } catch (err) {
      if (!(err instanceof NslabError && err.kind === "AlreadyExists")) {
        // A pair that may have been made all the same keeps its intent record.
        if (!mayHaveRun(err)) await kernel.intentRestore(a.namespace, intent, earlier, tag, pairSubject(inputs));
        throw err;
      }
      const [liveA, liveB] = [await freshLink(a.name, a.namespace), await freshLink(b.name, b.namespace)];
      // This resource's own pair (both aliases, or its intent when a killed run made it
      // but did not mark it) is an interrupted create: take it over, as adopt does.
      const mine = (end?: { alias?: string }) => end?.alias === tag || (!end?.alias && earlier?.owner === tag);
      if (!inputs.adopt && !(mine(liveA) && mine(liveB))) {
        await kernel.intentRestore(a.namespace, intent, earlier, tag, pairSubject(inputs));
        const other = [liveA?.alias, liveB?.alias].find((alias) => alias && alias !== tag);
        if (other) err.message += whoseMark(other, inputs.__owner);
        throw err;
      }
      if (!isPair(liveA, liveB) || !(await peersAcross(a, liveA!, b, liveB!))) {
        await kernel.intentRestore(a.namespace, intent, earlier, tag, pairSubject(inputs));
        throw new NslabError(
          "AlreadyExists",
          `${pairSubject(inputs)}: cannot adopt: an interface with one of these names exists but the two are not a veth pair (each the other's peer). Remove it or choose other names.`,
        );
      }
      created = false;
      // Taken over as someone else's (adopt), not as this resource's own interrupted create.
      if (!(mine(liveA) && mine(liveB))) found = [liveA!.alias, liveB!.alias];
    }
    let gone = true;
    try {
      const [liveA, liveB] = await apply(inputs, created);
      return { id: idOf(inputs), outs: outputs(inputs, liveA, liveB) };
    } catch (err) {
      // Transactional: deleting one end removes both; an adopted pair gets its aliases back
      // (what else the failed attempt changed stays changed: see the README).
      if (created) gone = await kernel.ip(["link", "del", "dev", a.name], a.namespace, pairSubject(inputs)).then(() => true, () => false);
      else if (found) for (const [e, alias] of [[a, found[0]], [b, found[1]]] as const) await restoreAlias(e.name, e.namespace, alias, pairSubject(inputs));
      // This resource's own object, left by an interrupted create and taken over: it keeps
      // its mark and its intent record, so that nslab-orphans lists it (a destroy does not
      // know it) and the next create takes it over again.
      else gone = false;
      throw err;
    } finally {
      // Marked, or removed: the intent record goes. A pair whose removal failed keeps it.
      if (gone) await kernel.intentDone(a.namespace, intent);
    }
  },

  async read(id, props) {
    const tag = ownerTag(props.__owner);
    const liveA = await findLink(props.a.name, props.a.namespace);
    const liveB = await findLink(props.b.name, props.b.namespace);
    if (!isPair(liveA, liveB) || liveA!.alias !== tag || liveB!.alias !== tag) return {};
    // Both ends carry the pair's MTU: the one that differs from the recorded one is drift.
    const mtu = props.mtu === undefined ? undefined : liveA!.mtu !== props.mtu ? liveA!.mtu : liveB!.mtu;
    const { generation: _generation, ...recorded } = props;
    const inputs: VethInputs = compact({
      ...recorded,
      a: compact(liveSettings(settings(linkInputs(props.a)), liveA!)) as VethEnd,
      b: compact(liveSettings(settings(linkInputs(props.b)), liveB!)) as VethEnd,
      mtu,
    });
    for (const end of [inputs.a, inputs.b]) delete (end as LinkSettings).mtu;
    return { id, props: outputs(inputs, liveA, liveB, props), inputs };
  },

  async update(_id, olds, news) {
    await requireNamespace(news.a, pairSubject(news), "a.", true);
    await requireNamespace(news.b, pairSubject(news), "b.", true);
    const [liveA, liveB] = await apply(news, false);
    return { outs: outputs(news, liveA, liveB, olds) };
  },

  async delete(_id, props) {
    const tag = ownerTag(props.__owner);
    // Deleting one end removes both; try b when a is already gone (or was moved).
    await deleteOwnedLink(props.a.name, props.a.namespace, "veth", tag, endSubject(props.a));
    await deleteOwnedLink(props.b.name, props.b.namespace, "veth", tag, endSubject(props.b));
  },
};
