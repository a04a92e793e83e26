#!/usr/bin/env bash
# The README's five-minute recipe ("Recipes"): trains it on DATA with the last
# 10% held out for SECONDS of training (default 300; validation passes do not
# count against it) and prints, as its last line, the final validation loss and
# the best of the final and the periodic ones, in nats/char:
#
#   val_loss 1.4633 best 1.4633
#
# usage: scripts/quality.sh DATA [SECONDS] [EXTRA TRAIN FLAGS...]
#   e.g. scripts/quality.sh ../shared/data/tinyshakespeare.txt
#        scripts/quality.sh notes.txt 600 --rng-seed 1
#   BIN=path  the charrnn binary (default target/release/charrnn)
#   OUT=dir   where the checkpoints and the log go (default a new temporary
#             directory, printed at the end; sample from it with
#             charrnn sample --checkpoint DIR/charrnn.ckpt)
#   EVAL_EVERY=N  validate every N iterations (default 250)
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
DATA=$(realpath "$1")
SECONDS_=${2:-300}
shift $(($# >= 2 ? 2 : 1))
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../target/release/charrnn}
[ -x "$BIN" ] || { echo "quality.sh: no charrnn at $BIN (cargo build --release, or set BIN=)" >&2; exit 1; }
[ -f "$DATA" ] || { echo "quality.sh: no text at $DATA" >&2; exit 1; }
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
cd "$OUT"
# the recipe: the same flags as README.md "Recipes" (tests/it/quality_script.rs checks)
"$BIN" train --data "$DATA" --val-fraction 0.1 --max-time "${SECONDS_}s" \
    --cell lstm --layers 2 --hidden-size 256 --embedding-size 64 \
    --batch-size 64 --seq-length 100 --dropout 0.1 \
    --optimizer adam --learning-rate 5e-3 --lr-decay 0.85 --lr-decay-after 2 \
    --ema 0.99 --eval-every "${EVAL_EVERY:-250}" --keep-best \
    --checkpoint charrnn.ckpt --force --sample-every 0 "$@" 2>&1 | tee train.log
echo "checkpoints and log in $OUT"
python3 - train.log <<'EOF'
import re, sys
log = open(sys.argv[1]).read()
final = re.findall(r"validation loss at iteration \d+: ([0-9.]+)", log)
periodic = [float(v) for v in re.findall(r"iter \d+: validation loss ([0-9.]+)", log)]
if not final:
    sys.exit("quality.sh: the run printed no final validation loss (see train.log)")
v = float(final[-1])
print(f"val_loss {v:.4f} best {min([v] + periodic):.4f}")
EOF
