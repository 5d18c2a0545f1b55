/**
 * nslab: Linux network-virtualisation labs as Pulumi programs.
 *
 * ```ts
 * import * as nslab from "nslab";
 * const ns1 = new nslab.Namespace("ns1");
 * ```
 * @packageDocumentation
 */
import { quietPulumi } from "./quiet";
import { safeStacks } from "./safe-stacks";

// What nslab/preload does per resource, done for every program that imports nslab (the
// plain `pulumi up` too): no stack trace per promise, no per-resource debug chatter
// (sdk/quiet.ts).
quietPulumi();
// Traces Pulumi's runner can print without spinning for a minute on Node.js 22
// (sdk/safe-stacks.ts).
safeStacks();

export { Namespace } from "./namespace";
export type { NamespaceArgs } from "./namespace";
export { VethPair } from "./veth";
export type { VethPairArgs, VethEndArgs, VethEndState } from "./veth";
export { Bridge } from "./bridge";
export type { BridgeArgs } from "./bridge";
export { TapDevice } from "./tap";
export type { TapDeviceArgs } from "./tap";
export { Vxlan } from "./vxlan";
export type { VxlanArgs } from "./vxlan";
export type { AdoptArgs, HostArgs, OnHostArgs } from "./base";
export { Route } from "./route";
export type { RouteArgs } from "./route";
export { IpForwarding } from "./forwarding";
export type { IpForwardingArgs } from "./forwarding";
export { NatRule } from "./nat";
export type { NatRuleArgs } from "./nat";
export { LinkImpairment } from "./impairment";
export type { LinkImpairmentArgs, ImpairmentArgs, ImpairmentState } from "./impairment";
export { Reachability, reachabilityMatrix } from "./reachability";
export type { ReachabilityArgs, MatrixHost, MatrixSource, MatrixPair, MatrixSpec, MatrixOfHosts, MatrixOfPairs, MatrixOptions, MatrixEntry } from "./reachability";
export { ProgramError } from "./errors";
export { Process } from "./process";
export type { ProcessArgs } from "./process";
export { localLab } from "./automation";
export type { LocalLabOptions } from "./automation";
export { driftFromPreview, driftFromPreviewEvents, driftFromRefreshEvents, formatDrift, propertyDrift } from "./drift";
export type { DiagnosticEvent, EngineEvent, ResourceDrift, ResourceEvent, PropertyDrift, PreviewStep, StepEventMetadata, StepState } from "./drift";
export * from "./components";
