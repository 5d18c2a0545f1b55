/**
 * Namespace: a named network namespace, `/run/netns/<name>`, with `lo` up.
 * Ownership: the namespace's own `lo` carries nslab's alias.
 */
import { mayHaveRun, NslabError } from "./errors";
import * as kernel from "./kernel";
import { markOwnerSentence, notTakenOver, whoseMark } from "./owned";
import { CommonInputs, compact, diffFields, FieldRule, ownerTag, ResourceKind } from "./resource";
import { Checker } from "./validate";

export interface NamespaceInputs extends CommonInputs {
  name: string;
}
export interface NamespaceOutputs extends NamespaceInputs {
  path: string;
}

const RULES: FieldRule[] = [{ name: "name", replace: true }];

const subject = (name: string) => `namespace "${name}"${kernel.where()}`;

/**
 * The alias on the namespace's lo, or undefined when the namespace is gone. `state`: what
 * /run/netns/NAME was just seen to be, if the caller looked already.
 */
async function marker(name: string, state?: "absent" | "namespace" | "half"): Promise<string | undefined> {
  // Absent, or the file of an interrupted ip netns add: no mark.
  if (state === undefined) return (await kernel.netnsLoMark(name, subject(name))).mark;
  if (state !== "namespace") return undefined;
  return (await kernel.links(name)).find((l) => l.ifname === "lo")?.ifalias ?? "";
}

/**
 * The error for a namespace someone made between create's look and its `ip netns add`:
 * whose, once its mark is there (up to about a second), else that nslab cannot tell.
 */
async function raced(name: string): Promise<NslabError> {
  let mark: string | undefined;
  for (let i = 0; i < 20 && !mark; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    mark = await marker(name).catch(() => undefined);
  }
  const whose = markOwnerSentence(mark);
  return new NslabError(
    "AlreadyExists",
    whose
      ? `${subject(name)} was made by another process at the same moment as this create.${whose} Choose another name for one of them.`
      : `${subject(name)} was made by another process at the same moment as this create (another stack's pulumi up, or an ip netns add), which has not marked it: nslab cannot tell whose it is. Choose another name, or once you know it is nobody's, remove it (ip netns del ${name}) and run again.`,
  );
}

/**
 * Marks the namespace as ours and reads the mark back, in one exchange; then, if given,
 * removes the create's intent record (it is marked now).
 * Equivalent to: ip -n NAME link set lo up; ip -n NAME link set lo alias TAG; ip -n NAME addr show dev lo; rm INTENT
 */
async function claim(name: string, owner: string, intent?: string): Promise<string | undefined> {
  const commands = [
    ["link", "set", "dev", "lo", "up"],
    ["link", "set", "dev", "lo", "alias", ownerTag(owner)],
    ["address", "show", "dev", "lo"],
  ];
  const [lo] = await kernel.ipBatchRead<{ ifalias?: string }[]>(commands, name, subject(name), undefined, intent === undefined ? {} : { after: { netns: undefined, object: intent } });
  return lo?.[0]?.ifalias;
}

function outputs(inputs: NamespaceInputs): NamespaceOutputs {
  return compact({ ...inputs, path: `${kernel.NETNS_DIR}/${inputs.name}` });
}

export const namespaceKind: ResourceKind<NamespaceInputs, NamespaceOutputs> = {
  kind: "Namespace",
  properties: ["name", "adopt"],

  check(_olds, news) {
    const c = new Checker();
    const inputs = compact({
      name: c.netns(news.name, "name", true) as string,
      adopt: c.boolean(news.adopt, "adopt", false),
      __owner: String(news.__owner ?? `Namespace:${news.name}`),
    });
    return { inputs, failures: c.failures };
  },

  diff(_id, olds, news) {
    return diffFields(olds as never, news as never, RULES);
  },

  async create(inputs) {
    const { name } = inputs;
    const tag = ownerTag(inputs.__owner);
    const intent = `netns-${name}`;
    // /run/netns/NAME and this resource's intent record, in one look.
    const { state, intended: earlier } = await kernel.netnsLook(name, intent, subject(name));
    let made = false;
    if (state === "half") {
      // The file of an `ip netns add` killed before it mounted the namespace: this
      // resource's own (its intent) is removed and made again; anyone else's is refused.
      if (earlier !== tag && !inputs.adopt) {
        throw new NslabError("AlreadyExists", `${subject(name)}: ${kernel.NETNS_DIR}/${name} exists but is not a namespace (an interrupted ip netns add?). Remove it (ip netns del ${name}) or set adopt: true.`);
      }
      await kernel.netnsDelete(name, subject(name));
    }
    if (state === "namespace") {
      // This resource's own namespace (its mark on lo, or its intent record when the
      // run was killed between `ip netns add` and the mark) is an interrupted create:
      // take it over. Anyone else's is refused unless adopt.
      const mark = await marker(name, state);
      const ours = mark === tag || (!mark && earlier === tag);
      if (!inputs.adopt && !ours) {
        throw new NslabError(
          "AlreadyExists",
          `${subject(name)} already exists.${whoseMark(mark, inputs.__owner)} Remove it (ip netns del ${name}), choose another name, or set adopt: true to take it over.`,
        );
      }
    } else {
      // The intent record, then: ip netns add NAME (one request on another host).
      await kernel.ip(["netns", "add", name], undefined, subject(name), undefined, { before: { netns: undefined, object: intent, owner: tag, by: inputs.__owner } }).catch(async (err) => {
        // A namespace that may have been made all the same keeps its intent record (the
        // next create takes it over, nslab-orphans finds it).
        if (!mayHaveRun(err)) await kernel.intentDone(undefined, intent);
        // Made between the look and the add: another process's create at the same
        // moment (another stack's up, most often). Named when its mark comes, which
        // another nslab writes right after its add.
        if (err instanceof NslabError && err.kind === "AlreadyExists") throw await raced(name);
        throw err;
      });
      made = true;
    }
    try {
      // Marked, then the intent removed (one request on another host; on failure, below).
      const seen = await claim(name, inputs.__owner, intent);
      if (seen !== tag) {
        throw new NslabError("Verification", `${subject(name)}: ownership mark on lo: desired '${tag}', current '${seen}'`);
      }
    } catch (err) {
      // Transactional: a namespace we just made goes again; an adopted one is left.
      // Its intent record goes only once nothing is left of it.
      const gone = !made || (await kernel.netnsDelete(name, subject(name)).then(() => true, () => false));
      if (gone) await kernel.intentDone(undefined, intent);
      throw err;
    }
    return { id: name, outs: outputs(inputs) };
  },

  async read(id, props) {
    const seen = await marker(props.name ?? id);
    if (seen === undefined || seen !== ownerTag(props.__owner)) return {};
    const inputs = compact({ name: props.name, adopt: props.adopt, __owner: props.__owner });
    return { id, props: outputs(inputs), inputs };
  },

  async update(_id, olds, news) {
    // Another resource's since (adopt): writing this one's mark would take it back.
    if (!news.adopt) notTakenOver(await marker(news.name), olds.__owner, subject(news.name));
    await claim(news.name, news.__owner);
    return { outs: outputs(news) };
  },

  async delete(id, props) {
    const name = props.name ?? id;
    // /run/netns/NAME and lo's mark, in one look (one request on another host).
    const { state, mark: seen } = await kernel.netnsLoMark(name, subject(name));
    // The remains of our namespace whose delete was killed between unmount and unlink.
    if (state === "half") return kernel.netnsDelete(name, subject(name));
    if (state === "absent") return;
    // Gone already, or no longer ours (someone replaced it): nothing of ours to delete.
    if (seen === undefined || seen !== ownerTag(props.__owner)) return;
    // Equivalent to: ip netns delete NAME
    await kernel.netnsDelete(name, subject(name)).catch(async (err) => {
      if (!(await kernel.hostNetnsExists(name))) return;
      throw err;
    });
  },
};
