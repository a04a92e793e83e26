#!/usr/bin/env bash
# Batched LSTM training speed beside PyTorch's, in one sitting: alternates
# `torch_baseline.py lstm` and `charrnn train` on the same configuration
# (embedding 64, batch 32, seq 50, Adam 2e-3, both on 2 threads) round after
# round, so the machine's noise hits both alike, and prints every run's chars/s
# with its achieved GFLOP/s and the medians' ratio.
#
# GFLOP/s counts the matrix products only: forward 2 (in + H) 4H per layer and
# 2 H V for the output, times 3 for forward + backward (weight and input grads).
#
# usage: scripts/lstm-peer.sh HIDDEN LAYERS [SECONDS] [ROUNDS]
#   e.g. scripts/lstm-peer.sh 512 2 30 3
#   BIN=path   the charrnn binary (default target/release/charrnn)
#   DATA=path  the text (default ../shared/data/tinyshakespeare.txt)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
H=$1 L=$2 SECONDS_=${3:-20} ROUNDS=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../target/release/charrnn}
DATA=${DATA:-$here/../../shared/data/tinyshakespeare.txt}
TORCH=$here/torch_baseline.py
[ -x "$BIN" ] || { echo "lstm-peer.sh: no charrnn at $BIN (cargo build --release, or set BIN=)" >&2; exit 1; }
[ -f "$DATA" ] || { echo "lstm-peer.sh: no training text at $DATA (set DATA=path)" >&2; exit 1; }
[ -f "$TORCH" ] || { echo "lstm-peer.sh: no PyTorch baseline at $TORCH" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for _ in $(seq "$ROUNDS"); do
    python3 "$TORCH" lstm --data "$DATA" --hidden "$H" --layers "$L" --emb 64 --batch 32 \
        --seq 50 --threads 2 --seconds "$SECONDS_" 2>/dev/null |
        python3 -c 'import json, sys; print("torch", json.loads(sys.stdin.read().strip().splitlines()[-1])["chars_per_s"])'
    (cd "$tmp" && "$BIN" train --data "$DATA" --cell lstm --hidden-size "$H" --layers "$L" \
        --embedding-size 64 --batch-size 32 --seq-length 50 --optimizer adam \
        --learning-rate 2e-3 --max-time "${SECONDS_}s" --sample-every 0 --log-every 0 \
        --eval-every 0 --checkpoint peer.ckpt --force 2>&1) |
        sed -n 's/.* \([0-9]*\) iterations in \([0-9.]*\)s .*/charrnn \1 \2/p' |
        awk '{ printf "charrnn %.0f\n", $2 * 32 * 50 / $3 }'
done | python3 -c '
import statistics, sys
H, L, V, E = int(sys.argv[1]), int(sys.argv[2]), 65, 64
flops = sum(6 * ((E if l == 0 else H) + H) * 4 * H for l in range(L)) + 6 * H * V
runs = {}
for line in sys.stdin:
    name, cps = line.split()
    runs.setdefault(name, []).append(float(cps))
    print(f"{name}: {float(cps):,.0f} chars/s, {float(cps) * flops / 1e9:.0f} GFLOP/s", flush=True)
med = {k: statistics.median(v) for k, v in runs.items()}
for k, m in med.items():
    print(f"{k} median: {m:,.0f} chars/s, {m * flops / 1e9:.0f} GFLOP/s ({flops / 1e6:.2f} MFLOP/char)")
if len(med) == 2:
    ratio = med["charrnn"] / med["torch"]
    print(f"ratio charrnn / torch: {ratio:.2f}x")
' "$H" "$L"
