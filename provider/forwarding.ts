/**
 * IpForwarding: the IPv4 and/or IPv6 forwarding switches of one namespace
 * (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding). It records what it found and
 * puts that back on delete, so destroying a lab leaves the switches as they were.
 */
import { NslabError } from "./errors";
import * as kernel from "./kernel";
import { CommonInputs, compact, diffFields, FieldRule, ResourceKind } from "./resource";
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
const subject = (i: ForwardingInputs) => `IP forwarding in ${i.namespace ? `namespace "${i.namespace}"` : "the program's namespace"}`;

async function readSwitch(f: Family, i: ForwardingInputs): Promise<string> {
  return kernel.sysctlRead(SWITCHES[f], i.namespace, subject(i));
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

function requireNamespace(i: ForwardingInputs, recorded = false): void {
  kernel.requireNetns(i.namespace, subject(i), "", recorded);
}

export const forwardingKind: ResourceKind<ForwardingInputs, ForwardingOutputs> = {
  kind: "IpForwarding",

  check(_olds, news) {
    const c = new Checker();
    const inputs = compact({
      namespace: c.netns(news.namespace, "namespace"),
      ipv4: c.boolean(news.ipv4, "ipv4"),
      ipv6: c.boolean(news.ipv6, "ipv6"),
      adopt: c.boolean(news.adopt, "adopt", false),
      __owner: String(news.__owner ?? `IpForwarding:${news.namespace ?? ""}`),
    });
    if (inputs.ipv4 === undefined && inputs.ipv6 === undefined) c.fail("ipv4", "set ipv4 and/or ipv6 (true to forward, false to stop forwarding).");
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    return diffFields(olds as never, news as never, RULES);
  },

  async create(i) {
    requireNamespace(i);
    const outs: ForwardingOutputs = { ...i };
    for (const f of FAMILIES) if (i[f] !== undefined) outs[prevKey(f)] = await readSwitch(f, i);
    try {
      await apply(i);
    } catch (err) {
      await restore(outs).catch(() => undefined);
      throw err;
    }
    return { id: `${i.namespace ?? ""}/forwarding`, outs: compact(outs) };
  },

  async read(id, props) {
    if (props.namespace !== undefined && !kernel.netnsExists(props.namespace)) return {};
    const inputs: ForwardingInputs = { ...props };
    for (const f of FAMILIES) if (props[f] !== undefined) inputs[f] = (await readSwitch(f, props)) === "1";
    const { previousIpv4, previousIpv6 } = props;
    const clean = compact({ ...inputs, previousIpv4: undefined, previousIpv6: undefined });
    return { id, props: compact({ ...clean, previousIpv4, previousIpv6 }), inputs: clean };
  },

  async update(_id, olds, news) {
    requireNamespace(news, true);
    const outs: ForwardingOutputs = { ...news, previousIpv4: olds.previousIpv4, previousIpv6: olds.previousIpv6 };
    // A switch newly managed: remember what it was. One no longer managed: put it back.
    for (const f of FAMILIES) {
      if (news[f] !== undefined && outs[prevKey(f)] === undefined) outs[prevKey(f)] = await readSwitch(f, news);
      if (news[f] === undefined && olds[prevKey(f)] !== undefined) {
        await kernel.sysctlWrite(SWITCHES[f], olds[prevKey(f)]!, news.namespace, subject(news));
        delete outs[prevKey(f)];
      }
    }
    await apply(news);
    return { outs: compact(outs) };
  },

  async delete(_id, props) {
    if (props.namespace !== undefined && !kernel.netnsExists(props.namespace)) return;
    await restore(props);
  },
};

/** Puts back the values recorded at create. */
async function restore(props: ForwardingOutputs): Promise<void> {
  for (const f of FAMILIES) {
    const previous = props[prevKey(f)];
    if (previous !== undefined) await kernel.sysctlWrite(SWITCHES[f], previous, props.namespace, subject(props));
  }
}
