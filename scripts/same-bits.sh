#!/usr/bin/env bash
# Checks that two charrnn builds compute the same numbers: for each configuration
# below, on its thread counts (1 and 2 unless it says), both binaries train from
# the same seed (some stop at a cut and resume), then the script compares their
# checkpoints (every byte but the checksum and the
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

# name | training flags [| thread counts (default "1 2") [| cut]]: together they
# reach every recurrence layout, the split recurrence on two threads, both
# precisions, every cell, stacked layers, the embedding's table and direct paths,
# batches in 1 to 4 shares, dropout, validation, each optimizer, every schedule
# with warmup, weight decay, the step decay across epochs, and the average. With
# a cut, each binary trains to that iteration, then resumes to the end.
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
    "default-resumed|--iters 700|1 2|263"
    "lstm-cosine-ema|--cell lstm --hidden-size 64 --embedding-size 16 --batch-size 6 --optimizer adam --lr-schedule cosine --warmup 20 --min-lr 1e-4 --weight-decay 0.1 --ema 0.99 --val-fraction 0.05 --eval-every 40 --keep-best --iters 160|1 3|97"
    "gru-linear-drop|--cell gru --hidden-size 48 --batch-size 4 --dropout 0.2 --optimizer adam --lr-schedule linear --iters 150|2 4|61"
    "rnn-constant-ema|--hidden-size 64 --lr-schedule constant --learning-rate 0.05 --ema 0.9 --iters 300|1 2|150"
    "rnn-epochs-decay|--hidden-size 32 --batch-size 64 --seq-length 50 --optimizer rmsprop --lr-decay 0.5 --lr-decay-after 1 --iters 800|1 2|371"
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
    IFS='|' read -r name flags thread_counts cut <<<"$entry"
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
    for threads in ${thread_counts:-1 2}; do
        for side in old new; do
            bin=$OLD
            [ $side = new ] && bin=$NEW
            dir=$tmp/$name-$threads-$side
            mkdir -p "$dir"
            run=("$bin" train "${data_flag[@]}" --threads "$threads" --rng-seed 7 --sample-every 0 --log-every 10
                --checkpoint "$dir/c.ckpt" --loss-csv "$dir/h.csv")
            if [ -n "${cut:-}" ]; then
                # shellcheck disable=SC2086  # flags is a list of flags
                "${run[@]}" $(sed -E "s/--iters [0-9]+/--iters $cut/" <<<"$flags") >/dev/null 2>"$dir/train.err" \
                    || { cat "$dir/train.err" >&2; exit 1; }
                run+=(--resume)
            fi
            # shellcheck disable=SC2086  # flags is a list of flags
            "${run[@]}" $flags >/dev/null 2>"$dir/train.err" || { cat "$dir/train.err" >&2; exit 1; }
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
