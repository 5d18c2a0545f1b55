#!/usr/bin/env bash
# A/B comparison of two environments (settings, not revisions) on the benchmark lab,
# interleaved run by run so that the machine's drift hits both alike:
#   bench/ab-env.sh "ENV_A" "ENV_B" [HOSTS=100] [ROUNDS=3] [OPS="up refresh"] [PROGRAM=lab] [MODE=tuned]
# ENV_A and ENV_B are space-separated VAR=value lists ("" for none), e.g.
#   bench/ab-env.sh "NSLAB_PRELOAD=0 NSLAB_PULUMI_LOGS=1 PULUMI_PARALLEL=8" "" 100 3 "up destroy"
#   bench/ab-env.sh "" "PULUMI_SKIP_CHECKPOINTS=true" 100 3 up lab stock
# MODE stock runs the plain pulumi command in a default environment (bench/profile.js
# --mode stock), to which the VAR=value list is added; there NSLAB_BENCH_TOOLS=DIR runs
# the CLI of another build (DIR laid out as .tools/bin: pulumi, pulumi-language-nodejs,
# node, pulumi-resource-pulumi-nodejs), to compare two builds of engine/.
# Each run is one bench/profile.js (in the sandbox); prints one line per run: the
# environment, the round, the op, wall and CPU time and the CPU split.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
a=$1 b=$2 hosts=${3:-100} rounds=${4:-3} ops=${5:-up refresh} program=${6:-lab} mode=${7:-tuned}
for ((r = 1; r <= rounds; r++)); do
  for op in $ops; do
    for side in "$a" "$b"; do
      printf '%-50s round %d %-12s load %-5s ' "${side:-(as is)}" "$r" "$op" "$(cut -d' ' -f1 /proc/loadavg)"
      # shellcheck disable=SC2086 # the list is split into VAR=value words on purpose
      env $side node bench/profile.js --hosts "$hosts" --op "$op" --program "$program" --mode "$mode" |
        sed -n '1,5p' | tr -s ' \n' ' ' | sed 's/^pulumi [a-z-]*, [0-9]* hosts ([0-9]* resources): //'
      echo
    done
  done
done
