# Sourced by scripts/pulumi and scripts/drift-check: the environment in which the
# project's Pulumi CLI (see scripts/setup) runs offline: .tools/bin first on PATH (node
# 22+, pulumi, the Node.js language host, the dynamic-provider launcher), a local file
# backend and no update checks unless you set them yourself. Expects $root.
[ -x "$root/.tools/bin/pulumi" ] || { echo "run scripts/setup first" >&2; exit 1; }
# nslab's switches take 0 or 1 (or nothing, for the default); anything else is refused.
for switch in NSLAB_PRELOAD NSLAB_PULUMI_LOGS NSLAB_PULUMI_DEBUG; do
  case "${!switch:-}" in
    "" | 0 | 1) ;;
    *) echo "$switch must be 0 or 1 (it is '${!switch}'); unset it for the default" >&2; exit 2 ;;
  esac
done
unset switch
# The ip sessions' limits (provider/limits.ts) take a positive whole number, refused here
# before anything runs rather than by the provider process at its first operation.
for limit in NSLAB_IP_MAX_SESSIONS NSLAB_IP_IDLE_MS NSLAB_IP_MAX_AGE_MS NSLAB_IP_TIMEOUT_MS; do
  value=${!limit:-}
  if [ -n "$value" ] && ! [[ $value =~ ^[[:space:]]*[1-9][0-9]*[[:space:]]*$ ]]; then
    echo "$limit must be a positive whole number (it is '$value'); unset it for the default" >&2
    exit 2
  fi
done
unset limit value
export PATH="$root/.tools/bin:$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
own_home=
[ -z "${PULUMI_HOME:-}" ] && own_home=1
export PULUMI_HOME=${PULUMI_HOME:-$root/.tools/pulumi-home}
# The CLI writes a debug log of every command to $PULUMI_HOME/logs, which costs about a
# fifth of the engine's CPU time (it formats every debug message it would otherwise skip).
# There is no switch for it; it is skipped when that path is not a directory. In our own
# PULUMI_HOME, logs is a link: to /dev/null (no logs, the default) or, with
# NSLAB_PULUMI_LOGS=1, to the folder logs.d. With a PULUMI_HOME of yours, the link is made
# only if you set NSLAB_PULUMI_LOGS yourself (0 or 1).
if [ -n "$own_home" ] || [ -n "${NSLAB_PULUMI_LOGS:-}" ]; then
  logs="$PULUMI_HOME/logs" want=/dev/null
  [ "${NSLAB_PULUMI_LOGS:-0}" = 1 ] && want="$PULUMI_HOME/logs.d"
  [ -d "$PULUMI_HOME" ] || mkdir -p -m 700 "$PULUMI_HOME" # as private as the CLI makes it
  mkdir -p -m 700 "$PULUMI_HOME/logs.d"
  # A real folder (an older setup, or made by the CLI meanwhile): keep what is in it.
  if [ -d "$logs" ] && [ ! -L "$logs" ]; then
    mv -f "$logs"/* "$PULUMI_HOME/logs.d/" 2>/dev/null || true
    rmdir "$logs" 2>/dev/null || true
  fi
  if [ "$(readlink "$logs" 2>/dev/null)" != "$want" ]; then
    # Replaced in one rename, so a CLI starting meanwhile never sees no logs at all.
    ln -sfn "$want" "$logs.$$" && mv -Tf "$logs.$$" "$logs" 2>/dev/null || rm -f "$logs.$$"
  fi
  unset logs want
fi
unset own_home
# Pulumi keeps up to 500 MB of those logs; 100 MB of history is plenty here.
export PULUMI_LOG_ROTATION_MAX_TOTAL_MB=${PULUMI_LOG_ROTATION_MAX_TOTAL_MB:-100}
# nslab/preload in every Node.js process of the CLI's (the program, the provider
# process): see sdk/preload.ts. NSLAB_PRELOAD=0 leaves it out.
if [ "${NSLAB_PRELOAD:-1}" != 0 ] && [ -f "$root/dist/sdk/preload.js" ]; then
  case "${NODE_OPTIONS:-}" in
    *"$root/dist/sdk/preload.js"*) ;; # scripts/pulumi run by a process that already has it
    *) export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--require \"$root/dist/sdk/preload.js\"" ;;
  esac
fi
# Asked for debug output (-d, --debug, -v..., --verbose, --logtostderr, --logflow): the
# preload then lets Pulumi's per-resource debug messages through.
nslab_debug_args() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      -d | --debug | --debug=true | -v | -v=* | -v[0-9]* | --verbose | --verbose=* | --logtostderr* | --logflow*)
        export NSLAB_PULUMI_DEBUG=1
        return
        ;;
    esac
  done
}
# The engine runs 4 resource operations per CPU at once unless told otherwise. nslab's
# operations mostly wait (for the kernel's RCU grace periods, for ip), not compute: on 2
# cores, 32 at once destroys the 100-host bench lab in 1.36 s instead of 1.68 s and the
# 300-host one in 2.9 s instead of 3.65 s (bench/profile.js, interleaved); up is unchanged.
export PULUMI_PARALLEL=${PULUMI_PARALLEL:-32}
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-}
# Node.js keeps compiled code of the modules it loads (@pulumi/pulumi, typescript, nslab)
# here, so the program and the provider process start faster (set it empty to disable).
export NODE_COMPILE_CACHE=${NODE_COMPILE_CACHE-$root/.tools/node-compile-cache}
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  mkdir -p "$root/.tools/state"
  export PULUMI_BACKEND_URL="file://$root/.tools/state"
fi
