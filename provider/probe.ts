/**
 * The probe program: run by kernel.transportProbe inside a namespace
 * (`nsenter --net=/run/netns/NS -- node probe.js`), one per namespace per provider
 * process. It reads TCP/UDP probes as JSON lines on stdin ({ id, protocol, to, port,
 * timeoutMs }), runs each at once, and writes each result as a JSON line
 * ({ id, reachable, detail }) when it is done. It exits when stdin closes and every
 * probe is answered. No shell, no dependencies: node's own sockets, each bounded by its
 * probe's timeoutMs.
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

/** Answers each probe line as soon as its probe is done; exits when stdin closes and every probe is answered. */
function main(): void {
  let buffer = "";
  let open = 0;
  let ended = false;
  const answer = (id: unknown, r: Result) => {
    process.stdout.write(`${JSON.stringify({ id, ...r })}\n`);
    if (--open === 0 && ended) process.exit(0);
  };
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (!line.trim()) continue;
      const p = JSON.parse(line) as Probe & { id: unknown };
      open++;
      // One probe's exception must not cost the others their results.
      Promise.resolve()
        .then(() => (p.protocol === "tcp" ? tcp(p) : udp(p)))
        .catch((err: NodeJS.ErrnoException) => ({ reachable: false, detail: explain(err) }))
        .then((r) => answer(p.id, r));
    }
  });
  process.stdin.on("end", () => {
    ended = true;
    if (open === 0) process.exit(0);
  });
}

main();
