#!/bin/sh
# The README's results table, one row per mixer: trains each named mixer with
# the demo budget (configs/demo.json, only the mixer changes) into runs/NAME,
# evaluates its test split, and appends one JSON line to results/demo_mixers.jsonl
# (name, validation and test bpc, median ms/step, params). Resumable: a mixer
# with a line already there is skipped, one with a checkpoint but no line is
# resumed from it. Run in the background and commit the results file as lines
# arrive.
#   tools/demo_mixers.sh [--threads N] NAME...
set -eu
cd "$(dirname "$0")/.."
threads=2
if [ "${1:-}" = "--threads" ]; then threads=$2; shift 2; fi
out=results/demo_mixers.jsonl
mkdir -p results
touch "$out"
for name in "$@"; do
    if grep -q "\"mixer\":\"$name\"" "$out"; then echo "$name: done"; continue; fi
    dir=runs/$name
    if [ -f "$dir/checkpoint.safetensors" ]; then
        build/seqlab train --resume "$dir/checkpoint.safetensors" --threads "$threads"
    else
        build/seqlab train configs/demo.json --mixer="$name" --out_dir="$dir" \
            --threads "$threads" --overwrite
    fi
    test=$(build/seqlab eval "$dir/checkpoint.safetensors" --split test --threads "$threads")
    val=$(grep '"split":"val"' "$dir/metrics.jsonl" | tail -1)
    ms=$(grep '"step_ms"' "$dir/metrics.jsonl" | sed 's/.*"step_ms":\([0-9.]*\).*/\1/' | sort -n |
         awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    # Parameters: every tensor of the checkpoint but the optimizer's moments.
    params=$(python3 -c 'import json, struct, sys
f = open(sys.argv[1], "rb"); h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
n = 0
for k, v in h.items():
    if k != "__metadata__" and not k.startswith("adam."):
        p = 1
        for d in v["shape"]: p *= d
        n += p
print(n)' "$dir/checkpoint.safetensors")
    printf '{"mixer":"%s","params":%s,"val":%s,"test":%s,"median_step_ms":%s,"date":"%s"}\n' \
        "$name" "$params" \
        "$(echo "$val" | sed 's/.*"bpc":\([0-9.]*\).*/\1/')" \
        "$(echo "$test" | sed 's/.*"bpc":\([0-9.]*\).*/\1/')" "$ms" "$(date -u +%F)" >> "$out"
    echo "$name: $(tail -1 "$out")"
done
