/**
 * Errors in a program's arguments found by the SDK (sdk/errors.ts): a RunError, which
 * Pulumi prints without a stack trace, whose message ends with the user's line.
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it } from "vitest";
import { checkMaster } from "../../sdk/bridge";
import { captureCall, userSite } from "../../sdk/callsites";
import { PlanError, planNetwork } from "../../sdk/components/plan";
import { ProgramError } from "../../sdk/errors";

const HERE = path.relative(process.cwd(), __filename);
const site = new RegExp(`\\(at ${HERE.replace(/[.]/g, "\\.")}:\\d+:\\d+\\)$`);

describe("ProgramError", () => {
  afterEach(() => {
    delete process.env.NSLAB_FULL_STACK_TRACES;
  });

  it("is a RunError whose message names the user's line and whose stack is that message alone", () => {
    const e = new ProgramError("Thing \"x\": bad; fix it.");
    expect(pulumi.RunError.isInstance(e)).toBe(true);
    expect(e.name).toBe("ProgramError");
    expect(e.message).toMatch(/^Thing "x": bad; fix it\. \(at /);
    expect(e.message).toMatch(site);
    expect(e.stack).toBe(e.message);
    process.env.NSLAB_FULL_STACK_TRACES = "1";
    expect(new ProgramError("y").stack).toMatch(/\n\s+at /);
  });

  it("drops the prefix Pulumi's serializer writes in front of its message (naming a property it may not be about), keeps anything else written, and is copied whole afterwards", () => {
    const e = new ProgramError('IpForwarding "two": ipv4 forwarding is already managed by IpForwarding "one".');
    const said = e.message;
    // As @pulumi/pulumi's runtime/rpc.js does for an error thrown while it awaits a property:
    e.message = `error serializing property "namespace": ${e.message}`;
    expect(e.message).toBe(said);
    expect(Object.getOwnPropertyDescriptor(e, "message")).toMatchObject({ value: said, writable: true });
    expect(structuredClone(e).message).toBe(said);
    e.message = "another text";
    expect(e.message).toBe("another text");
    // Not yet written: a copy keeps the text in its stack.
    expect(structuredClone(new ProgramError("z")).stack).toMatch(/^z/);
  });

  it("thrown later (inside an apply) names the line of the call taken in the constructor", () => {
    const bridges = new Map([["br0", new Set(["ns:siteA"])]]);
    const call = captureCall();
    // As the SDK does: the check runs later, from nslab's own frames only.
    const later = () => checkMaster(bridges, 'VethPair "p"', "a.", "br0", "siteB", undefined, call);
    let thrown: unknown;
    try {
      later();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ProgramError);
    expect((thrown as Error).message).toMatch(/^VethPair "p": a\.master "br0" is a bridge in .*, but the port is in namespace "siteB"; .* \(at /);
    expect((thrown as Error).message).toMatch(site);
  });

  it("a component's plan error is one too", () => {
    expect(() => planNetwork("BridgedNetwork \"lan\"", "10.0.0.1/24", [{ name: "a" }], true)).toThrow(PlanError);
    try {
      planNetwork("BridgedNetwork \"lan\"", "10.0.0.1/24", [{ name: "a" }], true);
    } catch (e) {
      expect(e).toBeInstanceOf(ProgramError);
      expect((e as Error).name).toBe("PlanError");
      expect((e as Error).message).toMatch(/host bits set; did you mean "10\.0\.0\.0\/24"\? \(at /);
    }
  });
});

describe("userSite", () => {
  it("is this file's line, relative to the working directory", () => {
    expect(userSite()).toMatch(new RegExp(`^${HERE.replace(/[.]/g, "\\.")}:\\d+:\\d+$`));
  });

  it("skips nslab's SDK, installed packages and Node's internals; none left is undefined", () => {
    const sdk = path.resolve(__dirname, "../../sdk");
    const call = new Error();
    call.stack = [
      "Error",
      `    at captureCall (${sdk}/callsites.ts:1:1)`,
      `    at new VethPair (${sdk}/veth.ts:2:2)`,
      "    at Module._compile (node:internal/modules/cjs/loader:1781:14)",
      "    at Object.<anonymous> (/x/node_modules/ts-node/src/index.ts:3:3)",
      `    at file://${process.cwd()}/lab/index.ts:4:5`,
    ].join("\n");
    expect(userSite(call)).toBe("lab/index.ts:4:5");
    call.stack = call.stack.split("\n").slice(0, 5).join("\n");
    expect(userSite(call)).toBeUndefined();
  });
});
