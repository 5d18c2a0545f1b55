/**
 * Which releases of @pulumi/pulumi nslab's workarounds of Pulumi internals were tested
 * with (nslab/preload, sdk/callsites.ts). Kept apart from sdk/preload.ts because loading
 * that module installs the preload. Every workaround asks testedPulumiAt, the one
 * version check.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The @pulumi/pulumi releases the preload and the call-site shaping were tested with
 * (test/unit/preload.test.ts, test/e2e/preload.test.ts, test/unit/callsites.test.ts and
 * test/e2e/state-size.test.ts, at the version the repository pins). A test fails when the
 * pinned version is not listed, so that upgrading @pulumi/pulumi means running those
 * tests against it before adding it here.
 */
export const TESTED_PULUMI_VERSIONS: readonly string[] = ["3.260.0"];

/** The version in ROOT/package.json (ROOT: a copy of @pulumi/pulumi), or undefined when it cannot be read. */
export function pulumiVersionAt(root: string): string | undefined {
  try {
    const version = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version?: unknown }).version;
    return typeof version === "string" ? version : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the copy of @pulumi/pulumi in ROOT is a release nslab's workarounds were tested with. */
export function testedPulumiAt(root: string): boolean {
  return TESTED_PULUMI_VERSIONS.includes(pulumiVersionAt(root) ?? "");
}
