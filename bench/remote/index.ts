// bench/remote.js's lab: N namespaces, on this machine or (config `host`, JSON) on another over SSH.
import * as pulumi from "@pulumi/pulumi";
import * as nslab from "nslab";

const config = new pulumi.Config();
const n = config.requireNumber("namespaces");
const hostText = config.get("host");
const host: nslab.HostArgs | undefined = hostText ? JSON.parse(hostText) : undefined;
for (let i = 0; i < n; i++) new nslab.Namespace(`n${i}`, { name: `bench${i}`, host });
