#!/bin/sh
# Makes the PyTorch-oracle parity fixtures from checkpoints the C engine writes.
#   usage: tools/make_fixtures.sh BUILD OUTDIR
# For each configs/parity/NAME.json:
#   BUILD/seqlab train CFG --stop_step=0   (initial checkpoint, full schedule in its config)
#   copy the checkpoint to OUTDIR/parity_NAME.ckpt.safetensors
#   tools/oracle.py --ckpt OUTDIR/parity_NAME.ckpt.safetensors --out OUTDIR/parity_NAME.safetensors
# so a fixture and the weights it was computed from travel together, and the
# fixture's "ckpt" metadata names the copy beside it.
# The text task wants a data file even for --stop_step=0 (enough lines for its
# by-line split), and a checkpoint's vocabulary must have exactly vocab_size
# symbols, so --data points at a scratch NAME.txt: 400 lines of vocab_size - 1
# letters plus the newline. Its content does not matter: the oracle draws
# the batch.
# The oracle needs Debian's /usr/bin/python3 with python3-torch (tools/install_deps.sh torch).
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD OUTDIR" >&2
    exit 2
fi
if [ ! -x "$1/seqlab" ]; then
    echo "$0: $1/seqlab: not found or not executable (build it first)" >&2
    exit 1
fi
root=$(cd "$(dirname "$0")/.." && pwd)
seqlab="$(cd "$1" && pwd)/seqlab"
mkdir -p "$2"
out=$(cd "$2" && pwd)
python=/usr/bin/python3

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
n=0
for cfg in configs/parity/*.json; do
    name=$(basename "$cfg" .json)
    ckpt="$work/$name/checkpoint.safetensors"
    "$python" -c 'import json, sys
v = json.load(open(sys.argv[1]))["vocab_size"]
sys.stdout.write(("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[:v - 1] + "\n") * 400)' \
        "$cfg" >"$work/$name.txt"
    # A model whose inputs or head no task of the engine feeds yet
    # (head_*.json): the oracle's own initial checkpoint, which
    # tests/test_parity.c maps by tensor name.
    if "$python" -c 'import json, sys
c = json.load(open(sys.argv[1]))
sys.exit(0 if c.get("input", "tokens") != "tokens" or c.get("head", "lm") != "lm" else 1)' "$cfg"; then
        mkdir -p "$work/$name"
        "$python" tools/oracle.py --init "$cfg" --out "$ckpt"
    else
        "$seqlab" train "$cfg" --stop_step=0 --data="$work/$name.txt" --out_dir="$work/$name"
    fi
    if [ ! -f "$ckpt" ]; then
        echo "$0: $seqlab train $cfg --stop_step=0 wrote no $ckpt" >&2
        exit 1
    fi
    cp "$ckpt" "$out/parity_$name.ckpt.safetensors"
    "$python" tools/oracle.py --ckpt "$out/parity_$name.ckpt.safetensors" \
        --out "$out/parity_$name.safetensors"
    n=$((n + 1))
done
echo "$0: $n fixtures in $out"
