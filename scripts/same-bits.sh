#!/usr/bin/env bash
# Checks that two charrnn builds compute the same numbers: for each configuration
# below, on 1 and on 2 threads, both binaries train from the same seed, then the
# script compares their checkpoints (every byte but the checksum and the
# training-time field, between builds that write one format version), their
# exported weights, the (iteration, loss, smooth_loss, val_loss) columns of
# their loss histories, a 300-character sample and an eval. For a change that
# must not move a number (a refactor): build the commit before it and the
# commit itself, copy both binaries aside, and run this.
#
# usage: scripts/same-bits.sh OLD_BIN NEW_BIN [NAME ...]
#   NAME  only the configurations with these names (default: all)
#   DATA=path   the text to train on (default ../shared/data/tinyshakespeare.txt,
#               else the built-in corpus)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
OLD=$1 NEW=$2
shift 2
DATA=${DATA:-$(dirname "$0")/../../shared/data/tinyshakespeare.txt}
data_flag=()
[ -f "$DATA" ] && data_flag=(--data "$DATA")

# name | training flags: together they reach every recurrence layout, the split
# recurrence on two threads, both precisions, every cell, stacked layers, the
# embedding's table and direct paths, batches, dropout, validation and each optimizer
configs=(
    "default|--iters 2000"
    "f32|--precision f32 --iters 2000"
    "h144-split|--hidden-size 144 --iters 300"
    "h512-split|--hidden-size 512 --iters 300"
    "h200-blocks|--hidden-size 200 --iters 300"
    "h150-blocks|--hidden-size 150 --iters 300"
    "lstm2-embed-batch|--cell lstm --layers 2 --embedding-size 16 --hidden-size 64 --batch-size 8 --dropout 0.1 --val-fraction 0.1 --eval-every 50 --optimizer adam --iters 200"
    "lstm-direct|--cell lstm --embedding-size 8 --hidden-size 48 --iters 300"
    "gru-rmsprop|--cell gru --optimizer rmsprop --hidden-size 96 --batch-size 4 --iters 200"
    "gru2-f64|--cell gru --layers 2 --hidden-size 32 --precision f64 --clip-norm 5 --iters 200"
    "rnn2-batch|--layers 2 --hidden-size 80 --batch-size 3 --iters 200"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the checkpoint but its checksum (bytes 20..28) and its last field, the
# training wall time (an f64, the payload's last 8 bytes); two format versions
# are not compared byte for byte (the exported weights still are)
strip() { head -c 20 "$1"; tail -c +29 "$1" | head -c -8; }
version() { head -c 12 "$1" | tail -c 4 | od -An -tu4 | tr -d ' '; }
columns() { cut -d, -f1-3,6 "$1"; }
failed=0
for entry in "${configs[@]}"; do
    name=${entry%%|*} flags=${entry#*|}
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
    for threads in 1 2; do
        for side in old new; do
            bin=$OLD
            [ $side = new ] && bin=$NEW
            dir=$tmp/$name-$threads-$side
            mkdir -p "$dir"
            # shellcheck disable=SC2086  # flags is a list of flags
            "$bin" train "${data_flag[@]}" $flags --threads $threads --rng-seed 7 --sample-every 0 --log-every 10 \
                --checkpoint "$dir/c.ckpt" --loss-csv "$dir/h.csv" >/dev/null 2>"$dir/train.err" \
                || { cat "$dir/train.err" >&2; exit 1; }
            "$bin" sample --checkpoint "$dir/c.ckpt" --seed "The " -n 300 --rng-seed 3 >"$dir/sample.txt"
            "$bin" export --checkpoint "$dir/c.ckpt" -o "$dir/w.npz" 2>/dev/null
            "$bin" eval --checkpoint "$dir/c.ckpt" --data "$(dirname "$0")/../data/builtin.txt" 2>&1 \
                | grep -E "^(text|loss|bits/char|perplexity) " >"$dir/eval.txt" || true
        done
        a=$tmp/$name-$threads-old b=$tmp/$name-$threads-new
        what=()
        if [ "$(version "$a/c.ckpt")" = "$(version "$b/c.ckpt")" ]; then
            cmp -s <(strip "$a/c.ckpt") <(strip "$b/c.ckpt") || what+=(checkpoint)
        fi
        cmp -s "$a/w.npz" "$b/w.npz" || what+=(weights)
        cmp -s <(columns "$a/h.csv") <(columns "$b/h.csv") || what+=(history)
        cmp -s "$a/sample.txt" "$b/sample.txt" || what+=(sample)
        cmp -s "$a/eval.txt" "$b/eval.txt" || what+=(eval)
        if [ ${#what[@]} -eq 0 ]; then
            echo "same   $name, $threads thread(s)"
        else
            echo "DIFFER $name, $threads thread(s): ${what[*]}"
            failed=1
        fi
    done
done
exit $failed
