/**
 * The probe program: run by kernel.transportProbe inside a namespace
 * (`nsenter --net=/run/netns/NS -- node probe.js`), it reads a JSON list of TCP/UDP
 * probes on stdin, runs them all at once, and prints one JSON list of results
 * ({ reachable, detail }) in the same order. No shell, no dependencies: node's own
 * sockets, each bounded by its probe's timeoutMs.
 *
 * - tcp: a connection is opened and closed at once. Reachable when it is established;
 *   "connection refused" (nothing listens, or a reject rule) and a timeout are not.
 * - udp: one datagram ("nslab probe\n") is sent and any reply counts. A UDP port with no
 *   listener answers (an ICMP port unreachable) "connection refused"; a listener that
 *   does not reply looks like a drop: UDP reachability needs a listener that answers.
 */
import * as dgram from "node:dgram";
import * as net from "node:net";

interface Probe {
  protocol: "tcp" | "udp";
  to: string;
  port: number;
  timeoutMs: number;
}
interface Result {
  reachable: boolean;
  detail: string;
}

/** Words for the socket errors a probe meets. */
function explain(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "EHOSTUNREACH":
      return "no route to host (EHOSTUNREACH)";
    case "ENETUNREACH":
      return "network is unreachable (ENETUNREACH)";
    case "EPERM":
    case "EACCES":
      return `refused by a local firewall rule (${err.code})`;
    default:
      return err.code ? `${err.code}: ${err.message}` : err.message;
  }
}

function tcp(p: Probe): Promise<Result> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: p.to, port: p.port });
    const done = (r: Result) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ reachable: false, detail: `timed out after ${p.timeoutMs} ms` }), p.timeoutMs);
    socket.once("connect", () => done({ reachable: true, detail: "connection established" }));
    socket.once("error", (err) => done({ reachable: false, detail: explain(err) }));
  });
}

function udp(p: Probe): Promise<Result> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(p.to) ? "udp6" : "udp4");
    let settled = false;
    const done = (r: Result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      resolve(r);
    };
    const timer = setTimeout(() => done({ reachable: false, detail: `no reply within ${p.timeoutMs} ms` }), p.timeoutMs);
    socket.once("error", (err) => done({ reachable: false, detail: explain(err) }));
    socket.once("message", (msg) => done({ reachable: true, detail: `a reply of ${msg.length} bytes` }));
    // A connected socket hears the ICMP port unreachable as ECONNREFUSED.
    socket.connect(p.port, p.to, (err?: Error) => {
      if (err) return done({ reachable: false, detail: explain(err as NodeJS.ErrnoException) });
      socket.send(Buffer.from("nslab probe\n"), (sendErr) => sendErr && done({ reachable: false, detail: explain(sendErr as NodeJS.ErrnoException) }));
    });
  });
}

async function main(): Promise<void> {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const probes = JSON.parse(input) as Probe[];
  // One probe's exception must not cost the others their results.
  const run = (p: Probe): Promise<Result> => (p.protocol === "tcp" ? tcp(p) : udp(p)).catch((err: NodeJS.ErrnoException) => ({ reachable: false, detail: explain(err) }));
  const results = await Promise.all(probes.map((p) => Promise.resolve().then(() => run(p))));
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
