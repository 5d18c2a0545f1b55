import { describe, expect, it } from "vitest";
import { inspect } from "node:util";
import { commandError, isKind, NslabError } from "../../provider/errors";
import { recordWriteError } from "../../provider/kernel";

describe("commandError: one place maps a command's failure to a kind", () => {
  it.each([
    ["RTNETLINK answers: Operation not permitted", "Permission", /CAP_NET_ADMIN, and CAP_SYS_ADMIN to create, enter or delete namespaces: run as root or grant both/],
    ["mount --make-shared /run/netns failed: Permission denied", "Permission", /CAP_NET_ADMIN/],
    ["RTNETLINK answers: File exists", "AlreadyExists", /set adopt: true/],
    ['Cannot find device "veth0"', "NotFound", /not found/],
    ["RTNETLINK answers: No such process", "NotFound", /not found/],
    ["RTNETLINK answers: Operation not supported", "Unsupported", /does not support/],
    ["Error: either \"local\" is duplicate, or \"x\" is a garbage.", "CommandFailed", /command failed: ip addr add x/],
  ])("%s -> %s", (stderr, kind, message) => {
    const err = commandError('veth "v" in namespace "ns1"', "ip addr add x", stderr, 2);
    expect(err.kind).toBe(kind);
    expect(isKind(err, kind as never)).toBe(true);
    expect(err.message).toMatch(/^veth "v" in namespace "ns1"/);
    expect(err.message).toMatch(message);
    expect(err.details).toMatchObject({ command: "ip addr add x", exitCode: 2 });
  });
});

describe("commandError: a tool missing inside a namespace is never NotFound", () => {
  it("nsenter's 'failed to execute nft: No such file or directory' says nft is not installed", () => {
    const err = commandError('masquerade rule in namespace "ns1"', "nsenter --net=/run/netns/ns1 -- nft -j list table inet nslab", "nsenter: failed to execute nft: No such file or directory\n", 127);
    expect(err.kind).toBe("CommandFailed");
    expect(err.message).toMatch(/^masquerade rule in namespace "ns1": nft is not installed/);
  });
  it("nft's own 'No such file or directory' for an absent table is still NotFound", () => {
    const err = commandError("r", "nft -j list table inet nslab", "Error: No such file or directory\nlist table inet nslab\n", 1);
    expect(err.kind).toBe("NotFound");
  });
});

describe("a record nslab cannot write", () => {
  it("for want of permission: says once what the user needs (root, or the folders and two capabilities)", () => {
    const line = "mkdir: cannot create directory '/run/nslab/netns-4026532': Permission denied";
    const err = recordWriteError(1, [line, line, line, line].join("\n"), "intent-netns-u1", 'namespace "u1"');
    expect(err.kind).toBe("Permission");
    expect(err.message.split(line).length).toBe(2);
    expect(err.message).toMatch(/run it as root \(on another host: log in as root there\), or give the user write access to both folders and the CAP_NET_ADMIN and CAP_SYS_ADMIN capabilities\.$/);
    expect(recordWriteError(3, "", "x", "s").kind).toBe("NotFound");
    expect(recordWriteError(1, "disk full", "x", "s").kind).toBe("CommandFailed");
  });
});

describe("an NslabError's stack", () => {
  it("is its first line alone (Pulumi prints it after the message of a failed read or delete), with every frame when NSLAB_FULL_STACK_TRACES=1", () => {
    const e = new NslabError("NotFound", 'namespace "x": gone');
    expect(e.stack).toBe('NslabError: namespace "x": gone');
    expect(`${e}: ${e.stack}`.split("\n")).toHaveLength(1);
    expect(inspect(e)).toContain('namespace "x": gone');
    e.message += " Remove it.";
    expect(e.stack).toBe('NslabError: namespace "x": gone Remove it.');
    expect(new NslabError("CommandFailed", "nslab bug: z").stack).toMatch(/\n\s+at /);
    e.stack = "set by a library";
    expect(e.stack).toBe("set by a library");
    process.env.NSLAB_FULL_STACK_TRACES = "1";
    try {
      expect(new NslabError("NotFound", "y").stack).toMatch(/^NslabError: y\n\s+at /);
    } finally {
      delete process.env.NSLAB_FULL_STACK_TRACES;
    }
  });
});
