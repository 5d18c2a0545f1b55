/**
 * The stack part of nslab's owner strings (sdk/identity.ts): the backend URL is found
 * as the Pulumi CLI finds it, spelled one way per backend, and two backends give two
 * identities.
 */
import { describe, expect, it } from "vitest";
import { dispatch } from "../../provider";
import { stableMac } from "../../provider/resource";
import { backendUrl, BackendSources, normaliseBackendUrl, projectBackendUrl, stackIdentity } from "../../sdk/identity";

const sources = (over: Partial<BackendSources> & { files?: Record<string, string> } = {}): BackendSources => ({
  env: over.env ?? {},
  cwd: over.cwd ?? "/lab",
  home: over.home ?? "/home/u",
  readFile: (file) => over.files?.[file],
});

describe("backendUrl", () => {
  it("takes PULUMI_BACKEND_URL first, then Pulumi.yaml's backend.url, then the current login", () => {
    const files = {
      "/lab/Pulumi.yaml": "name: lab\nruntime: nodejs\nbackend:\n  url: file:///state/project\n",
      "/home/u/.pulumi/credentials.json": JSON.stringify({ current: "file:///state/login" }),
    };
    expect(backendUrl(sources({ env: { PULUMI_BACKEND_URL: "file:///state/env" }, files }))).toBe("file:///state/env");
    expect(backendUrl(sources({ files }))).toBe("file:///state/project");
    expect(backendUrl(sources({ files: { "/home/u/.pulumi/credentials.json": files["/home/u/.pulumi/credentials.json"] } }))).toBe("file:///state/login");
  });

  it("reads the login from PULUMI_HOME when it is set, and is undefined when nothing names a backend", () => {
    const files = { "/ph/credentials.json": JSON.stringify({ current: "s3://bucket/x/" }) };
    expect(backendUrl(sources({ env: { PULUMI_HOME: "/ph" }, files }))).toBe("s3://bucket/x");
    expect(backendUrl(sources({ files: { "/lab/Pulumi.yaml": "name: lab\nruntime: nodejs\n" } }))).toBeUndefined();
    expect(backendUrl(sources({ files: { "/home/u/.pulumi/credentials.json": "not json" } }))).toBeUndefined();
  });
});

describe("projectBackendUrl", () => {
  it.each([
    ["backend:\n  url: file://~/state\n", "file://~/state"],
    ["name: x\nbackend: # where\n    url: 'file:///a b'  # quoted\nruntime: nodejs\n", "file:///a b"],
    ['backend:\n  url: "s3://b/p"\n', "s3://b/p"],
    ["backend:\n  other: 1\nurl: file:///not-backend\n", undefined],
    ["name: x\nruntime: nodejs\n", undefined],
    ["name: x\nbackend: { url: file:///flow/state }\n", "file:///flow/state"],
    ['backend: {url: "s3://b/p", other: 1}  # flow\n', "s3://b/p"],
  ])("%j gives %j", (yaml, want) => {
    expect(projectBackendUrl(yaml)).toBe(want);
  });
});

describe("normaliseBackendUrl", () => {
  it("spells one file backend one way: absolute, ~ expanded, no trailing slash", () => {
    const one = ["file:///lab/state", "file:///lab/state/", "file://./state", "file://state", "file:///lab/x/../state"];
    for (const url of one) expect(normaliseBackendUrl(url, "/lab", "/home/u")).toBe("file:///lab/state");
    expect(normaliseBackendUrl("file://~", "/lab", "/home/u")).toBe("file:///home/u");
    expect(normaliseBackendUrl("file://~/s?no_legacy_layout=true", "/lab", "/home/u")).toBe("file:///home/u/s?no_legacy_layout=true");
    expect(normaliseBackendUrl("https://backend.example/", "/lab", "/home/u")).toBe("https://backend.example");
  });

  it("leaves out the storage library's options (how the files are written, not which): ?metadata=skip keeps the stack's identity", () => {
    expect(normaliseBackendUrl("file:///lab/state?metadata=skip", "/lab", "/home/u")).toBe("file:///lab/state");
    expect(normaliseBackendUrl("file:///lab/state?no_tmp_dir=true&metadata=skip&no_legacy_layout=true", "/lab", "/home/u")).toBe("file:///lab/state?no_legacy_layout=true");
  });
});

describe("stackIdentity", () => {
  it("differs between backends and organizations, and is PROJECT/STACK when the backend is unknown", () => {
    const a = stackIdentity("lab", "dev", "organization", "file:///state/a");
    const b = stackIdentity("lab", "dev", "organization", "file:///state/b");
    const c = stackIdentity("lab", "dev", "other-org", "file:///state/a");
    expect(a).toMatch(/^lab\/dev@[0-9a-f]{8}$/);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(stackIdentity("lab", "dev", "organization", "file:///state/a")).toBe(a);
    expect(stackIdentity("lab", "dev", "organization", undefined)).toBe("lab/dev");
  });
});

describe("the provider's check", () => {
  it("keeps the owner a resource was made with (a lab made before owners named the backend keeps its marks)", async () => {
    const legacy = "lab/dev/Namespace/h1";
    const now = "lab/dev@0123abcd/Namespace/h1";
    const kept = (await dispatch("Namespace", "check", [{ name: "h1", __owner: legacy }, { name: "h1", __owner: now }])) as { inputs: { __owner: string } };
    expect(kept.inputs.__owner).toBe(legacy);
    const fresh = (await dispatch("Namespace", "check", [undefined, { name: "h1", __owner: now }])) as { inputs: { __owner: string } };
    expect(fresh.inputs.__owner).toBe(now);
  });

  it("derives a stable MAC from the kept owner, so that a program that sees another backend (or an upgraded nslab) changes no MAC", async () => {
    const legacy = "lab/dev/Bridge/br";
    const now = "lab/dev@0123abcd/Bridge/br";
    type Checked = { inputs: { __owner: string; mac: string } };
    const made = (await dispatch("Bridge", "check", [undefined, { name: "br0", __owner: legacy }])) as Checked;
    expect(made.inputs.mac).toBe(stableMac(legacy, "bridge"));
    const again = (await dispatch("Bridge", "check", [made.inputs, { name: "br0", __owner: now }])) as Checked;
    expect(again.inputs).toMatchObject({ __owner: legacy, mac: made.inputs.mac });
    expect(((await dispatch("Bridge", "diff", ["/br0", { ...made.inputs, generation: "7", __made: "aaaaaaaa" }, again.inputs])) as { changes: boolean }).changes).toBe(false);
    // A veth's two ends alike.
    const pair = { a: { name: "v-a" }, b: { name: "v-b" } };
    const vMade = (await dispatch("VethPair", "check", [undefined, { ...pair, __owner: "lab/dev/VethPair/v" }])) as { inputs: { a: { mac: string }; b: { mac: string } } };
    const vAgain = (await dispatch("VethPair", "check", [vMade.inputs, { ...pair, __owner: "lab/dev@0123abcd/VethPair/v" }])) as { inputs: { a: { mac: string }; b: { mac: string } } };
    expect([vAgain.inputs.a.mac, vAgain.inputs.b.mac]).toEqual([vMade.inputs.a.mac, vMade.inputs.b.mac]);
  });
});
