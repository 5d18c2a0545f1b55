/**
 * NatRule under concurrency and next to foreign content: two provider *processes*
 * (each loading the compiled provider module, as Pulumi's dynamic-provider process
 * does) create and delete rules in one namespace at the same time, emptying the table
 * again and again; nothing may fail and no rule may vanish before its own delete.
 * And content someone else put into table `inet nslab` survives nslab's last delete.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resetSnapshots } from "../../provider/kernel";
import { natKind as nat } from "../../provider/nat";
import { namespaceKind } from "../../provider/namespace";
import { ipByHand, must, OWNER, uniq } from "../helpers/kernel";

const ns = uniq("knr");
const PROVIDER = path.resolve(__dirname, "../../dist/provider/index.js");
const ITERATIONS = 200;

/**
 * One racing process: ITERATIONS times create a rule through dispatch (check, then
 * create), read it back (it must be there), delete it, read again (it must be gone).
 * Kinds alternate so that both base chains come and go. Prints a JSON summary.
 */
const WORKER = `
const p = require(${JSON.stringify(PROVIDER)});
const [ns, who, n] = process.argv.slice(1);
(async () => {
  const summary = { who, creates: 0, deletes: 0, failures: [], lost: 0, leftover: 0 };
  for (let k = 0; k < Number(n); k++) {
    const kind = k % 3 === 0 ? { kind: "dnat", protocol: "tcp", inInterface: "up0", port: 1000 + k, toAddress: "10.9.9.9" }
      : k % 3 === 1 ? { kind: "masquerade", source: "10.1.0.0/16" } : { kind: "snat", source: "10.2.0.0/16", toAddress: "10.9.9.1" };
    const checked = await p.dispatch("NatRule", "check", [undefined, { namespace: ns, __owner: "race/" + who + "/" + k, ...kind }]);
    if (checked.failures.length) throw new Error(JSON.stringify(checked.failures));
    let made;
    try { made = await p.dispatch("NatRule", "create", [checked.inputs]); summary.creates++; }
    catch (err) { summary.failures.push("create " + k + ": " + err.message); continue; }
    p.kernel.resetSnapshots();
    if (!(await p.dispatch("NatRule", "read", [made.id, made.outs])).id) summary.lost++;
    try { await p.dispatch("NatRule", "delete", [made.id, made.outs]); summary.deletes++; }
    catch (err) { summary.failures.push("delete " + k + ": " + err.message); }
    p.kernel.resetSnapshots();
    if ((await p.dispatch("NatRule", "read", [made.id, made.outs])).id) summary.leftover++;
  }
  console.log(JSON.stringify(summary));
  process.exit(0);
})().catch((err) => { console.error(err); process.exit(1); });
`;

function racer(who: string): Promise<{ creates: number; deletes: number; failures: string[]; lost: number; leftover: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", WORKER, ns, who, String(ITERATIONS)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!)) : reject(new Error(`racer ${who} exited ${code}: ${err}`))));
  });
}

const nft = async (...args: string[]) => {
  const out = await must("ip", ["netns", "exec", ns, "nft", ...args]);
  resetSnapshots();
  return out;
};

describe("NatRule: concurrency and foreign content", () => {
  beforeAll(async () => {
    await namespaceKind.create(namespaceKind.check(undefined, { name: ns, __owner: `${OWNER}/nat-race/ns` }).inputs);
  });
  afterAll(async () => {
    await ipByHand("netns", "delete", ns).catch(() => undefined);
  });

  it(`two provider processes, ${ITERATIONS} create/delete each in one namespace: no failure, no rule lost, table gone at the end`, async () => {
    const results = await Promise.all([racer("a"), racer("b")]);
    for (const r of results) {
      expect(r.failures).toEqual([]);
      expect(r.creates).toBe(ITERATIONS);
      expect(r.deletes).toBe(ITERATIONS);
      expect(r.lost).toBe(0);
      expect(r.leftover).toBe(0);
    }
    const tables = await nft("list", "tables");
    expect(tables).not.toContain("nslab");
  });

  it("a chain and a set someone added to table inet nslab survive the last nslab rule's delete", async () => {
    const masq = nat.check(undefined, { namespace: ns, kind: "masquerade", source: "10.3.0.0/16", __owner: `${OWNER}/nat-race/m` }).inputs;
    const dnat = nat.check(undefined, { namespace: ns, kind: "dnat", protocol: "udp", port: 53, toAddress: "10.9.9.9", __owner: `${OWNER}/nat-race/d` }).inputs;
    const m = await nat.create(masq);
    const d = await nat.create(dnat);
    await nft("add", "chain", "inet", "nslab", "theirs");
    await nft("add", "rule", "inet", "nslab", "theirs", "counter");
    await nft("add", "set", "inet", "nslab", "blocked", "{ type ipv4_addr; }");
    await nat.delete(m.id, m.outs);
    await nat.delete(d.id, d.outs);
    const listing = await nft("list", "table", "inet", "nslab");
    expect(listing).toContain("chain theirs");
    expect(listing).toMatch(/chain theirs \{\s+counter/);
    expect(listing).toContain("set blocked");
    // nslab's own rules and its now empty base chains are gone.
    expect(listing).not.toContain("masquerade");
    expect(listing).not.toContain("dnat");
    expect(listing).not.toContain("chain postrouting");
    expect(listing).not.toContain("chain prerouting");

    // A foreign rule in nslab's base chain keeps that chain (and the table) too.
    const again = await nat.create(masq);
    await nft("add", "rule", "inet", "nslab", "postrouting", "ip", "saddr", "10.7.0.0/16", "counter");
    await nat.delete(again.id, again.outs);
    const after = await nft("list", "table", "inet", "nslab");
    expect(after).toMatch(/chain postrouting \{[^}]*ip saddr 10\.7\.0\.0\/16 counter/);
    expect(after).not.toContain("masquerade");
    await nft("delete", "table", "inet", "nslab");
  });

  it("a rule of this resource already there (an interrupted create) is taken over and converged; other resources' rules are untouched", async () => {
    const mine = nat.check(undefined, { namespace: ns, kind: "masquerade", source: "10.4.0.0/16", __owner: `${OWNER}/nat-race/own` }).inputs;
    const other = nat.check(undefined, { namespace: ns, kind: "masquerade", source: "10.5.0.0/16", __owner: `${OWNER}/nat-race/other` }).inputs;
    const o = await nat.create(other);
    const first = await nat.create({ ...mine, source: "10.6.0.0/16" }); // the killed run's rule, with older inputs
    const { outs } = await nat.create(mine); // the recovery's create: no "already exists"
    const listing = await nft("list", "table", "inet", "nslab");
    expect(listing.match(/masquerade/g)).toHaveLength(2);
    expect(listing).toContain("ip saddr 10.4.0.0/16 masquerade");
    expect(listing).toContain("ip saddr 10.5.0.0/16 masquerade");
    expect(listing).not.toContain("10.6.0.0/16");
    expect((await nat.read(first.id, outs)).inputs).toEqual(mine);
    await nat.delete(first.id, outs);
    await nat.delete(o.id, o.outs);
    expect(await nft("list", "tables")).not.toContain("nslab");
  });
});
