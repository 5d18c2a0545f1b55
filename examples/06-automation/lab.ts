// A programmatic lab: N namespaces on one bridge, built from TypeScript with the
// Automation API (inline program, local file backend), checked, and destroyed. This
// is how a test suite of your own can drive labs.
//
//   node -r ts-node/register examples/06-automation/lab.ts [N]
import { execFileSync } from "node:child_process";
import * as nslab from "nslab";

const N = Number(process.argv[2] ?? 4);
const address = (i: number) => `10.10.0.${i}`;

async function main(): Promise<void> {
  const stack = await nslab.localLab({
    projectName: "automation-lab",
    stackName: "dev",
    program: async () => {
      const bridge = new nslab.Bridge("lab-br", { name: "lab-br" });
      const hosts = [];
      for (let i = 1; i <= N; i++) {
        const ns = new nslab.Namespace(`host${i}`);
        new nslab.VethPair(`host${i}-link`, {
          a: { name: "eth0", namespace: ns.name, addresses: [`${address(i)}/24`] },
          b: { name: `lab-h${i}`, master: bridge.name },
        });
        hosts.push(ns.name);
      }
      return { hosts };
    },
  });

  const up = await stack.up();
  console.log(`up: ${JSON.stringify(up.summary.resourceChanges)}`);
  const hosts = up.outputs.hosts.value as string[];

  let reachable = 0;
  const failures: string[] = [];
  for (const [i, from] of hosts.entries()) {
    for (let j = 1; j <= N; j++) {
      if (j === i + 1) continue;
      try {
        execFileSync("ip", ["netns", "exec", from, "ping", "-c", "1", "-W", "2", address(j)], { stdio: "ignore" });
        reachable++;
      } catch {
        failures.push(`${from} -> ${address(j)}`);
      }
    }
  }
  console.log(`connectivity: ${reachable}/${N * (N - 1)} pairs reachable${failures.length ? `; failed: ${failures.join(", ")}` : ""}`);

  const destroy = await stack.destroy();
  console.log(`destroy: ${JSON.stringify(destroy.summary.resourceChanges)}`);
  await stack.workspace.removeStack("dev");
  if (failures.length) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
