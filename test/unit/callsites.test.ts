import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TESTED_PULUMI_VERSIONS, testedPulumiAt } from "../../sdk/pulumi-version";

const REPO = path.resolve(__dirname, "../..");

/**
 * A program as Pulumi's runner runs one: TypeScript through ts-node (with its source-map
 * formatter of stack traces), @pulumi/pulumi's runtime, nslab's SDK; Pulumi's mocks stand
 * in for the engine. It prints, per resource, the source position and stack trace the
 * runtime sent (what the engine writes into the state).
 */
const PROGRAM = (sdk: string) => `
import * as pulumi from "@pulumi/pulumi";
pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name + "-id", state: a.inputs }), call: (a) => a.inputs }, "p", "s");
type Position = { getUri(): string; getLine(): number } | undefined;
const monitor = pulumi.runtime.getMonitor() as any;
const register = monitor.registerResource.bind(monitor);
const sent: Record<string, { position?: string; trace: (string | undefined)[] }> = {};
const text = (p: Position) => p && p.getUri() + "#" + p.getLine();
monitor.registerResource = (req: any, cb: unknown) => {
  sent[req.getName()] = { position: text(req.getSourceposition()), trace: (req.getStacktrace()?.getFramesList() ?? []).map((f: any) => text(f.getPc())) };
  return register(req, cb);
};
const nslab = require(${JSON.stringify(sdk)});
function declare() {
  new nslab.Namespace("direct"); // marker: direct
}
declare(); // marker: caller
new nslab.BridgedNetwork("net", { cidr: "10.9.0.0/24", hosts: ["child"] }); // marker: component
process.env.NSLAB_FULL_STACK_TRACES = "1";
new nslab.Namespace("full"); // marker: full
delete process.env.NSLAB_FULL_STACK_TRACES;
const mine = (e: Error) => "mine: " + e.message;
Error.prepareStackTrace = mine;
new nslab.Namespace("formatter");
const kept = Error.prepareStackTrace === mine && new Error("x").stack === "mine: x";
setTimeout(() => console.log(JSON.stringify({ sent, kept })), 500);
`;

interface Sent {
  position?: string;
  trace: (string | undefined)[];
}
let result: { sent: Record<string, Sent>; kept: boolean };
/** URI#line of the program's line that holds MARKER. */
const at = (marker: string) => `${uri}#${PROGRAM("").split("\n").findIndex((l) => l.includes(`// marker: ${marker}`)) + 1}`;
let dir: string;
let uri: string;

beforeAll(() => {
  fs.mkdirSync(path.join(REPO, "test/.work"), { recursive: true });
  dir = fs.mkdtempSync(path.join(REPO, "test/.work/callsites-"));
  const file = path.join(dir, "index.ts");
  fs.writeFileSync(file, PROGRAM(path.join(REPO, "sdk/index")));
  uri = pathToFileURL(file).href;
  const stdout = execFileSync(process.execPath, ["-r", "ts-node/register/transpile-only", file], {
    cwd: REPO,
    env: { ...process.env, NODE_OPTIONS: "", NSLAB_FULL_STACK_TRACES: "" },
    encoding: "utf8",
  });
  result = JSON.parse(stdout.trim().split("\n").pop()!);
}, 60_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("the call sites Pulumi records for each resource (sdk/callsites.ts)", () => {
  it("are the user's line and the user's own frames, not nslab's and not the program's loaders", () => {
    const direct = result.sent.direct;
    expect(direct.position).toBe(at("direct"));
    expect(direct.trace).toEqual([at("direct"), at("caller")]);
  });

  it("of a component and its children are the line that declared the component", () => {
    expect(result.sent.net.position).toBe(at("component"));
    for (const child of ["net-child", "net-bridge"]) {
      expect(result.sent[child].position, child).toBe(at("component"));
      expect(result.sent[child].trace, child).toEqual([at("component")]);
    }
  });

  it("are Pulumi's own, full trace with NSLAB_FULL_STACK_TRACES=1", () => {
    const full = result.sent.full;
    // Pulumi drops one frame below its own, which for nslab is its base class: the
    // position is nslab's constructor, and the trace runs down through ts-node and Node.
    const source = path.join(REPO, "sdk/namespace.ts");
    const line = fs.readFileSync(source, "utf8").split("\n").findIndex((l) => l.includes('super("Namespace"')) + 1;
    expect(line).toBeGreaterThan(0);
    expect(full.position).toBe(pathToFileURL(source).href + `#${line}`);
    expect(full.trace).toContain(at("full"));
    expect(full.trace.some((f) => f?.includes("/node_modules/ts-node/"))).toBe(true);
    expect(full.trace.length).toBeGreaterThan(5);
  });

  it("leave Error.prepareStackTrace as they found it", () => {
    expect(result.kept).toBe(true);
    // (Registered; its position is what that formatter's text gives Pulumi: none here.)
    expect(result.sent.formatter).toBeDefined();
  });
});

describe("the call-site shaping only touches @pulumi/pulumi versions it was tested with", () => {
  it("lists the version the repository pins, which is the one installed", () => {
    const pinned = (JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies["@pulumi/pulumi"];
    expect(TESTED_PULUMI_VERSIONS).toContain(pinned);
    expect(testedPulumiAt(path.join(REPO, "node_modules/@pulumi/pulumi"))).toBe(true);
  });

  let other: string;
  beforeAll(() => {
    other = fs.mkdtempSync(path.join(os.tmpdir(), "nslab-pulumi-"));
    fs.writeFileSync(path.join(other, "package.json"), JSON.stringify({ name: "@pulumi/pulumi", version: "3.999.0" }));
  });
  afterAll(() => fs.rmSync(other, { recursive: true, force: true }));

  it("leaves any other release alone (and one it cannot read)", () => {
    expect(testedPulumiAt(other)).toBe(false);
    expect(testedPulumiAt(path.join(other, "missing"))).toBe(false);
  });
});
