/**
 * The components' arguments, checked while the program declares them: a misspelt or
 * misplaced key, a missing one and a value of the wrong type fail (a PlanError naming
 * the component, the argument and the fix), as the resources' own `check` does for
 * theirs. A component's arguments are plain JavaScript values (only some of them may be
 * Outputs), so a JavaScript program, or TypeScript with `noCheck`, would otherwise build
 * something else than it says (`gatway: true`: no gateway) or fail with a TypeError.
 */
import * as pulumi from "@pulumi/pulumi";
import { closestName } from "../../provider/validate";
import { PlanError } from "./plan";

/** What a field holds: a plain type, anything an Input may be, or an object of known keys. */
export type FieldType = "string" | "number" | "boolean" | "input" | "host" | "network" | Shape | { arrayOf: FieldType | FieldType[] };
/** An object's fields; a name ending in "!" is required. */
export interface Shape {
  [key: string]: FieldType | FieldType[];
}

const isShape = (t: FieldType): t is Shape => typeof t === "object" && !("arrayOf" in t);
const describe = (t: FieldType): string =>
  typeof t === "string"
    ? { string: "a string", number: "a number", boolean: "true or false", input: "a value", host: "a host ({ ssh: \"user@machine\", ... })", network: "a BridgedNetwork" }[t]
    : "arrayOf" in t
      ? "a list"
      : "an object";

/** Throws a PlanError for the first argument of `args` that `shape` does not allow. */
export function checkArgs(owner: string, args: unknown, shape: Shape): void {
  const fail = (why: string) => {
    throw new PlanError(`${owner}: ${why}`);
  };
  const matches = (value: unknown, type: FieldType): boolean => {
    if (type === "input") return true;
    // An Output only where the component takes an Input: the rest is needed while it plans.
    if (pulumi.Output.isInstance(value)) return false;
    if (type === "string" || type === "number" || type === "boolean") return typeof value === type;
    if (type === "network") return !!value && typeof value === "object" && typeof (value as { cidr?: unknown }).cidr === "string" && "bridge" in value;
    if (type === "host" || isShape(type)) return !!value && typeof value === "object" && !Array.isArray(value);
    return Array.isArray(value);
  };
  const walk = (value: unknown, types: FieldType | FieldType[], path: string): void => {
    const options = Array.isArray(types) ? types : [types];
    const type = options.find((t) => matches(value, t));
    if (type === undefined) return fail(`${path} must be ${options.map(describe).join(" or ")}, got ${show(value)}.`);
    if (typeof type === "object" && "arrayOf" in type) return (value as unknown[]).forEach((v, i) => walk(v, type.arrayOf, `${path}[${i}]`));
    if (isShape(type)) fields(value as Record<string, unknown>, type, `${path}.`);
  };
  const fields = (value: Record<string, unknown>, shape: Shape, prefix: string): void => {
    const names = Object.keys(shape).map((k) => k.replace(/!$/, ""));
    for (const key of Object.keys(value)) {
      if (names.includes(key)) continue;
      const near = closestName(key, names);
      fail(`${prefix}${key} is not an argument${prefix ? ` of ${prefix.slice(0, -1)}` : ""}${near ? ` (did you mean ${prefix}${near}?)` : ""}; the arguments are ${names.join(", ")}.`);
    }
    for (const [key, types] of Object.entries(shape)) {
      const name = key.replace(/!$/, "");
      const v = value[name];
      if (v === undefined || v === null) {
        if (key.endsWith("!")) fail(`${prefix}${name} is required (${describe(Array.isArray(types) ? types[0] : types)}).`);
        continue;
      }
      walk(v, types, `${prefix}${name}`);
    }
  };
  if (!args || typeof args !== "object" || Array.isArray(args)) fail(`its arguments must be an object, got ${show(args)}.`);
  fields(args as Record<string, unknown>, shape, "");
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === undefined || v === null || typeof v !== "object") return String(v);
  if (Array.isArray(v)) return "a list";
  const ctor = (v as object).constructor?.name;
  return ctor && ctor !== "Object" ? `a ${ctor}` : "an object";
}
