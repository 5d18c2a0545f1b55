/**
 * No process outlives its engine (provider side): kill -9 of the Pulumi CLI in the
 * middle of `up` of a lab; 10 s later neither the dynamic-provider process of that run
 * nor anything it started (the ip launcher, the ip sessions) may be alive. Before, the
 * orphaned provider went on creating namespaces for minutes. And the same kill as soon
 * as the provider process appears, before its first call.
 */
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { Lab, sandboxPerTest } from "../helpers/lab";
import { Sandbox } from "../helpers/sandbox";

let sandbox: Sandbox;
sandboxPerTest((s) => (sandbox = s));

const HOSTS = 30;
const PROGRAM = `
import * as nslab from "nslab";
const bridge = new nslab.Bridge("bridge", { name: "gbr0", addresses: ["10.201.0.1/16"] });
for (let i = 0; i < ${HOSTS}; i++) {
  const ns = new nslab.Namespace(\`g\${i}\`);
  const link = new nslab.VethPair(\`g\${i}\`, { a: { name: "eth0", namespace: ns.name, addresses: [\`10.201.1.\${i + 2}/16\`] }, b: { name: \`gp\${i}\`, master: bridge.name } });
  new nslab.Route(\`g\${i}-default\`, { namespace: ns.name, destination: "default", gateway: "10.201.0.1" }, { dependsOn: [link, bridge] });
}
`;

/** A process as /proc shows it: pid, its start time (against pid reuse), command line, cwd. */
interface Proc {
  pid: number;
  ppid: number;
  start: string;
  cmdline: string;
  cwd: string;
}
function proc(pid: number): Proc | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return undefined; // a zombie has ended
    return { pid, ppid: Number(fields[1]), start: fields[19], cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim(), cwd: fs.readlinkSync(`/proc/${pid}/cwd`) };
  } catch {
    return undefined;
  }
}
const allProcs = () => fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).map(proc).filter((p): p is Proc => p !== undefined);
/** The process and all its descendants. */
function tree(root: number): Proc[] {
  const all = allProcs();
  const out = all.filter((p) => p.pid === root);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) if (!out.includes(p) && out.some((q) => q.pid === p.ppid)) (out.push(p), (grew = true));
  }
  return out;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the provider process ends with its engine", () => {
  it(`kill -9 of the CLI during up of a ${HOSTS}-host lab: no provider or ip session of the run alive 10 s later`, async () => {
    const lab = await Lab.create(sandbox, "engine-gone", PROGRAM);
    const { cli, output, exited } = lab.startUp();

    // Wait until the provider is creating (a few namespaces exist), bounded.
    let provider: Proc | undefined;
    for (let i = 0; i < 600; i++) {
      provider = tree(cli.pid!).find((p) => p.cmdline.includes("dynamic-provider"));
      const made = (await sandbox.run("ls", ["/run/netns"])).stdout.split("\n").filter(Boolean).length;
      if (provider && made >= 3) break;
      await sleep(100);
    }
    expect(provider, `the provider never started creating:\n${output()}`).toBeDefined();
    const providerTree = tree(provider!.pid);
    expect(providerTree.some((p) => /ip\b.*-batch/.test(p.cmdline)), `no ip session found under the provider: ${providerTree.map((p) => p.cmdline).join("\n")}`).toBe(true);

    process.kill(cli.pid!, "SIGKILL");
    await exited;
    await sleep(10_000);

    const alive = providerTree.filter((p) => proc(p.pid)?.start === p.start);
    // The orphan does not go on creating: no namespace appears after that.
    const namespacesThen = (await sandbox.run("ls", ["/run/netns"])).stdout;
    await sleep(2_000);
    const namespacesLater = (await sandbox.run("ls", ["/run/netns"])).stdout;
    // Nothing else of the run is left either: the language host and the program end
    // with the engine too (engine/'s health check). Anything found is ended here, after
    // the assertion, so that a failure does not leak it.
    const others = allProcs().filter((p) => p.cwd === lab.dir || p.cmdline.includes(lab.dir));
    const othersText = others.map((p) => p.cmdline).join("\n");
    for (const p of [...alive, ...others]) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    expect(alive.map((p) => p.cmdline)).toEqual([]);
    expect(othersText).toBe("");
    expect(namespacesLater).toBe(namespacesThen);
  });

  it("kill -9 of the CLI as soon as the provider process appears, before its first call: the provider is gone 10 s later", async () => {
    // Before, only the first call started the watch (provider/health.ts): a provider
    // whose engine died in the second or so before it stayed, waiting, forever.
    const lab = await Lab.create(sandbox, "engine-gone-early", PROGRAM);
    const { cli, output, exited } = lab.startUp();
    let provider: Proc | undefined;
    for (let i = 0; i < 3000 && !provider; i++) {
      provider = tree(cli.pid!).find((p) => p.cmdline.includes("dynamic-provider"));
      if (!provider) await sleep(10);
    }
    expect(provider, `the provider never started:\n${output()}`).toBeDefined();
    process.kill(cli.pid!, "SIGKILL");
    await exited;
    // Nothing was made yet: the kill came before the provider's first call.
    const made = (await sandbox.run("ls", ["/run/netns"])).stdout.trim();
    await sleep(10_000);
    const alive = proc(provider!.pid)?.start === provider!.start;
    const others = allProcs().filter((p) => p.cwd === lab.dir || p.cmdline.includes(lab.dir));
    for (const p of [...(alive ? [provider!] : []), ...others]) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    expect(made, "the kill came after the provider's first call; this test needs it before").toBe("");
    expect(alive, `provider ${provider!.pid} (${provider!.cmdline}) still alive 10 s after its engine was killed`).toBe(false);
    expect(others.map((p) => p.cmdline)).toEqual([]);
  });
});
