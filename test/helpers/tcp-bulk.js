// A TCP bulk transfer for throughput tests (no iperf3 needed):
//   node tcp-bulk.js recv PORT SECONDS   listens, prints "ready", then measures one
//                                        connection: bytes received in SECONDS after a
//                                        0.5 s warm-up from the first byte; prints JSON
//                                        { bytes, seconds, mbit } and closes it.
//   node tcp-bulk.js send HOST PORT      connects and writes as fast as TCP lets it until
//                                        the receiver closes.
"use strict";
const net = require("node:net");
const WARMUP_S = 0.5;
const [mode, a, b] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint()) / 1e9;

if (mode === "recv") {
  const seconds = Number(b);
  const server = net.createServer((socket) => {
    let first;
    let bytes = 0;
    let start;
    socket.on("data", (chunk) => {
      const t = now();
      if (first === undefined) first = t;
      if (t < first + WARMUP_S) return;
      // The chunk that opens the window arrived by then: it is not counted.
      if (start === undefined) return void (start = t);
      bytes += chunk.length;
      if (t >= start + seconds) {
        const elapsed = t - start;
        console.log(JSON.stringify({ bytes, seconds: elapsed, mbit: (bytes * 8) / elapsed / 1e6 }));
        socket.destroy();
        server.close();
      }
    });
    socket.on("error", () => undefined);
  });
  server.listen(Number(a), "0.0.0.0", () => console.log("ready"));
  setTimeout(() => {
    console.error("tcp-bulk: no complete measurement within 30 s");
    process.exit(1);
  }, 30_000).unref();
} else if (mode === "send") {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const socket = net.connect(Number(b), a, () => {
    const pump = () => {
      while (socket.write(chunk)) {
        /* keep writing until the socket buffer is full */
      }
    };
    socket.on("drain", pump);
    pump();
  });
  socket.on("error", () => process.exit(0));
  socket.on("close", () => process.exit(0));
  setTimeout(() => process.exit(1), 30_000).unref();
} else {
  console.error("usage: tcp-bulk.js recv PORT SECONDS | send HOST PORT");
  process.exit(2);
}
