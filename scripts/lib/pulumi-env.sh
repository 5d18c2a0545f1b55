# Sourced by scripts/pulumi and scripts/drift-check: the environment in which the
# project's Pulumi CLI (see scripts/setup) runs offline: .tools/bin first on PATH (node
# 22+, pulumi, the Node.js language host, the dynamic-provider launcher), a local file
# backend and no update checks unless you set them yourself. Expects $root.
[ -x "$root/.tools/bin/pulumi" ] || { echo "run scripts/setup first" >&2; exit 1; }
export PATH="$root/.tools/bin:$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_HOME=${PULUMI_HOME:-$root/.tools/pulumi-home}
# Pulumi writes a debug log of every command to $PULUMI_HOME/logs and keeps up to 500 MB
# of them; 100 MB of history is plenty here.
export PULUMI_LOG_ROTATION_MAX_TOTAL_MB=${PULUMI_LOG_ROTATION_MAX_TOTAL_MB:-100}
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-}
# Node.js keeps compiled code of the modules it loads (@pulumi/pulumi, typescript, nslab)
# here, so the program and the provider process start faster (set it empty to disable).
export NODE_COMPILE_CACHE=${NODE_COMPILE_CACHE-$root/.tools/node-compile-cache}
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  mkdir -p "$root/.tools/state"
  export PULUMI_BACKEND_URL="file://$root/.tools/state"
fi
