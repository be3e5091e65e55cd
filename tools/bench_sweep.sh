#!/bin/sh
# One `seqlab bench --mixer` point per (mixer, length), appended as JSON
# lines to OUT; a point already in OUT is skipped, so a killed sweep
# continues where it stopped. Run it in the background on a quiet machine
# and commit OUT as lines arrive. PyTorch is compared up to --compare-max
# tokens (its layers need far more memory and time beyond).
#   tools/bench_sweep.sh OUT SEQS MIXER... [-- BENCH_FLAGS...]
#   e.g. tools/bench_sweep.sh results/bench_mixers.jsonl 1024,4096,16384 mamba s4d
# Environment: THREADS (2), COMPARE_MAX (16384), ROUNDS and REPS (3 and 5
# with PyTorch, 1 and 1 without).
set -eu
cd "$(dirname "$0")/.."
out=$1
seqs=$2
shift 2
mixers=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do mixers="$mixers $1"; shift; done
[ "${1:-}" = "--" ] && shift
threads=${THREADS:-2}
cmax=${COMPARE_MAX:-16384}
mkdir -p "$(dirname "$out")"
touch "$out"
for m in $mixers; do
    for T in $(echo "$seqs" | tr ',' ' '); do
        if grep -q "\"mixer\":\"$m\",\"seq\":$T,\"threads\":$threads," "$out"; then
            echo "$m $T: done"
            continue
        fi
        # Ours alone: one round, one rep unless REPS says otherwise (the
        # arena's pages are touched before the timed rep).
        cmp=""
        r=${ROUNDS:-1}
        n=${REPS:-1}
        if [ "$T" -le "$cmax" ]; then
            cmp=--compare
            r=${ROUNDS:-3}
            n=${REPS:-5}
        fi
        OMP_WAIT_POLICY=passive build/seqlab bench --mixer "$m" --seq "$T" --threads "$threads" \
            --reps "$n" --rounds "$r" $cmp "$@" 2>/dev/null | grep '^{' |
            sed "s/}\$/,\"date\":\"$(date -u +%F)\"}/" >> "$out"
        echo "$m $T: $(tail -n 1 "$out")"
    done
done
