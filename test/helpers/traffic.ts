/**
 * Measuring what an impaired link does: TCP throughput with a bulk transfer between two
 * namespaces (test/helpers/tcp-bulk.js, run by node with `ip netns exec`), and loss with
 * a bounded burst of pings. Commands run through `spawnIn`, so the same helpers serve
 * kernel tests (already inside the suite's sandbox) and e2e tests (a per-test Sandbox).
 */
import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";

/** Starts `command args` inside a network namespace (and, for e2e, inside its sandbox). */
export type SpawnIn = (netns: string, command: string, args: string[]) => ChildProcess;

/** Spawns directly: for kernel tests, which run inside the suite's sandbox. */
export const spawnHere: SpawnIn = (netns, command, args) => spawn("ip", ["netns", "exec", netns, command, ...args], { stdio: ["ignore", "pipe", "pipe"] });

const BULK = path.join(__dirname, "tcp-bulk.js");
/** How long each transfer is measured (after a 0.5 s warm-up): short, so the suite stays bounded. */
export const BULK_SECONDS = 2;

function collect(child: ChildProcess): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ stdout, stderr, code: code ?? -1 })));
}

/** Mbit/s of goodput of one TCP connection from `from` to `address` (a receiver in `to`). */
export async function throughput(spawnIn: SpawnIn, from: string, to: string, address: string, port = 5201): Promise<number> {
  const receiver = spawnIn(to, process.execPath, [BULK, "recv", String(port), String(BULK_SECONDS)]);
  const received = collect(receiver);
  await new Promise<void>((resolve, reject) => {
    receiver.stdout!.once("data", () => resolve());
    receiver.once("close", (code) => reject(new Error(`receiver exited ${code} before listening`)));
  });
  const sender = collect(spawnIn(from, process.execPath, [BULK, "send", address, String(port)]));
  const [r] = await Promise.all([received, sender]);
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (r.code !== 0 || !line) throw new Error(`bulk transfer failed (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  return JSON.parse(line).mbit as number;
}

/** Sends `count` pings 5 ms apart and returns how many got no reply (a reply may take up to 1 s). */
export async function pingLoss(spawnIn: SpawnIn, from: string, address: string, count: number): Promise<{ sent: number; lost: number }> {
  const r = await collect(spawnIn(from, "ping", ["-q", "-n", "-c", String(count), "-i", "0.005", "-W", "1", address]));
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!m) throw new Error(`ping printed no summary (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  return { sent: Number(m[1]), lost: Number(m[1]) - Number(m[2]) };
}

/**
 * Bounds for the number of losses among `n` independent probes each lost with
 * probability `p`: mean +/- `sigmas` standard deviations of the binomial distribution,
 * sqrt(n p (1 - p)). At 5 sigma a correct implementation falls outside about once in
 * 1.7 million runs.
 */
export function binomialBounds(n: number, p: number, sigmas = 5): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [Math.max(0, Math.floor(n * p - sigmas * sd)), Math.min(n, Math.ceil(n * p + sigmas * sd))];
}
