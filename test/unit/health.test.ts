import { describe, expect, it } from "vitest";
import { engineAddress } from "../../provider/health";

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
