import * as pulumi from "@pulumi/pulumi";
import { AdoptArgs, NslabResource, OnHostArgs } from "./base";

export interface NamespaceArgs extends AdoptArgs, OnHostArgs {
  /**
   * The namespace's name, a file under /run/netns (`ip netns add NAME`). 1-64
   * characters of letters, digits, '_', '.', '-'. Defaults to the resource name.
   * Changing it replaces the namespace (and everything in it).
   */
  name?: pulumi.Input<string>;
}

/**
 * A named network namespace: its own interfaces, routes, netfilter rules and sysctls,
 * isolated from the host (scenario 1). Equivalent to `ip netns add NAME` followed by
 * `ip -n NAME link set lo up`. nslab marks the namespace as its own (an alias on its
 * `lo`) and deletes only namespaces carrying its mark.
 */
export class Namespace extends NslabResource {
  /** The namespace's name; use it as `namespace` of the objects inside. */
  declare readonly name: pulumi.Output<string>;
  /** The namespace's file, `/run/netns/<name>` (for `nsenter --net=`). */
  declare readonly path: pulumi.Output<string>;

  constructor(name: string, args: NamespaceArgs = {}, opts?: pulumi.CustomResourceOptions) {
    // Every argument goes to check, a misspelt one too, so that preview names it.
    super("Namespace", name, { ...args, name: args.name ?? name, path: undefined }, opts);
  }
}
