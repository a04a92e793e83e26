#!/usr/bin/env bash
# Training speed side by side: charrnn (f64 and f32) against min-char-rnn's NumPy
# reference in its naive and fast forms, on the same file, default configuration
# (hidden 100, seq_length 25). Rounds are interleaved so machine noise hits every
# implementation alike; the table shows medians. Then sampling speed, single
# thread, against a PyTorch sampling loop (scripts/torch_sample.py) when torch is
# installed: the default model and a 2x512 LSTM.
#
# usage: scripts/compare.sh [DATA] [ITERS] [ROUNDS]
#   DATA    text file          (default ../shared/data/tinyshakespeare.txt)
#   ITERS   iterations per run (default 20000)
#   ROUNDS  runs of each       (default 3)
#   REF=path/to/min_char_rnn.py overrides the reference script (needs python3 + numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/tinyshakespeare.txt}
ITERS=${2:-20000}
ROUNDS=${3:-3}
REF=${REF:-$(dirname "$0")/min_char_rnn.py}

cargo build --release --quiet
BIN=target/release/charrnn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

charrnn_its() { # precision
    "$BIN" train --data "$DATA" --iters "$ITERS" --precision "$1" --sample-every 0 --log-every 0 \
        --checkpoint "$tmp/c.ckpt" --force --rng-seed 1 2>&1 | sed -n 's/.*(\([0-9.]*\) it\/s).*/\1/p'
}
numpy_its() { # impl
    python3 "$REF" --data "$DATA" --iters "$ITERS" --impl "$1" | sed -n 's/.*iters_per_s=\([0-9.]*\).*/\1/p'
}

for r in $(seq "$ROUNDS"); do
    echo "round $r/$ROUNDS ..." >&2
    echo "charrnn-f64 $(charrnn_its f64)" >>"$tmp/results"
    echo "charrnn-f32 $(charrnn_its f32)" >>"$tmp/results"
    if [ -f "$REF" ] && python3 -c 'import numpy' 2>/dev/null; then
        echo "numpy-naive $(numpy_its naive)" >>"$tmp/results"
        echo "numpy-fast $(numpy_its fast)" >>"$tmp/results"
    fi
done

# GFLOP/s counts the matrix products of an iteration: per step Wh, Why and their
# transposes and weight gradients, 6H^2 + 6VH, less the 2H^2 of the first step's
# dh_{t-1} (not propagated): 2.46 MFLOP for the default model on tinyshakespeare
VOCAB=$(python3 -c 'import sys; print(len(set(open(sys.argv[1], encoding="utf-8").read())))' "$DATA")
python3 - "$tmp/results" "$ITERS" "$ROUNDS" "$VOCAB" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, its = line.split()
    rows.setdefault(name, []).append(float(its))
med = {k: statistics.median(v) for k, v in rows.items()}
v, h = int(sys.argv[4]), 100
flop = 25 * (6 * h * h + 6 * v * h) - 2 * h * h
print(f"{'implementation':<14} {'it/s (median)':>14} {'chars/s':>10} {'GFLOP/s':>8} {'vs naive':>9} {'vs fast':>8}   runs")
for name in ["charrnn-f64", "charrnn-f32", "numpy-naive", "numpy-fast"]:
    if name not in med:
        continue
    m = med[name]
    ratio = lambda ref: f"{m / med[ref]:.1f}x" if ref in med else "-"
    runs = " ".join(f"{x:.0f}" for x in rows[name])
    print(f"{name:<14} {m:>14.0f} {m * 25:>10.0f} {m * flop / 1e9:>8.1f} {ratio('numpy-naive'):>9} {ratio('numpy-fast'):>8}   {runs}")
print(f"({sys.argv[2]} iterations per run, {sys.argv[3]} runs each, hidden 100, seq_length 25, {flop / 1e6:.2f} MFLOP per iteration)")
PY

# ---- hidden 512, batch 1, seq 25: charrnn against the NumPy fast form ----
H512_ITERS=${H512_ITERS:-1000}
h512_charrnn() { # precision
    "$BIN" train --data "$DATA" --iters "$H512_ITERS" --hidden-size 512 --precision "$1" --sample-every 0 \
        --log-every 0 --checkpoint "$tmp/h.ckpt" --force --rng-seed 1 2>&1 | sed -n 's/.*(\([0-9.]*\) it\/s).*/\1/p'
}
: >"$tmp/h512"
for r in $(seq "$ROUNDS"); do
    echo "hidden 512, round $r/$ROUNDS ..." >&2
    echo "charrnn-f64 $(h512_charrnn f64)" >>"$tmp/h512"
    echo "charrnn-f32 $(h512_charrnn f32)" >>"$tmp/h512"
    if [ -f "$REF" ] && python3 -c 'import numpy' 2>/dev/null; then
        echo "numpy-fast $(python3 "$REF" --data "$DATA" --iters "$H512_ITERS" --hidden 512 --impl fast \
            | sed -n 's/.*iters_per_s=\([0-9.]*\).*/\1/p')" >>"$tmp/h512"
    fi
done
echo
python3 - "$tmp/h512" "$H512_ITERS" "$ROUNDS" "$VOCAB" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, its = line.split()
    rows.setdefault(name, []).append(float(its))
med = {k: statistics.median(v) for k, v in rows.items()}
v, h = int(sys.argv[4]), 512
flop = 25 * (6 * h * h + 6 * v * h) - 2 * h * h
print(f"{'hidden 512':<14} {'it/s (median)':>14} {'GFLOP/s':>8} {'vs fast':>8}   runs")
for name in ["charrnn-f64", "charrnn-f32", "numpy-fast"]:
    if name in med:
        ratio = f"{med[name] / med['numpy-fast']:.1f}x" if "numpy-fast" in med else "-"
        gflops = med[name] * flop / 1e9
        print(f"{name:<14} {med[name]:>14.1f} {gflops:>8.1f} {ratio:>8}   " + " ".join(f"{x:.1f}" for x in rows[name]))
print(f"({sys.argv[2]} iterations per run, {sys.argv[3]} runs each, batch 1, seq_length 25, {flop / 1e6:.1f} MFLOP per iteration)")
PY

# ---- sampling, single thread ----
sample_cps() { # checkpoint chars
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN" sample --checkpoint "$1" -n "$2" --rng-seed 1 >/dev/null
    t1=$(date +%s.%N)
    python3 -c "print(round($2 / ($t1 - $t0)))"
}
"$BIN" train --data "$DATA" --iters 0 --log-every 0 --checkpoint "$tmp/rnn.ckpt" --force 2>/dev/null
"$BIN" train --data "$DATA" --iters 0 --log-every 0 --checkpoint "$tmp/lstm.ckpt" --force \
    --cell lstm --layers 2 --hidden-size 512 --embedding-size 64 2>/dev/null
echo
echo "sampling, single thread (chars/s)"
echo "charrnn rnn h100 f64:        $(MATMUL_NUM_THREADS=1 sample_cps "$tmp/rnn.ckpt" 2000000)"
echo "charrnn lstm 2x512 e64 f32:  $(MATMUL_NUM_THREADS=1 sample_cps "$tmp/lstm.ckpt" 20000)"
if python3 -c 'import torch' 2>/dev/null; then
    echo "pytorch rnn h100 f64:        $(python3 scripts/torch_sample.py rnn --double --chars 20000 | sed 's/.*chars_per_s": \([0-9]*\).*/\1/')"
    echo "pytorch lstm 2x512 e64 f32:  $(python3 scripts/torch_sample.py lstm --hidden 512 --layers 2 --emb 64 --chars 2000 | sed 's/.*chars_per_s": \([0-9]*\).*/\1/')"
fi
