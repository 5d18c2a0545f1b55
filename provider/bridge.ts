/**
 * Bridge: a Linux bridge (a virtual switch) whose ports are veth ends or taps that name
 * it as their `master`. Ownership: nslab's alias on the bridge.
 */
import { mayHaveRun, NslabError } from "./errors";
import { notTakenOver, whoseMark } from "./owned";
import * as kernel from "./kernel";
import { describe } from "./kernel";
import { checkLinkFields, converge, recordingGeneration, linkRules, deleteOwnedLink, findLink, freshLink, LinkSettings, linkInputs, linkOutputs, liveSettings, LiveLink, requireNamespace, restoreAlias, verifyLink } from "./link";
import { CommonInputs, compact, diffFields, FieldRule, ownerTag, ResourceKind, stableMac } from "./resource";
import { Checker } from "./validate";

export interface BridgeInputs extends CommonInputs, Omit<LinkSettings, "master"> {
  stp: boolean;
  vlanFiltering: boolean;
}
export interface BridgeOutputs extends BridgeInputs {
  mac?: string;
  /** Set when the program gave no mac (an adopted bridge keeps its own): `mac` is the live one. */
  macUnset?: true;
  /** What its dependents go by (link.ts generationOf). */
  generation?: string;
}

const RULES: FieldRule[] = [...linkRules({ master: false }), { name: "stp" }, { name: "vlanFiltering" }];

const subject = (i: { name: string; namespace?: string }) => describe("bridge", i.name, i.namespace);

/**
 * Bridge attributes to write, one group each: vlan_filtering first, only when wanted
 * (some kernels lack it), then stp_state (always on a new bridge). An update writes each
 * group as a command of its own, in this order: the kernel takes a bridge's attributes
 * in an order of its own, so one that lacks VLAN filtering would refuse it after taking
 * stp_state from the same command, and the failed update would leave half of it written.
 */
function bridgeAttrs(i: BridgeInputs, live?: LiveLink): string[][] {
  const groups: string[][] = [];
  if ((!live && i.vlanFiltering) || (live && Number(live.info.vlan_filtering ?? 0) !== (i.vlanFiltering ? 1 : 0))) {
    groups.push(["vlan_filtering", i.vlanFiltering ? "1" : "0"]);
  }
  if (!live || Number(live.info.stp_state ?? 0) !== (i.stp ? 1 : 0)) groups.push(["stp_state", i.stp ? "1" : "0"]);
  return groups;
}

function unsupportedVlan(err: unknown, i: BridgeInputs): never {
  if (err instanceof NslabError && err.kind === "Unsupported" && i.vlanFiltering) {
    throw new NslabError("Unsupported", `${subject(i)}: vlanFiltering: this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); set vlanFiltering: false.`);
  }
  throw err;
}

/** Converges and verifies the bridge; `created`: just made with its attributes set. */
async function apply(i: BridgeInputs, created: boolean): Promise<LiveLink> {
  const tag = ownerTag(i.__owner);
  const live = created ? undefined : await freshLink(i.name, i.namespace);
  // Taken over by another resource since this one wrote it (adopt): not taken back.
  if (!i.adopt) notTakenOver(live?.alias, i.__owner, subject(i));
  const groups = created ? [] : bridgeAttrs(i, live);
  if (groups.length) {
    // Equivalent to: ip link set dev NAME type bridge vlan_filtering N; ip link set dev NAME type bridge stp_state N
    await kernel
      .ipBatchRead(groups.map((g) => ["link", "set", "dev", i.name, "type", "bridge", ...g]), i.namespace, subject(i))
      .catch((e) => unsupportedVlan(e, i));
  }
  // Made with its address and MTU (create): not set again.
  const after = verifyLink(i, await converge(i, live, tag, subject(i), created ? { mac: i.mac, mtu: i.mtu } : {}), tag, subject(i));
  if (Number(after.info.stp_state ?? 0) !== (i.stp ? 1 : 0)) {
    throw new NslabError("Verification", `${subject(i)}: stp: desire '${i.stp}', current '${after.info.stp_state}'`);
  }
  return after;
}

const outputs = (i: BridgeInputs, live?: LiveLink, previous?: BridgeOutputs): BridgeOutputs => compact({ ...i, ...linkOutputs(i, live, previous) });

export const bridgeKind: ResourceKind<BridgeInputs, BridgeOutputs> = {
  kind: "Bridge",
  properties: ["name", "namespace", "addresses", "mac", "mtu", "up", "stp", "vlanFiltering", "adopt"],

  check(_olds, news) {
    const c = new Checker();
    const owner = String(news.__owner ?? `Bridge:${news.name}`);
    const inputs = compact({
      // Without a mac of the program's, the bridge gets a stable one of its own: a
      // bridge without one takes its lowest port's MAC, and moves when ports change.
      ...checkLinkFields(c, news, owner, "bridge"),
      stp: c.boolean(news.stp, "stp", false),
      vlanFiltering: c.boolean(news.vlanFiltering, "vlanFiltering", false),
      adopt: c.boolean(news.adopt, "adopt", false),
      __owner: owner,
    });
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    return recordingGeneration(diffFields(olds as never, news as never, RULES), olds);
  },

  async create(i) {
    await requireNamespace(i, subject(i), "");
    const tag = ownerTag(i.__owner);
    const intent = `link-${i.name}`;
    const earlier = await kernel.intentRecord(i.namespace, intent);
    /** The bridge's alias as found, when an existing one is taken over: put back if the create fails. */
    let found: { alias?: string } | undefined;
    const created = await kernel
      .ip(
        // The intent record, then (one request on another host):
        // ip link add name NAME address MAC [mtu M] type bridge stp_state N
        // (adopting, without a mac of the program's, a bridge made here still gets a stable one)
        ["link", "add", "name", i.name, "address", i.mac ?? stableMac(i.__owner, "bridge"), ...(i.mtu ? ["mtu", String(i.mtu)] : []), "type", "bridge", ...bridgeAttrs(i).flat()],
        i.namespace,
        subject(i),
        undefined,
        { before: { netns: i.namespace, object: intent, owner: tag, by: i.__owner } },
      )
      .then(() => true)
      .catch(async (err) => {
        // adopt, or this resource's own bridge (its alias, or its intent when a killed
        // run made it but did not mark it): take it over.
        const live = err instanceof NslabError && err.kind === "AlreadyExists" ? await freshLink(i.name, i.namespace) : undefined;
        if (live && (i.adopt || live.alias === tag || (!live.alias && earlier?.owner === tag))) {
          if (live.kind === "bridge") {
            // Taken over as someone else's (adopt), not as this resource's own interrupted create.
            if (live.alias !== tag && !(!live.alias && earlier?.owner === tag)) found = { alias: live.alias };
            return false;
          }
          await kernel.intentRestore(i.namespace, intent, earlier, tag, subject(i));
          throw new NslabError("AlreadyExists", `${subject(i)}: cannot adopt: "${i.name}" exists but is a ${live?.kind || "plain"} interface, not a bridge.`);
        }
        // A bridge that may have been made all the same (over SSH, a request whose end was
        // not seen) keeps its intent record: the next create takes it over.
        if (live || !mayHaveRun(err)) await kernel.intentRestore(i.namespace, intent, earlier, tag, subject(i));
        // Someone else's: say whose, as the other kinds do.
        if (live) throw new NslabError("AlreadyExists", `${subject(i)} already exists.${whoseMark(live.alias, i.__owner)} Remove it, choose another name, or set adopt: true to take it over.`);
        return unsupportedVlan(err, i);
      });
    let keep = false;
    try {
      const live = await apply(i, created);
      return { id: `${i.namespace ?? ""}/${i.name}`, outs: outputs(i, live) };
    } catch (err) {
      if (created) await kernel.ip(["link", "del", "dev", i.name], i.namespace, subject(i)).catch(() => undefined);
      else if (found) await restoreAlias(i.name, i.namespace, found.alias, subject(i));
      // This resource's own object, left by an interrupted create and taken over: it keeps
      // its mark and its intent record, so that nslab-orphans lists it (a destroy does not
      // know it) and the next create takes it over again.
      else keep = true;
      throw err;
    } finally {
      if (!keep) await kernel.intentDone(i.namespace, intent);
    }
  },

  async read(id, props) {
    const live = await findLink(props.name, props.namespace);
    if (!live || live.kind !== "bridge" || live.alias !== ownerTag(props.__owner)) return {};
    const stated = linkInputs(props);
    const { master: _master, ...settings } = liveSettings(stated, live);
    const inputs: BridgeInputs = compact({
      ...stated,
      ...settings,
      stp: Number(live.info.stp_state ?? 0) !== 0,
      vlanFiltering: Number(live.info.vlan_filtering ?? 0) !== 0,
    });
    return { id, props: outputs(inputs, live, props), inputs };
  },

  async update(_id, olds, news) {
    await requireNamespace(news, subject(news), "", true);
    return { outs: outputs(news, await apply(news, false), olds) };
  },

  async delete(_id, props) {
    await deleteOwnedLink(props.name, props.namespace, "bridge", ownerTag(props.__owner), subject(props));
  },
};
