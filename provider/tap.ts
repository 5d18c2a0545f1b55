/**
 * TapDevice: a persistent tap (layer-2 frames) or tun (layer-3 packets) interface that
 * a user-space program opens through /dev/net/tun. Ownership: nslab's alias.
 */
import { mayHaveRun, NslabError } from "./errors";
import * as kernel from "./kernel";
import { describe } from "./kernel";
import { notTakenOver, whoseMark } from "./owned";
import { checkLinkFields, converge, recordingGeneration, linkRules, deleteOwnedLink, explainMaster, findLink, freshLink, LinkSettings, linkInputs, linkOutputs, liveSettings, LiveLink, requireNamespace, restoreAlias, verifyLink } from "./link";
import { CommonInputs, compact, diffFields, FieldRule, ownerTag, ResourceKind } from "./resource";
import { Checker, isUnknown } from "./validate";

export interface TapInputs extends CommonInputs, LinkSettings {
  mode: "tap" | "tun";
  owner?: number;
  group?: number;
  multiQueue: boolean;
}
export interface TapOutputs extends TapInputs {
  /** Set when the program gave no mac (adopted taps keep theirs): `mac` is the live one. */
  macUnset?: true;
  /** What its dependents go by (link.ts generationOf). */
  generation?: string;
}

const RULES: FieldRule[] = [
  ...linkRules({ master: true }),
  { name: "mode", replace: true },
  // The kernel sets owner, group and queues only when the device is made (TUNSETIFF).
  { name: "owner", replace: true },
  { name: "group", replace: true },
  { name: "multiQueue", replace: true },
];

const ID_MAX = 4294967294;
const subject = (i: { name: string; namespace?: string; mode?: string }) => describe(i.mode ?? "tap", i.name, i.namespace);

/**
 * `ip -d` prints owner and group as names when the host's name service has them: map
 * back to ids, on the device's host (getent there, never this machine's /etc files).
 */
async function numericId(value: unknown, database: "passwd" | "group", subject: string): Promise<number | undefined> {
  if (value === undefined || value === null || value === "") return undefined;
  if (/^\d+$/.test(String(value))) return Number(value);
  return kernel.accountId(database, String(value), subject);
}

async function liveTap(live: LiveLink, subject: string) {
  return {
    mode: String(live.info.type ?? "") as "tap" | "tun",
    owner: await numericId(live.info.user, "passwd", subject),
    group: await numericId(live.info.group, "group", subject),
    multiQueue: live.info.multi_queue === true,
  };
}

/** Converges and verifies the device; `created`: just made, nothing to read first. */
async function apply(i: TapInputs, created: boolean): Promise<LiveLink> {
  const tag = ownerTag(i.__owner);
  const live = created ? undefined : await freshLink(i.name, i.namespace);
  // Taken over by another resource since this one wrote it (adopt): not taken back.
  if (!i.adopt) notTakenOver(live?.alias, i.__owner, subject(i));
  const after = await converge(i, live, tag, subject(i)).catch(async (err) => {
    throw await explainMaster(err, i, subject(i), "");
  });
  return verifyLink(i, after, tag, subject(i));
}

export const tapKind: ResourceKind<TapInputs, TapOutputs> = {
  kind: "TapDevice",
  properties: ["name", "namespace", "mode", "owner", "group", "multiQueue", "addresses", "mac", "master", "mtu", "up", "adopt"],

  check(_olds, news) {
    const c = new Checker();
    let mode = c.string(news.mode, "mode", false) ?? "tap";
    if (mode !== "tap" && mode !== "tun" && !isUnknown(mode)) mode = c.fail("mode", `mode must be "tap" (Ethernet frames) or "tun" (IP packets), got ${JSON.stringify(news.mode)}.`) ?? "tap";
    const owner = String(news.__owner ?? `TapDevice:${news.name}`);
    const inputs = compact({
      // A tap gets a stable MAC unless given; a tun has none.
      ...checkLinkFields(c, news, owner, mode === "tap" ? "tap" : undefined),
      mode: mode as "tap" | "tun",
      owner: c.integer(news.owner, "owner", 0, ID_MAX),
      group: c.integer(news.group, "group", 0, ID_MAX),
      multiQueue: c.boolean(news.multiQueue, "multiQueue", false),
      master: c.ifname(news.master, "master", false),
      adopt: c.boolean(news.adopt, "adopt", false),
      __owner: owner,
    });
    if (inputs.mode === "tun" && inputs.mac) c.fail("mac", "a tun device carries IP packets and has no MAC address; remove mac or use mode \"tap\".");
    if (inputs.mode === "tun" && inputs.master) c.fail("master", "a tun device (layer 3) cannot be a bridge port; use mode \"tap\" or remove master.");
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    return recordingGeneration(diffFields(olds as never, news as never, RULES), olds);
  },

  async create(i) {
    await requireNamespace(i, subject(i), "");
    let created = true;
    /** The device's alias as found, when an existing one is taken over: put back if the create fails. */
    let found: { alias?: string } | undefined;
    const tag = ownerTag(i.__owner);
    const intent = `link-${i.name}`;
    const earlier = await kernel.intentRecord(i.namespace, intent);
    try {
      // The intent record, then (one request on another host):
      // ip [-n NS] tuntap add dev NAME mode tap|tun [user U] [group G] [multi_queue]
      await kernel.ip(
        [
          "tuntap", "add", "dev", i.name, "mode", i.mode,
          ...(i.owner !== undefined ? ["user", String(i.owner)] : []),
          ...(i.group !== undefined ? ["group", String(i.group)] : []),
          ...(i.multiQueue ? ["multi_queue"] : []),
        ],
        i.namespace,
        subject(i),
        undefined,
        { before: { netns: i.namespace, object: intent, owner: tag, by: i.__owner } },
      );
    } catch (err) {
      // Over SSH, a request whose end was not seen: a device that may have been made all
      // the same keeps its intent record, so the next create takes it over.
      if (mayHaveRun(err)) throw err;
      const live = await freshLink(i.name, i.namespace);
      // adopt, or this resource's own device (its alias, or its intent when a killed run
      // made it but did not mark it): take it over, if it matches.
      const mine = live?.alias === tag || (!live?.alias && earlier?.owner === tag);
      if (!live || (!i.adopt && !mine)) await kernel.intentRestore(i.namespace, intent, earlier, tag, subject(i));
      if (!live) throw err;
      if (!i.adopt && !mine) {
        throw new NslabError("AlreadyExists", `${subject(i)} already exists.${whoseMark(live.alias, i.__owner)} Remove it, choose another name, or set adopt: true to take it over.`);
      }
      const have = await liveTap(live, subject(i));
      const want = { mode: i.mode, owner: i.owner, group: i.group, multiQueue: i.multiQueue };
      const differs = (Object.keys(want) as (keyof typeof want)[]).find((k) => want[k] !== undefined && want[k] !== have[k]);
      if (live.kind !== "tun" || differs) {
        await kernel.intentRestore(i.namespace, intent, earlier, tag, subject(i));
        throw new NslabError("AlreadyExists", `${subject(i)}: cannot adopt: the existing device does not match (${differs ?? "kind"}: desire '${String(differs ? want[differs] : "tun")}', current '${String(differs ? have[differs] : live.kind)}').`);
      }
      created = false;
      // Taken over as someone else's (adopt), not as this resource's own interrupted create.
      if (!mine) found = { alias: live.alias };
    }
    let keep = false;
    try {
      const live = await apply(i, created);
      return { id: `${i.namespace ?? ""}/${i.name}`, outs: compact(linkOutputs(i, live)) as TapOutputs };
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
    if (!live || live.kind !== "tun" || live.alias !== ownerTag(props.__owner)) return {};
    const t = await liveTap(live, subject(props));
    const stated = linkInputs(props);
    const inputs: TapInputs = compact({
      ...stated,
      ...liveSettings(stated, live),
      mode: t.mode,
      owner: props.owner === undefined ? undefined : t.owner,
      group: props.group === undefined ? undefined : t.group,
      multiQueue: t.multiQueue,
    });
    return { id, props: compact(linkOutputs(inputs, live, props)) as TapOutputs, inputs };
  },

  async update(_id, olds, news) {
    await requireNamespace(news, subject(news), "", true);
    return { outs: compact(linkOutputs(news, await apply(news, false), olds)) as TapOutputs };
  },

  async delete(_id, props) {
    await deleteOwnedLink(props.name, props.namespace, "tun", ownerTag(props.__owner), subject(props));
  },
};
