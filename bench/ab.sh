#!/usr/bin/env bash
# A/B comparison of two revisions of nslab on the benchmark lab, interleaved so that
# the machine's drift (other tenants, thermal state) hits both sides alike:
#   bench/ab.sh REV_A REV_B [HOSTS=100] [ROUNDS=3] [OPS="up refresh"] [MODE=tuned]
# Builds each revision's provider/ and sdk/ into bench/.work/ab-*/dist, then for each
# round and op runs bench/profile.js with one build, then the other, in place of this
# checkout's dist/ (put back on exit). Prints one line per run. MODE stock runs the plain
# pulumi command in a default environment (bench/profile.js --mode stock). MODE remote
# runs bench/remote.js instead (HOSTS namespaces on a host over SSH against the same lab
# here; 2 counted runs after one warm-up pair, up, refresh and destroy, OPS ignored): one
# line per round and revision with its medians and ratios. Run nothing
# else from this checkout meanwhile (tests, another bench): its dist/ is swapped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
a=$1 b=$2 hosts=${3:-100} rounds=${4:-3} ops=${5:-up refresh} mode=${6:-tuned}
work=bench/.work
mkdir -p "$work"

build() {
  local rev=$1 dir="$work/ab-$1"
  rm -rf "$dir" && mkdir -p "$dir"
  git archive "$rev" provider sdk tsconfig.json | tar -x -C "$dir"
  ln -s "$root/node_modules" "$dir/node_modules"
  npx tsc -p "$dir/tsconfig.json" >&2
  echo "$dir/dist"
}
dist_a=$(build "$a")
dist_b=$(build "$b")

mv dist "$work/ab-saved-dist"
trap 'rm -rf dist; mv "$work/ab-saved-dist" dist; rm -rf "$work/ab-$a" "$work/ab-$b"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for side in a b; do
    rev=$a src=$dist_a
    [ "$side" = b ] && rev=$b src=$dist_b
    rm -rf dist && cp -r "$src" dist
    if [ "$mode" = remote ]; then
      printf '%-12s round %d load %-5s ' "$rev" "$r" "$(cut -d' ' -f1 /proc/loadavg)"
      node bench/remote.js --namespaces "$hosts" --runs 2 --warmup 1 | grep -E '^\| (up|refresh|destroy) ' | tr -s ' ' | tr '\n' ' '
      echo
      continue
    fi
    for op in $ops; do
      printf '%-12s round %d %-8s load %-5s ' "$rev" "$r" "$op" "$(cut -d' ' -f1 /proc/loadavg)"
      node bench/profile.js --hosts "$hosts" --op "$op" --mode "$mode" | sed -n '1,5p' | tr -s ' \n' ' ' | grep -o 'wall .*'
    done
  done
done
