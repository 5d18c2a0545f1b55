/**
 * Vxlan: a VXLAN tunnel endpoint (an Ethernet segment carried in UDP over an underlay),
 * usually a port of a bridge, so that two bridges whose hosts can reach each other over
 * IP become one layer-2 segment. Ownership: nslab's alias, and an intent record written
 * just before `ip link add` (a run killed between the add and the alias leaves an
 * unmarked device that this resource's next create takes over, as a Bridge's does).
 *
 * Measured on the kernel nslab runs on (6.18): `ip link set NAME type vxlan ...` changes
 * local, remote, group, dev and learning of a live device (up or down); it refuses to
 * change the VNI ("Cannot change VNI"), the port ("Cannot change port") or the address
 * family of the endpoints ("New group address family does not match old group"), and
 * has no way to take `dev` away. Those replace the device.
 */
import * as ipaddr from "ipaddr.js";
import { mayHaveRun, NslabError } from "./errors";
import * as kernel from "./kernel";
import { describe } from "./kernel";
import { notTakenOver, whoseMark } from "./owned";
import { checkLinkFields, converge, recordingGeneration, linkRules, deleteOwnedLink, explainMaster, findLink, freshLink, LinkSettings, linkInputs, linkOutputs, liveSettings, LiveLink, requireNamespace, restoreAlias, verifyLink } from "./link";
import { CommonInputs, compact, diffFields, DiffResult, FieldRule, LinkDependentInputs, LINKS_RULE, linksInput, ownerTag, ResourceKind } from "./resource";
import { Checker, familyOf, isUnknown } from "./validate";

export interface VxlanInputs extends CommonInputs, LinkSettings, LinkDependentInputs {
  /** VXLAN network identifier, 1-16777215. */
  vni: number;
  /** Source address of the encapsulated packets (an address of this namespace). */
  local?: string;
  /** The one peer (unicast). Exactly one of remote and group. */
  remote?: string;
  /** A multicast group of peers (needs device). */
  group?: string;
  /** Underlay interface the packets leave by. */
  device?: string;
  /** UDP destination port. */
  dstPort: number;
  /** Learn remote MACs from received packets. */
  learning: boolean;
}
export interface VxlanOutputs extends VxlanInputs {
  /** Set when the program gave no mac (an adopted device keeps its own): `mac` is the live one. */
  macUnset?: true;
  /** What its dependents go by (link.ts generationOf). */
  generation?: string;
}

/** The VXLAN attributes nslab manages, as compared with the kernel's. */
type Tunnel = Pick<VxlanInputs, "vni" | "local" | "remote" | "group" | "device" | "dstPort" | "learning">;

export const VNI_MAX = 16777215;
export const VXLAN_PORT = 4789;

const RULES: FieldRule[] = [
  ...linkRules({ master: true }),
  // The kernel refuses: "Cannot change VNI", "Cannot change port".
  { name: "vni", replace: true },
  { name: "dstPort", replace: true },
  // Changed in place (`ip link set NAME type vxlan local A remote B | group G dev D`),
  // except a change of address family or a removal, which replace (see diff).
  { name: "local" },
  { name: "remote" },
  { name: "group" },
  { name: "device" },
  { name: "learning" },
  // Its underlay device made anew takes it along (the kernel deletes a VXLAN device with
  // its lower device): made again by update.
  LINKS_RULE,
];

const subject = (i: { name: string; namespace?: string }) => describe("vxlan", i.name, i.namespace);

/**
 * The error for a create the kernel refused because another VXLAN device of the
 * namespace has its vni and port ("A VXLAN device with the specified VNI already
 * exists"): it names that device, and what to change, not the name.
 */
async function vniTaken(i: VxlanInputs): Promise<NslabError> {
  const other = (await kernel.links(i.namespace)).find(
    (l) => l.linkinfo?.info_kind === "vxlan" && Number(l.linkinfo.info_data?.id) === i.vni && Number(l.linkinfo.info_data?.port) === i.dstPort,
  );
  const them = other ? `vxlan "${other.ifname}"` : "another vxlan device";
  return new NslabError(
    "AlreadyExists",
    `${subject(i)}: ${them} there already uses vni ${i.vni} on UDP port ${i.dstPort}, and the kernel takes one device per vni and port in a namespace. Give this one another vni (the same on its other end; for a HostLink, its vni) or dstPort${other ? `, or remove "${other.ifname}"` : ""}.`,
  );
}

const isAddress = (v: unknown): v is string => typeof v === "string" && !isUnknown(v) && ipaddr.isValid(v);
const familyOfAny = (...values: unknown[]) => values.filter(isAddress).map((v) => familyOf(v))[0];

/**
 * The endpoint fields that cannot change in place: the kernel refuses another address
 * family, and has no command that takes local or dev away or leaves no remote/group.
 */
export function endpointReplaces(olds: Partial<Tunnel>, news: Partial<Tunnel>): string[] {
  const out: string[] = [];
  const oldFamily = familyOfAny(olds.local, olds.remote, olds.group);
  const newFamily = familyOfAny(news.local, news.remote, news.group);
  if (oldFamily && newFamily && oldFamily !== newFamily) {
    for (const f of ["local", "remote", "group"] as const) if ((olds[f] ?? "") !== (news[f] ?? "")) out.push(f);
  }
  if (olds.local !== undefined && news.local === undefined && !out.includes("local")) out.push("local");
  if (olds.device !== undefined && news.device === undefined) out.push("device");
  return out;
}

/** The tunnel as the kernel has it (info_data of `ip -d -j link show`). */
function liveTunnel(live: LiveLink): Tunnel {
  const addr = (v: unknown) => (isAddress(v) ? canonical(v) : undefined);
  return {
    vni: Number(live.info.id),
    local: addr(live.info.local ?? live.info.local6),
    remote: addr(live.info.remote ?? live.info.remote6),
    group: addr(live.info.group ?? live.info.group6),
    device: typeof live.info.link === "string" ? live.info.link : undefined,
    dstPort: Number(live.info.port),
    learning: live.info.learning !== false,
  };
}

/**
 * The tunnel with its peer only while frames for unknown MACs go there: a remote or
 * group whose default forwarding entry was deleted (`bridge fdb del 00:00:00:00:00:00
 * dev NAME dst PEER`) still shows in `ip -d link`, but the device sends nothing to it,
 * so it is read as unset (drift, which update repairs: restoreDefault).
 */
async function forwardedTunnel(t: Tunnel, name: string, netns: string | undefined): Promise<Tunnel> {
  if (t.remote === undefined && t.group === undefined) return t;
  if (await forwarding(t, name, netns)) return t;
  return t.remote !== undefined ? { ...t, remote: undefined } : { ...t, group: undefined };
}

/**
 * Whether the device has the default forwarding entry the kernel makes for its remote or
 * group: to that address, by its underlay device (or none), on its own port and vni.
 */
async function forwarding(t: Tunnel, name: string, netns: string | undefined): Promise<boolean> {
  const peer = t.remote ?? t.group;
  const entries = await kernel.fdbDefaults(name, netns, subject({ name, namespace: netns }));
  return entries.some((e) => isAddress(e.dst) && canonical(e.dst) === canonical(peer!) && e.via === t.device && e.port === undefined && e.vni === undefined);
}

/** Puts back the default forwarding entry of the device's remote or group when it is missing (see forwardedTunnel). */
async function restoreDefault(i: VxlanInputs): Promise<void> {
  const peer = i.remote ?? i.group;
  if (peer === undefined || (await forwarding(i, i.name, i.namespace))) return;
  await kernel.fdbAppendDefault(i.name, peer, i.device, i.namespace, subject(i));
}

function canonical(v: string): string {
  const a = ipaddr.parse(v);
  return a.kind() === "ipv6" ? (a as ipaddr.IPv6).toRFC5952String() : a.toString();
}

/** The `ip link ... type vxlan` attributes that can be given at create and at change. */
function endpointAttrs(t: Tunnel): string[] {
  return [
    ...(t.local ? ["local", t.local] : []),
    ...(t.remote ? ["remote", t.remote] : []),
    ...(t.group ? ["group", t.group] : []),
    ...(t.device ? ["dev", t.device] : []),
    t.learning ? "learning" : "nolearning",
  ];
}

const TUNNEL_FIELDS = ["vni", "local", "remote", "group", "device", "dstPort", "learning"] as const;

/** The first tunnel field whose live value is not the desired one. */
function tunnelMismatch(want: Tunnel, have: Tunnel): (typeof TUNNEL_FIELDS)[number] | undefined {
  return TUNNEL_FIELDS.find((f) => (want[f] ?? "") !== (have[f] ?? ""));
}

/** Converges and verifies the device; `created`: just made with its attributes set; `seen`: read just before. */
async function apply(i: VxlanInputs, created: boolean, seen?: LiveLink): Promise<LiveLink> {
  const tag = ownerTag(i.__owner);
  let live = created ? undefined : (seen ?? (await freshLink(i.name, i.namespace)));
  const before = live && liveTunnel(live);
  if (live && before && tunnelMismatch(i, before)) {
    // Equivalent to: ip link set dev NAME type vxlan [local A] [remote B | group G] [dev D] [no]learning
    await kernel.ip(["link", "set", "dev", i.name, "type", "vxlan", ...endpointAttrs(i)], i.namespace, subject(i));
    // What it learned was learned by the old way to its peers (the peer re-addressed, say):
    // forgotten, so that the first frames take the new one (kernel.fdbForgetLearned).
    if ((["remote", "group", "device"] as const).some((f) => (i[f] ?? "") !== (before[f] ?? ""))) await kernel.fdbForgetLearned(i.name, i.namespace, subject(i));
    live = await freshLink(i.name, i.namespace);
  }
  // Made with its address and MTU (create): not set again.
  const after = await converge(i, live, tag, subject(i), created ? { mac: i.mac, mtu: i.mtu } : {}).catch(async (err) => {
    throw await explainMaster(err, i, subject(i), "");
  });
  const verified = verifyLink(i, after, tag, subject(i));
  // A device just made has the entry the kernel adds with it.
  if (!created) await restoreDefault(i);
  const have = liveTunnel(verified);
  const wrong = tunnelMismatch(i, have);
  if (wrong) throw new NslabError("Verification", `${subject(i)}: ${wrong}: desire '${String(i[wrong] ?? "(none)")}', current '${String(have[wrong] ?? "(none)")}'`);
  return verified;
}

const outputs = (i: VxlanInputs, live?: LiveLink, previous?: VxlanOutputs): VxlanOutputs => compact(linkOutputs(i, live, previous)) as VxlanOutputs;

/** Validates vni, endpoints, device and port; fills defaults. */
function checkTunnel(c: Checker, news: Record<string, unknown>): Tunnel {
  const vni = c.integer(news.vni, "vni", 1, VNI_MAX);
  if (news.vni === undefined || news.vni === null) c.fail("vni", `vni is required: the VXLAN network identifier, an integer from 1 to ${VNI_MAX}, the same on every end of the segment.`);
  const t: Tunnel = {
    vni: vni as number,
    local: c.address(news.local, "local"),
    remote: c.address(news.remote, "remote"),
    group: c.address(news.group, "group"),
    device: c.ifname(news.device, "device", false, true),
    dstPort: c.integer(news.dstPort, "dstPort", 1, 65535) ?? VXLAN_PORT,
    learning: c.boolean(news.learning, "learning", true),
  };
  const multicast = (a: string) => ipaddr.parse(a).range() === "multicast";
  const known = (v: unknown): v is string => isAddress(v);
  if (known(t.remote) && known(t.group)) {
    c.fail("group", "give remote (the one peer, unicast) or group (a multicast group of peers), not both; remove one.");
  } else if (t.remote === undefined && t.group === undefined) {
    // A device with neither carries nothing until someone adds FDB entries by hand
    // (`bridge fdb append 00:00:00:00:00:00 dev NAME dst PEER`), which nslab does not
    // manage: refuse it rather than build a tunnel that silently drops every frame.
    c.fail("remote", "set remote (the peer's underlay address) or group (a multicast group with device); a VXLAN device with neither has no peer to send to.");
  }
  if (known(t.remote) && multicast(t.remote)) c.fail("remote", `remote "${t.remote}" is a multicast address; use group for a multicast group (with device), or give the peer's unicast address.`);
  if (known(t.group) && !multicast(t.group)) c.fail("group", `group "${t.group}" is not a multicast address (224.0.0.0/4 or ff00::/8); use remote for a single unicast peer.`);
  if (known(t.group) && t.device === undefined) c.fail("device", "device is required with group: name the underlay interface that joins the multicast group.");
  if (known(t.local) && multicast(t.local)) c.fail("local", `local "${t.local}" is a multicast address; give an address of this namespace.`);
  const peer = known(t.remote) ? t.remote : known(t.group) ? t.group : undefined;
  if (known(t.local) && peer && familyOf(t.local) !== familyOf(peer)) {
    c.fail("local", `local "${t.local}" is ${familyOf(t.local)} but ${known(t.remote) ? "remote" : "group"} "${peer}" is ${familyOf(peer)}; the tunnel's endpoints must be of one family.`);
  }
  return t;
}

export const vxlanKind: ResourceKind<VxlanInputs, VxlanOutputs> = {
  kind: "Vxlan",
  properties: ["name", "namespace", "vni", "local", "remote", "group", "device", "dstPort", "learning", "master", "mtu", "addresses", "mac", "up", "adopt", "__links"],

  check(_olds, news) {
    const c = new Checker();
    const owner = String(news.__owner ?? `Vxlan:${news.name}`);
    const inputs = compact({
      ...checkLinkFields(c, news, owner, "vxlan"),
      ...checkTunnel(c, news),
      master: c.ifname(news.master, "master", false),
      adopt: c.boolean(news.adopt, "adopt", false),
      __links: linksInput(news.__links),
      __owner: owner,
    });
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news): DiffResult {
    const d = recordingGeneration(diffFields(olds as never, news as never, RULES), olds);
    const extra = endpointReplaces(olds, news).filter((f) => !d.replaces.includes(f));
    if (!extra.length) return d;
    const replaces = [...d.replaces, ...extra];
    return { changes: true, replaces, stables: d.stables, deleteBeforeReplace: true };
  },

  async create(i) {
    await requireNamespace(i, subject(i), "");
    const tag = ownerTag(i.__owner);
    const intent = `link-${i.name}`;
    const earlier = await kernel.intentRecord(i.namespace, intent);
    // A device of someone else's being adopted: its alias, given back if the create fails.
    let found: { alias?: string } | undefined;
    const created = await kernel
      .ip(
        // The intent record, then (one request on another host):
        // ip link add name NAME address MAC [mtu M] type vxlan id VNI
        //   [local A] [remote B | group G] [dev D] dstport P [no]learning
        [
          "link", "add", "name", i.name,
          ...(i.mac ? ["address", i.mac] : []),
          ...(i.mtu ? ["mtu", String(i.mtu)] : []),
          "type", "vxlan", "id", String(i.vni), "dstport", String(i.dstPort), ...endpointAttrs(i),
        ],
        i.namespace,
        subject(i),
        undefined,
        { before: { netns: i.namespace, object: intent, owner: tag, by: i.__owner } },
      )
      .then(() => true)
      .catch(async (err) => {
        // Over SSH, a request whose end was not seen: a device that may have been made
        // all the same keeps its intent record, so the next create takes it over.
        if (mayHaveRun(err)) throw err;
        const live = await freshLink(i.name, i.namespace).catch(() => undefined);
        const refuse = async (e: unknown) => {
          await kernel.intentRestore(i.namespace, intent, earlier, tag, subject(i));
          return Promise.reject(e);
        };
        if (!live) {
          // Not the name: the vni and port, which the kernel gives one device per namespace.
          if (/VNI already exists/i.test(String(err))) return refuse(await vniTaken(i).catch(() => err));
          return refuse(err);
        }
        // adopt, or this resource's own device (its alias, or its intent when a killed
        // run made it but did not mark it): take it over, if it matches.
        const mine = live.alias === tag || (!live.alias && earlier?.owner === tag);
        if (!i.adopt && !mine) return refuse(new NslabError("AlreadyExists", `${subject(i)} already exists.${whoseMark(live.alias, i.__owner)} Remove it, choose another name, or set adopt: true to take it over.`));
        if (live.kind !== "vxlan") return refuse(new NslabError("AlreadyExists", `${subject(i)}: cannot adopt: "${i.name}" exists but is a ${live.kind || "plain"} interface, not a vxlan device.`));
        const have = liveTunnel(live);
        // vni and port cannot be changed on a live device: adopt only a matching one.
        for (const f of ["vni", "dstPort"] as const) {
          if (have[f] !== i[f]) return refuse(new NslabError("AlreadyExists", `${subject(i)}: cannot adopt: ${f}: desire '${i[f]}', current '${have[f]}' (the kernel cannot change it; delete the device or match it).`));
        }
        if (!mine) found = { alias: live.alias };
        return false;
      });
    let gone = true;
    try {
      const live = await apply(i, created);
      return { id: `${i.namespace ?? ""}/${i.name}`, outs: outputs(i, live) };
    } catch (err) {
      // Transactional: a device made here goes again; an adopted one is left, with its
      // own alias back.
      if (created) gone = await kernel.ip(["link", "del", "dev", i.name], i.namespace, subject(i)).then(() => true, () => false);
      else if (found) await restoreAlias(i.name, i.namespace, found.alias, subject(i));
      // This resource's own object, left by an interrupted create and taken over: it keeps
      // its mark and its intent record, so that nslab-orphans lists it (a destroy does not
      // know it) and the next create takes it over again.
      else gone = false;
      throw err;
    } finally {
      // Marked, or removed: the intent record goes. A device whose removal failed keeps it.
      if (gone) await kernel.intentDone(i.namespace, intent);
    }
  },

  async read(id, props) {
    const live = await findLink(props.name, props.namespace);
    if (!live || live.kind !== "vxlan" || live.alias !== ownerTag(props.__owner)) return {};
    const stated = linkInputs(props);
    const t = await forwardedTunnel(liveTunnel(live), props.name, props.namespace);
    const inputs: VxlanInputs = compact({ ...stated, ...liveSettings(stated, live), ...t });
    return { id, props: outputs(inputs, live, props), inputs };
  },

  async update(_id, olds, news) {
    await requireNamespace(news, subject(news), "", true);
    const live = await freshLink(news.name, news.namespace);
    if (!live) {
      // The kernel deletes a VXLAN device with its lower device: its underlay interface
      // made anew (a generation in __links changed) took it along, so it is made again.
      if (news.device !== undefined && diffFields(olds as never, news as never, [LINKS_RULE]).changes) return { outs: (await vxlanKind.create(news)).outs };
      throw new NslabError("NotFound", `${subject(news)} is in the stack's state but not in the kernel (deleted by hand, or with its underlay device): run \`pulumi up --refresh\` to make it again.`);
    }
    if (!news.adopt) notTakenOver(live.alias, news.__owner, subject(news));
    return { outs: outputs(news, await apply(news, false, live), olds) };
  },

  async delete(_id, props) {
    await deleteOwnedLink(props.name, props.namespace, "vxlan", ownerTag(props.__owner), subject(props));
  },
};
