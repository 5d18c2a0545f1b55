import { describe, expect, it } from "vitest";
import { commandError, isKind } from "../../provider/errors";

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
