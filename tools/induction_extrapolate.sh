#!/bin/sh
# Induction heads past the training length (Mamba's Table 2): every run of
# an induction_heads sweep evaluated on its test examples at longer
# lengths with `seqlab eval --seq-len N`, one JSON line per (run, length)
# appended to OUT; a pair already in OUT is skipped, so it resumes.
#   tools/induction_extrapolate.sh SWEEP_DIR OUT [LENGTHS] [EXAMPLES]
#   e.g. tools/induction_extrapolate.sh runs/sweeps/induction_heads \
#            results/induction_extrapolation.jsonl 64,256,1024,4096,16384,65536 20
# Attention's cost grows as N^2: its lengths stop at MAX_ATTENTION (16384).
set -eu
cd "$(dirname "$0")/.."
dir=$1
out=$2
lengths=${3:-64,128,256,512,1024,2048,4096,8192,16384,32768,65536,131072,262144,524288,1048576}
examples=${4:-20}
maxatt=${MAX_ATTENTION:-16384}
touch "$out"
for run in "$dir"/runs/*/; do
    name=$(basename "$run")
    [ -f "$run/result.json" ] || continue
    ck="$run/checkpoint.safetensors"
    mixer=$(sed -n 's/.*"mixer": *"\([a-z0-9_]*\)".*/\1/p' "$run/result.json" | head -n 1)
    for n in $(echo "$lengths" | tr ',' ' '); do
        if grep -q "\"run\":\"$name\",\"seq_len\":$n," "$out"; then continue; fi
        if [ "$mixer" = attention ] && [ "$n" -gt "$maxatt" ]; then continue; fi
        line=$(build/seqlab eval "$ck" --seq-len "$n" --batch-size 1 \
            --induction_heads.test_examples="$examples" 2>/dev/null | grep '^{') || continue
        acc=$(echo "$line" | sed -n 's/.*"accuracy":\([0-9.null]*\).*/\1/p')
        echo "{\"run\":\"$name\",\"seq_len\":$n,\"mixer\":\"$mixer\",\"accuracy\":$acc,\"examples\":$examples}" >> "$out"
        echo "$name $n: $acc"
    done
done
