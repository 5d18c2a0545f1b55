/**
 * Errors in a program's arguments that nslab's SDK finds itself (the checks that look
 * at more than one resource, and the components' plans), as opposed to those the
 * provider's `check` reports per resource.
 */
import * as pulumi from "@pulumi/pulumi";
import { captureCall, userSite } from "./callsites";

/** The prefix @pulumi/pulumi's runtime/rpc.js (serializeFilteredProperties) gives an error thrown while serializing a property. */
const SERIALIZING = /^error serializing property "[^"]*": /;

/**
 * A mistake in the program, not in nslab. Pulumi prints a RunError's message alone,
 * without a stack trace of nslab's and Pulumi's frames; so the message names the
 * resource, the argument and the fix, and ends with the line of the user's program that
 * declared it. `call`: where to find that line (by default the current call; pass one
 * taken with captureCall in the constructor when the error is thrown later, inside an
 * apply).
 */
export class ProgramError extends pulumi.RunError {
  /** "ProgramError" ("PlanError" for a component's plan). */
  override readonly name: string = "ProgramError";
  constructor(message: string, call: Error = captureCall()) {
    const site = userSite(call);
    super(site ? `${message} (at ${site})` : message);
    // Pulumi's serializer writes `error serializing property "P": ` in front of the message
    // of an error thrown while it awaits a resource's property (one thrown inside an apply
    // of its arguments), and it names a property the message may not be about. The
    // message names the resource and the argument already: that prefix is dropped, and
    // anything else written to it is kept. The first write makes `message` a plain value
    // again; until then it is an accessor, which V8's serializer (structuredClone,
    // postMessage to a worker) does not copy: such a copy keeps the text in `stack`.
    const text = this.message;
    Object.defineProperty(this, "message", {
      configurable: true,
      enumerable: false,
      get: () => text,
      set(this: ProgramError, value: unknown) {
        Object.defineProperty(this, "message", { value: String(value).replace(SERIALIZING, ""), writable: true, configurable: true, enumerable: false });
      },
    });
    // One that surfaces after the program's code has returned (from inside an apply) is
    // printed by Pulumi as its stack: that is the message alone too, unless
    // NSLAB_FULL_STACK_TRACES=1.
    if (process.env.NSLAB_FULL_STACK_TRACES !== "1") this.stack = this.message;
  }
}
