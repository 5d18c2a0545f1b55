/**
 * nslab: Linux network-virtualisation labs as Pulumi programs.
 *
 * ```ts
 * import * as nslab from "nslab";
 * const ns1 = new nslab.Namespace("ns1");
 * ```
 * @packageDocumentation
 */
export { Namespace } from "./namespace";
export type { NamespaceArgs } from "./namespace";
export type { AdoptArgs } from "./base";
