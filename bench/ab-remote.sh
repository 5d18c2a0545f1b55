#!/usr/bin/env bash
# A/B comparison of two revisions of nslab on bench/remote.js (a lab on a host over SSH
# against the same lab here), interleaved so that the machine's drift hits both alike:
#   bench/ab-remote.sh REV_A REV_B [ROUNDS=3] [NAMESPACES=50]
# Builds each revision's provider/ and sdk/ into bench/.work/abr-*/dist, then for each
# round runs bench/remote.js (2 counted runs after one warm-up pair) with one build,
# then the other, in place of this checkout's dist/ (put back on exit). Prints one line
# per run with remote.js's medians and ratios. Run nothing else from this checkout
# meanwhile (tests, another bench): its dist/ is swapped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
a=$1 b=$2 rounds=${3:-3} namespaces=${4:-50}
work=bench/.work
mkdir -p "$work"

build() {
  local rev=$1 dir="$work/abr-$1"
  rm -rf "$dir" && mkdir -p "$dir"
  git archive "$rev" provider sdk tsconfig.json | tar -x -C "$dir"
  ln -s "$root/node_modules" "$dir/node_modules"
  npx tsc -p "$dir/tsconfig.json" >&2
  echo "$dir/dist"
}
dist_a=$(build "$a")
dist_b=$(build "$b")

mv dist "$work/abr-saved-dist"
trap 'rm -rf dist; mv "$work/abr-saved-dist" dist; rm -rf "$work/abr-$a" "$work/abr-$b"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for side in a b; do
    rev=$a src=$dist_a
    [ "$side" = b ] && rev=$b src=$dist_b
    rm -rf dist && cp -r "$src" dist
    printf '%-12s round %d load %-5s ' "$rev" "$r" "$(cut -d' ' -f1 /proc/loadavg)"
    node bench/remote.js --namespaces "$namespaces" --runs 2 --warmup 1 | grep -E '^\| (up|refresh|destroy) ' | tr -s ' ' | tr '\n' ' '
    echo
  done
done
