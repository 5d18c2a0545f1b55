import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { engineAddress, engineAnswers } from "../../provider/health";

describe("engineAddress: the engine's address when this process is Pulumi's dynamic provider", () => {
  it.each([
    [["node", "/x/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js", "127.0.0.1:40251"], { host: "127.0.0.1", port: 40251 }],
    [["node", "/x/node_modules/@pulumi/pulumi/cmd/dynamic-provider", "[::1]:5000", "extra"], { host: "::1", port: 5000 }],
    [["node", "/x/program.js", "127.0.0.1:40251"], undefined],
    [["node", "/x/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js"], undefined],
    [["node"], undefined],
  ])("%j -> %j", (argv, want) => {
    expect(engineAddress(argv)).toEqual(want);
  });
});

describe("engineAnswers: whether the engine is there", () => {
  it("a listening engine is there even when this process's event loop is busy past the connect timeout; a closed port is not", async () => {
    const server = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      expect(await engineAnswers({ host: "127.0.0.1", port })).toBe(true);
      // A provider busy for 2.5 s (longer than the 2 s timeout) right after the connect:
      // the timer ran first and a live engine counted as gone.
      const busy = engineAnswers({ host: "127.0.0.1", port });
      const until = Date.now() + 2_500;
      while (Date.now() < until) {
        // busy
      }
      expect(await busy).not.toBe(false);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await engineAnswers({ host: "127.0.0.1", port })).toBe(false);
  });
});
