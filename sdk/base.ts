import * as pulumi from "@pulumi/pulumi";

/**
 * The dynamic provider of one resource kind: a trampoline that loads the installed
 * nslab provider by package name at call time (see provider/index.ts for why).
 * The engine serializes these functions into state, so they must stay tiny and
 * capture nothing but `kind`.
 */
function trampoline(kind: string): pulumi.dynamic.ResourceProvider {
  return {
    check: (olds: unknown, news: unknown) => require("nslab/provider").dispatch(kind, "check", [olds, news]),
    diff: (id: string, olds: unknown, news: unknown) => require("nslab/provider").dispatch(kind, "diff", [id, olds, news]),
    create: (inputs: unknown) => require("nslab/provider").dispatch(kind, "create", [inputs]),
    read: (id: string, props: unknown) => require("nslab/provider").dispatch(kind, "read", [id, props]),
    update: (id: string, olds: unknown, news: unknown) => require("nslab/provider").dispatch(kind, "update", [id, olds, news]),
    delete: (id: string, props: unknown) => require("nslab/provider").dispatch(kind, "delete", [id, props]),
  } as pulumi.dynamic.ResourceProvider;
}

const providers = new Map<string, pulumi.dynamic.ResourceProvider>();

/** Options every nslab resource accepts besides its own arguments. */
export interface AdoptArgs {
  /**
   * Take over an existing kernel object with the same identity that matches these
   * arguments, instead of failing with "already exists". This is nslab's answer to
   * dynamic providers not supporting `pulumi import`. Changing it never changes the
   * object. Default false.
   */
  adopt?: pulumi.Input<boolean>;
}

/** Base of every nslab resource: a Pulumi dynamic resource of type `nslab:<Kind>`. */
export abstract class NslabResource extends pulumi.dynamic.Resource {
  protected constructor(kind: string, name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    let provider = providers.get(kind);
    if (!provider) {
      provider = trampoline(kind);
      providers.set(kind, provider);
    }
    const owner = `${pulumi.getProject()}/${pulumi.getStack()}/${kind}/${name}`;
    super(provider, name, { ...props, __owner: owner }, opts, "nslab", kind);
  }
}
