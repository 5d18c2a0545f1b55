/**
 * IpForwarding: the IPv4 and/or IPv6 forwarding switches of one namespace
 * (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding). It records what it found and
 * puts that back on delete, so destroying a lab leaves the switches as they were.
 *
 * The value to restore is kept twice: in Pulumi's state (outputs previousIpv4/6) and
 * on the machine, in /run/nslab/netns-INODE/forwarding-ipv4.json (kernel.writeRecord),
 * written *before* the switch is set. When a run is killed after setting the switch
 * but before Pulumi recorded it (or with PULUMI_SKIP_CHECKPOINTS, which writes state
 * only at the end), the next create finds that record, sees it is its own (same owner
 * tag) and still describes the switch (the switch holds the value it set), and restores
 * the machine's value from it instead of recording nslab's own "1". The record lives
 * on a tmpfs like the switch itself (both are gone at reboot), is keyed by the
 * namespace's inode (unique among live namespaces; deleting a namespace with nslab
 * removes its records), and is removed when the switch is restored. A live record of
 * *another* resource means another IpForwarding manages the switch: refused unless
 * adopt: true, which inherits that record's value to restore. The record says whose the
 * switch is: a resource whose switch another took over (adopt, or a create after this
 * one's value was changed by hand) neither restores it on delete nor writes it on update
 * (refused, unless adopt: true takes it back). Every create, update and delete holds the
 * namespace's lock (kernel.withNetnsLock), so two stacks never both record the same "0".
 */
import { NslabError } from "./errors";
import * as kernel from "./kernel";
import { ownerLabel } from "./owned";
import { CommonInputs, compact, diffFields, FieldRule, ownerTag, ResourceKind, resourceNameOf } from "./resource";
import { Checker } from "./validate";

export const SWITCHES = { ipv4: "net.ipv4.ip_forward", ipv6: "net.ipv6.conf.all.forwarding" } as const;
type Family = keyof typeof SWITCHES;

export interface ForwardingInputs extends CommonInputs {
  namespace?: string;
  /** Desired state; undefined leaves the switch alone. */
  ipv4?: boolean;
  ipv6?: boolean;
}
export interface ForwardingOutputs extends ForwardingInputs {
  /** What the switches were before nslab touched them ("0" or "1"), restored on delete. */
  previousIpv4?: string;
  previousIpv6?: string;
}

const RULES: FieldRule[] = [{ name: "namespace", replace: true }, { name: "ipv4" }, { name: "ipv6" }];
const FAMILIES: Family[] = ["ipv4", "ipv6"];
const prevKey = (f: Family) => (f === "ipv4" ? "previousIpv4" : "previousIpv6") as "previousIpv4" | "previousIpv6";
const subject = (i: ForwardingInputs) => `IP forwarding in ${i.namespace ? `namespace "${i.namespace}"` : "the program's namespace"}${kernel.where()}`;

/** What is kept on the machine for one switch while nslab manages it. */
interface SwitchRecord {
  /** ownerTag of the resource that manages the switch. */
  owner: string;
  /** The machine's value before nslab, put back on delete. */
  previous: string;
  /** The value nslab set; a record whose switch no longer holds it is stale. */
  set: string;
  /** The resource's owner string (PROJECT/STACK@BACKEND/KIND/NAME), for nslab-orphans. */
  by?: string;
}
const recordName = (f: Family) => `forwarding-${f}`;

/**
 * The value to restore for one switch about to be managed by `i`: the machine's, from
 * a live record of an earlier, interrupted create of this resource (or of another
 * resource, with adopt), else the current value. Refuses another resource's switch.
 */
async function previousValue(f: Family, i: ForwardingInputs): Promise<string> {
  const current = await readSwitch(f, i);
  const record = await kernel.hostReadRecord<SwitchRecord>(i.namespace, recordName(f));
  if (!record || record.set !== current) return current;
  if (record.owner !== ownerTag(i.__owner) && !i.adopt) {
    throw new NslabError(
      "AlreadyExists",
      `${subject(i)}: ${f} forwarding already exists: ${record.by ? ownerLabel(record.by) : `another nslab resource (${record.owner})`} set it to '${record.set}' and will restore '${record.previous}'. Delete that resource, or set adopt: true to take the switch over.${componentHint(i)}`,
    );
  }
  return record.previous;
}

/**
 * For the IpForwarding a NatGateway makes (NAME-forwarding), which takes no `adopt`: how
 * to leave the switch to the other resource instead.
 */
function componentHint(i: ForwardingInputs): string {
  const name = resourceNameOf(i.__owner) ?? "";
  if (!name.endsWith("-forwarding")) return "";
  const component = name.slice(0, -"-forwarding".length);
  return ` If this is the IpForwarding of NatGateway "${component}" (which takes no adopt), give that component forwarding: false instead: the switch then stays the other resource's, and is restored (forwarding off) when that one is destroyed, so this lab depends on it.`;
}

/** Records the value to restore on the machine, before the switch is touched. */
async function keepRecord(f: Family, i: ForwardingInputs, previous: string): Promise<void> {
  await kernel.hostWriteRecord(i.namespace, recordName(f), { owner: ownerTag(i.__owner), previous, set: i[f] ? "1" : "0", by: i.__owner } satisfies SwitchRecord, subject(i));
}

/** The record of another resource kept for the switch: that one manages it now. */
async function otherRecord(f: Family, i: ForwardingInputs): Promise<SwitchRecord | undefined> {
  const record = await kernel.hostReadRecord<SwitchRecord>(i.namespace, recordName(f));
  return record && record.owner !== ownerTag(i.__owner) ? record : undefined;
}

/**
 * Puts one switch back to `previous` and drops the record, unless another resource's
 * record says the switch is that one's now: then both are left to it.
 */
async function restoreSwitch(f: Family, props: ForwardingInputs, previous: string): Promise<void> {
  const record = await kernel.hostReadRecord<SwitchRecord>(props.namespace, recordName(f));
  if (record && record.owner !== ownerTag(props.__owner)) return;
  await kernel.sysctlWrite(SWITCHES[f], previous, props.namespace, subject(props));
  if (record) await kernel.hostRemoveRecord(props.namespace, recordName(f));
}

async function readSwitch(f: Family, i: ForwardingInputs): Promise<string> {
  return kernel.sysctlRead(SWITCHES[f], i.namespace, subject(i));
}

/**
 * Refuses to switch IPv6 forwarding on where the namespace has default routes learnt
 * from router advertisements on an interface whose accept_ra is not 2: the kernel
 * deletes them at once (and ignores advertisements from then on), which would cut the
 * machine's IPv6 way out (and an SSH session over it). Nothing is written.
 */
async function requireNoRaDefaults(i: ForwardingInputs): Promise<void> {
  if (i.ipv6 !== true || (await readSwitch("ipv6", i)) === "1") return;
  const learnt = (await kernel.routes(i.namespace)).filter((r) => r.family === "ipv6" && r.dst === "default" && r.protocol === "ra" && r.dev);
  for (const dev of [...new Set(learnt.map((r) => r.dev!))]) {
    const acceptRa = await kernel.sysctlRead(`net.ipv6.conf.${dev.replace(/\./g, "/")}.accept_ra`, i.namespace, subject(i));
    if (acceptRa === "2") continue;
    throw new NslabError(
      "AlreadyExists",
      `${subject(i)}: ipv6: switching IPv6 forwarding on would make the kernel delete the default route on "${dev}" learnt from a router advertisement (accept_ra is ${acceptRa}; with forwarding on, only 2 keeps it), cutting this machine's IPv6 way out. Set net.ipv6.conf.${dev}.accept_ra=2 first (sysctl -w), or forward IPv6 in a namespace of the lab instead.`,
    );
  }
}

/** Sets each managed switch and checks it took. */
async function apply(i: ForwardingInputs): Promise<void> {
  for (const f of FAMILIES) {
    const want = i[f];
    if (want === undefined) continue;
    const value = want ? "1" : "0";
    // Equivalent to: ip netns exec NS sysctl -w net.ipv4.ip_forward=1
    await kernel.sysctlWrite(SWITCHES[f], value, i.namespace, subject(i));
    const seen = await readSwitch(f, i);
    if (seen !== value) throw new NslabError("Verification", `${subject(i)}: ${f}: desire '${value}', current '${seen}'`);
  }
}

async function requireNamespace(i: ForwardingInputs, recorded = false): Promise<void> {
  await kernel.requireNetns(i.namespace, subject(i), "", recorded);
}

/** Runs a read-record-then-write holding the namespace's lock, shared by every nslab process. */
function locked<T>(i: ForwardingInputs, work: () => Promise<T>): Promise<T> {
  return kernel.withNetnsLock(i.namespace, subject(i), work);
}

export const forwardingKind: ResourceKind<ForwardingInputs, ForwardingOutputs> = {
  kind: "IpForwarding",
  properties: ["namespace", "ipv4", "ipv6", "adopt"],

  check(_olds, news) {
    const c = new Checker();
    const inputs = compact({
      namespace: c.netns(news.namespace, "namespace"),
      ipv4: c.boolean(news.ipv4, "ipv4"),
      ipv6: c.boolean(news.ipv6, "ipv6"),
      adopt: c.boolean(news.adopt, "adopt", false),
      __owner: String(news.__owner ?? `IpForwarding:${news.namespace ?? ""}`),
    });
    // Only when neither was given: one given wrong says so itself.
    const given = (v: unknown) => v !== undefined && v !== null;
    if (!given(news.ipv4) && !given(news.ipv6)) c.fail("ipv4", "set ipv4 and/or ipv6 (true to forward, false to stop forwarding).");
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    return diffFields(olds as never, news as never, RULES);
  },

  async create(i) {
    await requireNamespace(i);
    return locked(i, async () => {
      const outs: ForwardingOutputs = { ...i };
      // Another resource's live record this create takes over (adopt): given back on failure.
      const taken: Partial<Record<Family, SwitchRecord>> = {};
      await requireNoRaDefaults(i);
      for (const f of FAMILIES) {
        if (i[f] === undefined) continue;
        outs[prevKey(f)] = await previousValue(f, i);
        const other = await otherRecord(f, i);
        if (other && other.set === (await readSwitch(f, i))) taken[f] = other;
      }
      try {
        for (const f of FAMILIES) if (i[f] !== undefined) await keepRecord(f, i, outs[prevKey(f)]!);
        await apply(i);
      } catch (err) {
        for (const f of FAMILIES) {
          if (i[f] === undefined) continue;
          const other = taken[f];
          const undo = other
            ? // The switch stays the other resource's: its value and its record as they were.
              kernel.sysctlWrite(SWITCHES[f], other.set, i.namespace, subject(i)).then(() => kernel.hostWriteRecord(i.namespace, recordName(f), other, subject(i)))
            : restoreSwitch(f, i, outs[prevKey(f)]!);
          await undo.catch(() => undefined);
        }
        throw err;
      }
      return { id: `${i.namespace ?? ""}/forwarding`, outs: compact(outs) };
    });
  },

  async read(id, props) {
    if (props.namespace !== undefined && !(await kernel.hostNetnsExists(props.namespace))) return {};
    const inputs: ForwardingInputs = { ...props };
    for (const f of FAMILIES) if (props[f] !== undefined) inputs[f] = (await readSwitch(f, props)) === "1";
    const { previousIpv4, previousIpv6 } = props;
    const clean = compact({ ...inputs, previousIpv4: undefined, previousIpv6: undefined });
    return { id, props: compact({ ...clean, previousIpv4, previousIpv6 }), inputs: clean };
  },

  async update(_id, olds, news) {
    await requireNamespace(news, true);
    return locked(news, async () => {
      const outs: ForwardingOutputs = { ...news, previousIpv4: olds.previousIpv4, previousIpv6: olds.previousIpv6 };
      // A switch another resource took over since (its record): refused, unless adopt takes it back.
      for (const f of FAMILIES) {
        if (news[f] === undefined || olds[prevKey(f)] === undefined || news.adopt) continue;
        const other = await otherRecord(f, olds);
        if (other) {
          throw new NslabError(
            "AlreadyExists",
            `${subject(news)}: ${f} forwarding was taken over by ${other.by ? ownerLabel(other.by) : `another nslab resource (${other.owner})`} since this resource set it, and is that one's now (it will restore '${other.previous}'). Remove this resource from the program (the switch stays with the other), or set adopt: true to take it back.`,
          );
        }
      }
      await requireNoRaDefaults(news);
      // A switch newly managed: remember what it was. One no longer managed: put it back.
      for (const f of FAMILIES) {
        if (news[f] !== undefined && outs[prevKey(f)] === undefined) outs[prevKey(f)] = await previousValue(f, news);
        if (news[f] === undefined && olds[prevKey(f)] !== undefined) {
          await restoreSwitch(f, olds, olds[prevKey(f)]!);
          delete outs[prevKey(f)];
        }
      }
      for (const f of FAMILIES) if (news[f] !== undefined) await keepRecord(f, news, outs[prevKey(f)]!);
      await apply(news);
      return { outs: compact(outs) };
    });
  },

  async delete(_id, props) {
    if (props.namespace !== undefined && !(await kernel.hostNetnsExists(props.namespace))) return;
    await locked(props, async () => {
      for (const f of FAMILIES) {
        const previous = props[prevKey(f)];
        if (previous !== undefined) await restoreSwitch(f, props, previous);
      }
    });
  },
};
