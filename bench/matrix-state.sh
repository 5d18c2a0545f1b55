#!/usr/bin/env bash
# State size of a probe matrix: a BridgedNetwork of HOSTS hosts and a reachabilityMatrix
# of its HOSTS x (HOSTS - 1) probes (dependsOn: [lan]), one `pulumi up` in the sandbox;
# prints the up's wall time, the state's size, a probe's size and how many resources
# Pulumi lists for its __links input and for its dependsOn. DIST: the nslab build to
# use (default this checkout's dist/; bench/ab.sh's way of building another revision
# works here too).
#   scripts/sandbox bench/matrix-state.sh [HOSTS=10] [DIST=dist]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
hosts=${1:-10} dist=$(cd "${2:-$root/dist}" && pwd)
[ -n "${NSLAB_SANDBOX:-}" ] || { echo "run it under scripts/sandbox" >&2; exit 2; }
export PATH="$root/.tools/bin:$PATH"
work=$(mktemp -d /tmp/nslab-matrix-state.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/proj/node_modules/@pulumi" "$work/proj/node_modules/nslab" "$work/state"
cd "$work/proj"
echo '{"name":"matrix-state","dependencies":{"nslab":"*","@pulumi/pulumi":"*"}}' > package.json
printf 'name: matrix-state\nruntime: { name: nodejs, options: { typescript: true } }\n' > Pulumi.yaml
ln -s "$root/node_modules/@pulumi/pulumi" node_modules/@pulumi/pulumi
for m in execa ipaddr.js typescript ts-node; do ln -s "$root/node_modules/$m" "node_modules/$m"; done
cp "$root/package.json" node_modules/nslab/ && cp -r "$dist" node_modules/nslab/dist
names=$(seq 1 "$hosts" | sed 's/.*/"h&"/' | paste -sd,)
cat > index.ts <<T
import * as nslab from "nslab";
const lan = new nslab.BridgedNetwork("lan", { cidr: "10.0.0.0/22", hosts: [$names] });
nslab.reachabilityMatrix("m", { hosts: lan.hosts }, {}, { dependsOn: [lan] });
T
export PULUMI_BACKEND_URL="file://$work/state" PULUMI_CONFIG_PASSPHRASE= PULUMI_NODEJS_TRANSPILE_ONLY=true PULUMI_SKIP_CONFIRMATIONS=true
pulumi stack init dev >/dev/null
start=$(date +%s.%N)
pulumi up --yes --non-interactive >/dev/null
end=$(date +%s.%N)
pulumi stack export > state.json
node -e '
const d = JSON.parse(require("fs").readFileSync("state.json", "utf8"));
const probes = d.deployment.resources.filter((r) => r.type.endsWith(":Reachability"));
const size = probes.reduce((n, r) => n + JSON.stringify(r).length, 0) / probes.length;
console.log(`hosts ${process.argv[1]}: up ${Number(process.argv[2]).toFixed(2)} s, state ${require("fs").statSync("state.json").size} bytes, ${probes.length} probes of ${Math.round(size)} bytes each; __links from ${(probes[0].propertyDependencies?.__links ?? []).length} resources, dependencies ${(probes[0].dependencies ?? []).length}`);
' "$hosts" "$(echo "$end - $start" | bc)"
pulumi destroy --yes --non-interactive >/dev/null
