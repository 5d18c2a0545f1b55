/**
 * NatRule: one nftables NAT rule (masquerade, snat or dnat). All of nslab's rules in a
 * namespace live in one table, `inet nslab`, with base chains made on demand
 * (`postrouting` for masquerade/snat, `prerouting` for dnat). Each rule carries a
 * comment with its resource's tag, so refresh finds exactly it and delete removes
 * exactly it; every change is one atomic `nft -f -` transaction.
 *
 * Concurrency and ownership (why it is built this way):
 * - Several processes (two stacks, two provider processes of one run, a killed run's
 *   orphan) may change rules in one namespace at once. An nft transaction is atomic,
 *   but deciding *what* to delete needs a listing first, and nft has no "delete the
 *   table only if empty" (nft 1.0.6 deletes tables and chains recursively). So every
 *   list-then-write is done holding a lock on the namespace (kernel.withNetnsLock:
 *   flock on the namespace's nsfs file). The lock is keyed by the namespace itself,
 *   is released by the kernel when its holder dies (a kill -9 leaves no stale lock),
 *   and costs one small process per rule change. Within a process, operations on one
 *   namespace are also queued, so parallel creates wait in memory, not in flock.
 * - Delete removes our rule; our base chain too when nothing else is left in it; the
 *   table only when nothing else at all is left in it. Chains, sets, maps or rules that
 *   someone else put into `inet nslab` therefore keep the table (and their chain).
 *   Other tools are not bound by nslab's lock: content they add in the instant between
 *   our listing and our write is the one case not covered.
 * - A rule of this resource already there (its own comment: a create that was
 *   interrupted before Pulumi recorded it) is taken over and converged, as CNI's ADD
 *   does; rules of other resources carry other comments and are never touched, except
 *   by `adopt: true`, which takes over a rule in `inet nslab` that matches exactly (another
 *   stack's, or one without a comment) by giving it this resource's comment.
 */
import { NslabError } from "./errors";
import { hostKey, sameHost } from "./host";
import { ownerLabel, takenOverBy } from "./owned";
import * as kernel from "./kernel";
import { CommonInputs, compact, diffFields, FieldRule, isNslabTag, ownerTag, ResourceKind } from "./resource";
import { canonicalAddress, canonicalCidr, Checker, familyOf, isUnknown, networkOf } from "./validate";

export const NAT_TABLE = "nslab";
const TABLE = `inet ${NAT_TABLE}`;
const CHAINS = {
  postrouting: "type nat hook postrouting priority srcnat; policy accept;",
  prerouting: "type nat hook prerouting priority dstnat; policy accept;",
} as const;
type Chain = keyof typeof CHAINS;
export type NatKind = "masquerade" | "snat" | "dnat";

export interface NatInputs extends CommonInputs {
  namespace?: string;
  kind: NatKind;
  family: "ipv4" | "ipv6";
  source?: string;
  destination?: string;
  outInterface?: string;
  inInterface?: string;
  protocol?: "tcp" | "udp";
  port?: number;
  toAddress?: string;
  toPort?: number;
  /** Set by read when the kernel's rule has expressions nslab does not write (drift). */
  unmanagedExpression?: string;
}
export type NatOutputs = NatInputs;

const MATCH_FIELDS = ["kind", "family", "source", "destination", "outInterface", "inInterface", "protocol", "port", "toAddress", "toPort"] as const;
const RULES: FieldRule[] = [
  { name: "namespace", replace: true },
  ...MATCH_FIELDS.map((name) => ({ name })),
  { name: "unmanagedExpression" },
];

const subject = (i: NatInputs) => `${i.kind} rule in ${i.namespace ? `namespace "${i.namespace}"` : "the program's namespace"}${kernel.where()}`;
const chainOf = (i: NatInputs): Chain => (i.kind === "dnat" ? "prerouting" : "postrouting");

// ---- serialising per namespace --------------------------------------------------------

const queues = new Map<string, Promise<unknown>>();
/** Runs `work` after every earlier nft operation on the same namespace has finished. */
function serialized<T>(netns: string | undefined, work: () => Promise<T>): Promise<T> {
  const key = `${hostKey(kernel.currentHost())}\0${netns ?? ""}`;
  const next = (queues.get(key) ?? Promise.resolve()).then(work, work);
  queues.set(key, next.catch(() => undefined));
  return next;
}

// ---- rule text and parsing -------------------------------------------------------------

/** The rule's nft expression, e.g. `ip saddr 192.168.1.0/24 oifname "uplink" masquerade`. */
export function ruleExpression(i: NatInputs): string {
  const ipkw = i.family === "ipv6" ? "ip6" : "ip";
  const parts: string[] = [];
  if (i.inInterface) parts.push(`iifname "${i.inInterface}"`);
  if (i.outInterface) parts.push(`oifname "${i.outInterface}"`);
  if (i.source) parts.push(`${ipkw} saddr ${i.source}`);
  if (i.destination) parts.push(`${ipkw} daddr ${i.destination}`);
  if (i.protocol) parts.push(i.port !== undefined ? `${i.protocol} dport ${i.port}` : `meta l4proto ${i.protocol}`);
  const to = (addr: string) => (i.family === "ipv6" && i.toPort !== undefined ? `[${addr}]` : addr) + (i.toPort !== undefined ? `:${i.toPort}` : "");
  if (i.kind === "masquerade") parts.push(i.toPort !== undefined ? `masquerade to :${i.toPort}` : "masquerade");
  else parts.push(`${i.kind} ${ipkw} to ${to(i.toAddress!)}`);
  return parts.join(" ");
}

interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment?: string;
  expr: Record<string, unknown>[];
}

/** parseRule's fields with the family a rule without addresses has in the inputs: ipv4. */
const liveFields = (rule: NftRule): Partial<NatInputs> => ({ family: "ipv4", ...parseRule(rule) });

/** The match and action fields of a live rule, or the text of what nslab cannot read. */
export function parseRule(rule: NftRule): Partial<NatInputs> {
  const out: Partial<NatInputs> = {};
  const unknown: unknown[] = [];
  for (const e of rule.expr) {
    const match = e.match as { op: string; left: Record<string, any>; right: any } | undefined;
    if (match && match.op === "==") {
      const meta = match.left.meta?.key;
      const payload = match.left.payload;
      if (meta === "iifname") out.inInterface = String(match.right);
      else if (meta === "oifname") out.outInterface = String(match.right);
      else if (meta === "l4proto") out.protocol = match.right;
      else if (payload && (payload.protocol === "ip" || payload.protocol === "ip6") && (payload.field === "saddr" || payload.field === "daddr")) {
        const r = match.right;
        const cidr = typeof r === "string" ? `${r}/${payload.protocol === "ip6" ? 128 : 32}` : `${r.prefix.addr}/${r.prefix.len}`;
        out[payload.field === "saddr" ? "source" : "destination"] = canonicalCidr(cidr);
        out.family = payload.protocol === "ip6" ? "ipv6" : "ipv4";
      } else if (payload && (payload.protocol === "tcp" || payload.protocol === "udp") && payload.field === "dport" && typeof match.right === "number") {
        out.protocol = payload.protocol;
        out.port = match.right;
      } else unknown.push(e);
    } else if ("masquerade" in e) {
      out.kind = "masquerade";
      const m = e.masquerade as { port?: number } | null;
      if (m?.port !== undefined) out.toPort = m.port;
    } else if ("snat" in e || "dnat" in e) {
      const kind = "snat" in e ? "snat" : "dnat";
      const a = e[kind] as { family?: string; addr?: string; port?: number };
      out.kind = kind;
      if (a.addr) out.toAddress = canonicalAddress(a.addr);
      if (a.port !== undefined) out.toPort = a.port;
      if (a.family) out.family = a.family === "ip6" ? "ipv6" : "ipv4";
    } else unknown.push(e);
  }
  if (unknown.length) out.unmanagedExpression = JSON.stringify(unknown);
  return out;
}

// ---- kernel ----------------------------------------------------------------------------

/** Everything `nft -j list table inet nslab` prints, fresh or from the run's snapshot; [] when the table is absent. */
async function tableObjects(netns: string | undefined, fresh: boolean, what: string): Promise<Record<string, any>[]> {
  const args = ["list", "table", "inet", NAT_TABLE];
  try {
    const out = fresh ? await kernel.nftJson<{ nftables: Record<string, unknown>[] }>(args, netns, what) : await kernel.nftSnapshot<{ nftables: Record<string, unknown>[] }>(args, netns, what);
    return out.nftables;
  } catch (err) {
    if (err instanceof NslabError && err.kind === "NotFound") return [];
    throw err;
  }
}

/** Our table's rules, fresh or from the run's snapshot; [] when the table is absent. */
async function tableRules(netns: string | undefined, fresh: boolean, what: string): Promise<NftRule[]> {
  return (await tableObjects(netns, fresh, what)).filter((x) => "rule" in x).map((x) => x.rule as NftRule);
}

/**
 * Runs a list-then-write on the namespace's rules: after the process's earlier ones
 * (in memory) and holding the namespace's cross-process lock (see the file header).
 */
function locked<T>(i: NatInputs, work: () => Promise<T>): Promise<T> {
  return serialized(i.namespace, () => kernel.withNetnsLock(i.namespace, subject(i), work));
}

async function requireNamespace(i: NatInputs, recorded = false): Promise<void> {
  await kernel.requireNetns(i.namespace, subject(i), "", recorded);
}

/** Writes the rule (replacing `old` in the same transaction) and checks it. */
async function write(i: NatInputs, old: NftRule | undefined): Promise<void> {
  const tag = ownerTag(i.__owner);
  const chain = chainOf(i);
  const script = [
    `add table ${TABLE}`,
    `add chain ${TABLE} ${chain} { ${CHAINS[chain]} }`,
    ...(old ? [`delete rule ${TABLE} ${old.chain} handle ${old.handle}`] : []),
    `add rule ${TABLE} ${chain} ${ruleExpression(i)} comment "${tag}"`,
  ].join("\n");
  // Equivalent to: nft -f - <<< "add table inet nslab; add chain ...; add rule ... comment TAG"
  await kernel.nftScript(script + "\n", i.namespace, subject(i));
  const rule = (await tableRules(i.namespace, true, subject(i))).find((r) => r.comment === tag);
  const seen = rule && liveFields(rule);
  const mismatch = rule ? MATCH_FIELDS.find((f) => (seen![f] ?? "") !== (i[f] ?? "")) : "rule";
  if (mismatch || seen?.unmanagedExpression) {
    throw new NslabError(
      "Verification",
      `${subject(i)}: ${mismatch ?? "expression"}: desire '${mismatch && mismatch !== "rule" ? String(i[mismatch]) : ruleExpression(i)}', current '${mismatch && mismatch !== "rule" ? String(seen?.[mismatch]) : "(missing)"}'`,
    );
  }
}

/** Whether a live rule is `i`'s rule exactly: its chain, every field, nothing else. */
function sameRule(rule: NftRule, i: NatInputs): boolean {
  const seen = liveFields(rule);
  return rule.chain === chainOf(i) && !seen.unmanagedExpression && MATCH_FIELDS.every((f) => (seen[f] ?? "") === (i[f] ?? ""));
}

/**
 * Puts a rule this resource took over (adopt) back as it was, comment and all, in place
 * of this resource's (a create that failed after it).
 * Equivalent to: nft -f - <<< "delete rule inet nslab CHAIN handle H; add rule inet nslab CHAIN EXPR [comment C]"
 */
async function giveBack(i: NatInputs, theirs: NftRule): Promise<void> {
  const rules = await tableRules(i.namespace, true, subject(i));
  const ours = rules.find((r) => r.comment === ownerTag(i.__owner));
  // A transaction refused whole deleted nothing: theirs is still there, and stays as it is.
  const still = rules.some((r) => r.handle === theirs.handle && r.chain === theirs.chain);
  const original = { ...i, ...parseRule(theirs) } as NatInputs;
  const script = [
    ...(ours ? [`delete rule ${TABLE} ${ours.chain} handle ${ours.handle}`] : []),
    ...(still ? [] : [`add rule ${TABLE} ${theirs.chain} ${ruleExpression(original)}${theirs.comment !== undefined ? ` comment ${JSON.stringify(theirs.comment)}` : ""}`]),
  ];
  if (script.length) await kernel.nftScript(script.join("\n") + "\n", i.namespace, subject(i));
}

/**
 * What is in the table besides nslab's rules and base chains: anything else keeps it.
 * `metainfo` and the table's own entry are not content.
 */
export function foreignContent(objects: Record<string, any>[]): string[] {
  return objects.flatMap((o) => {
    const [type] = Object.keys(o);
    if (type === "metainfo" || type === "table") return [];
    if (type === "chain" && Object.hasOwn(CHAINS, o.chain.name)) return [];
    if (type === "rule" && isNslabTag(o.rule.comment)) return [];
    return [`${type} ${o[type].name ?? `in chain ${o[type].chain} (handle ${o[type].handle})`}`];
  });
}

/**
 * The connection-tracking entries `old` translated for UDP (a dnat rule with protocol udp
 * or none) are deleted once it is rewritten or removed: the kernel keeps translating a
 * tracked flow as its first packet was, so a client that sends from the same port went
 * on reaching the old target (for up to 180 s of silence) after the forward was moved.
 * Like Kubernetes' kube-proxy, only UDP: an established TCP connection keeps its target
 * until it ends, and new ones take the new rule.
 * Equivalent to: [nsenter --net=NS] conntrack -D [-f ipv6] -p udp [--orig-port-dst PORT] --dst-nat TO
 */
async function forgetUdpFlows(old: NatInputs, strict: boolean): Promise<void> {
  if (old.kind !== "dnat" || !old.toAddress || (old.protocol !== undefined && old.protocol !== "udp")) return;
  const args = [...(old.family === "ipv6" ? ["-f", "ipv6"] : []), "-p", "udp", ...(old.port !== undefined ? ["--orig-port-dst", String(old.port)] : []), "--dst-nat", old.toAddress];
  await kernel.conntrackDelete(args, old.namespace, subject(old)).catch((err) => {
    if (strict) {
      if (err instanceof NslabError && /conntrack is not installed/.test(err.message)) {
        throw new NslabError(err.kind, `${err.message}. The rule is rewritten; conntrack (Debian package conntrack) is needed to end the UDP flows still translated by the old one. Install it and run pulumi up again.`, err.details);
      }
      throw err;
    }
  });
}

/**
 * Deletes our rule in one transaction: with it our base chain when nothing else is in
 * it, and the table when nothing else is in it. Call it holding the lock (locked()).
 */
async function remove(i: NatInputs): Promise<void> {
  const objects = await tableObjects(i.namespace, true, subject(i));
  const rules = objects.filter((x) => "rule" in x).map((x) => x.rule as NftRule);
  const ours = rules.find((r) => r.comment === ownerTag(i.__owner));
  if (!ours) return;
  const others = rules.filter((r) => r !== ours);
  const tableEmpty = others.length === 0 && foreignContent(objects).length === 0;
  const chainEmpty = !others.some((r) => r.chain === ours.chain) && Object.hasOwn(CHAINS, ours.chain);
  const script = tableEmpty
    ? [`delete table ${TABLE}`]
    : [`delete rule ${TABLE} ${ours.chain} handle ${ours.handle}`, ...(chainEmpty ? [`delete chain ${TABLE} ${ours.chain}`] : [])];
  // Equivalent to: nft -f - <<< "delete rule inet nslab CHAIN handle H[; delete chain ...]" (or "delete table inet nslab")
  await kernel.nftScript(script.join("\n") + "\n", i.namespace, subject(i));
}

export const natKind: ResourceKind<NatInputs, NatOutputs> = {
  kind: "NatRule",
  properties: ["namespace", "kind", "source", "destination", "inInterface", "outInterface", "protocol", "port", "toAddress", "toPort", "adopt"],

  check(_olds, news) {
    const c = new Checker();
    const kind = c.string(news.kind, "kind", true);
    if (kind !== undefined && !isUnknown(kind) && !["masquerade", "snat", "dnat"].includes(kind)) {
      c.fail("kind", `kind must be "masquerade", "snat" or "dnat", got ${JSON.stringify(news.kind)}.`);
    }
    const cidr = (value: unknown, prop: string) => {
      const raw = c.string(value, prop, false);
      if (raw === undefined || isUnknown(raw)) return raw;
      const text = raw.includes("/") ? raw : raw.includes(":") ? `${raw}/128` : `${raw}/32`;
      const net = canonicalCidr(text);
      if (!net) return c.fail(prop, `${prop} "${raw}" is not an address or network; write e.g. "192.168.1.0/24".`);
      if (networkOf(net) !== net) return c.fail(prop, `${prop} "${raw}" has host bits set; did you mean "${networkOf(net)}"?`);
      return net;
    };
    const protocol = c.string(news.protocol, "protocol", false);
    if (protocol !== undefined && !isUnknown(protocol) && protocol !== "tcp" && protocol !== "udp") c.fail("protocol", `protocol must be "tcp" or "udp", got ${JSON.stringify(news.protocol)}.`);
    const inputs = compact({
      namespace: c.netns(news.namespace, "namespace"),
      kind: kind as NatKind,
      family: "ipv4" as "ipv4" | "ipv6",
      source: cidr(news.source, "source"),
      destination: cidr(news.destination, "destination"),
      outInterface: c.ifname(news.outInterface, "outInterface", false, true),
      inInterface: c.ifname(news.inInterface, "inInterface", false, true),
      protocol: protocol as "tcp" | "udp" | undefined,
      port: c.integer(news.port, "port", 1, 65535),
      toAddress: c.address(news.toAddress, "toAddress"),
      toPort: c.integer(news.toPort, "toPort", 1, 65535),
      adopt: c.boolean(news.adopt, "adopt", false),
      __owner: String(news.__owner ?? `NatRule:${kind}`),
    });
    const families = new Set([inputs.source, inputs.destination, inputs.toAddress].filter((a) => a && !isUnknown(a)).map((a) => familyOf(a!)));
    if (families.size > 1) c.fail("toAddress", "source, destination and toAddress mix IPv4 and IPv6; a NAT rule translates within one family.");
    if (families.has("ipv6")) inputs.family = "ipv6";
    if ((inputs.kind === "snat" || inputs.kind === "dnat") && !inputs.toAddress && (news.toAddress === undefined || news.toAddress === null)) c.fail("toAddress", `a ${inputs.kind} rule needs toAddress (the address to translate to).`);
    if (inputs.kind === "masquerade" && inputs.toAddress) c.fail("toAddress", "masquerade takes the outgoing interface's address; remove toAddress or use kind \"snat\".");
    if (inputs.toPort !== undefined && !inputs.protocol) c.fail("toPort", "toPort needs protocol (\"tcp\" or \"udp\"): ports exist only for those.");
    if (inputs.port !== undefined && !inputs.protocol) c.fail("port", "port needs protocol (\"tcp\" or \"udp\").");
    if (inputs.kind === "dnat" && inputs.outInterface) c.fail("outInterface", "dnat happens before routing (prerouting): match inInterface, not outInterface.");
    if (inputs.kind !== "dnat" && !isUnknown(inputs.kind) && inputs.inInterface) c.fail("inInterface", `${inputs.kind} happens after routing (postrouting): match outInterface, not inInterface.`);
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    return diffFields(olds as never, news as never, RULES, false);
  },

  async create(i) {
    // Before the lock: a missing namespace gets its own message (and the lock never
    // makes a file in its place, see kernel.withNetnsLock).
    await requireNamespace(i);
    return locked(i, async () => {
      // A rule with this resource's own comment is one an interrupted create made:
      // take it over and converge it (replaced in the same transaction).
      const rules = await tableRules(i.namespace, true, subject(i));
      const existing = rules.find((r) => r.comment === ownerTag(i.__owner));
      // adopt: a rule that is this one exactly, of someone else's, replaced by it the same way.
      const adopted = !existing && i.adopt ? rules.find((r) => sameRule(r, i)) : undefined;
      try {
        await write(i, existing ?? adopted);
      } catch (err) {
        if (adopted) await giveBack(i, adopted).catch(() => undefined);
        else if (!existing) await remove(i).catch(() => undefined);
        throw err;
      }
      return { id: `${i.namespace ?? ""}/${TABLE}/${ownerTag(i.__owner)}`, outs: i };
    });
  },

  async read(id, props) {
    if (props.namespace !== undefined && !(await kernel.hostNetnsExists(props.namespace))) return {};
    const rule = (await tableRules(props.namespace, false, subject(props))).find((r) => r.comment === ownerTag(props.__owner));
    if (!rule) return {};
    const seen = liveFields(rule);
    const inputs: NatInputs = compact({ namespace: props.namespace, adopt: props.adopt, __owner: props.__owner, ...seen }) as NatInputs;
    return { id, props: inputs, inputs };
  },

  async update(_id, olds, news) {
    await requireNamespace(news, true);
    return locked(news, async () => {
      const rules = await tableRules(news.namespace, true, subject(news));
      const existing = rules.find((r) => r.comment === ownerTag(olds.__owner));
      // Gone, and taken over since this resource last wrote it: another resource recorded
      // an adopt of this very rule later (its record on this machine, as for routes) and
      // its rule is there. Writing this one again would make two; adopt takes it back.
      // (An identical rule of another stack made without adopt coexists: not a takeover.)
      const takerOwner = existing
        ? undefined
        : takenOverBy("NatRule", olds.__owner, (o) => o.adopt === true && (o.namespace ?? "") === (olds.namespace ?? "") && sameHost(o.host, kernel.currentHost()) && MATCH_FIELDS.every((f) => (o[f] ?? "") === (olds[f] ?? "")));
      const taker = takerOwner ? rules.find((r) => r.comment === ownerTag(takerOwner)) : undefined;
      if (taker && !news.adopt) {
        throw new NslabError(
          "AlreadyExists",
          `${subject(news)} was taken over by ${ownerLabel(takerOwner!)} (adopt) since this resource last wrote it, and is that one's now. Remove this resource from the program (the rule stays with the other), or set adopt: true to take it back.`,
        );
      }
      await write(news, existing ?? taker);
      if (MATCH_FIELDS.some((f) => olds[f] !== news[f])) await forgetUdpFlows(olds, true);
      return { outs: news };
    });
  },

  async delete(_id, props) {
    if (props.namespace !== undefined && !(await kernel.hostNetnsExists(props.namespace))) return;
    await locked(props, async () => {
      await remove(props);
      // Best effort: a destroy does not fail for want of conntrack (the flows age out).
      await forgetUdpFlows(props, false);
    }).catch(async (err) => {
      // The namespace went while we waited: so did the rule.
      if (props.namespace !== undefined && !(await kernel.hostNetnsExists(props.namespace))) return;
      throw err;
    });
  },
};
