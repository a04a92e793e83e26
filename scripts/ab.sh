#!/usr/bin/env bash
# A/B of charrnn binaries on a noisy machine: runs each binary's training in
# turn, round after round (so noise hits them alike), and prints each one's
# median it/s and every run. For judging a change: build the old and the new
# binary, copy them aside, and compare them with enough rounds to see past the
# noise (on the development machine one binary ranged 6.5k-11.8k it/s in one
# series; a 5% change needs many rounds). Noise only ever slows a run, so the
# best run of many short ones is a second, steadier view.
#
# usage: scripts/ab.sh ITERS ROUNDS "TRAIN FLAGS" BIN [BIN ...]
#   e.g. scripts/ab.sh 10000 7 "--threads 2" /tmp/old /tmp/new
#   DATA=path   the text to train on (default ../shared/data/tinyshakespeare.txt)
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
ITERS=$1 ROUNDS=$2 FLAGS=$3
shift 3
DATA=${DATA:-$(dirname "$0")/../../shared/data/tinyshakespeare.txt}
[ -f "$DATA" ] || { echo "ab.sh: no training text at $DATA (set DATA=path)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for _ in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        # shellcheck disable=SC2086  # FLAGS is a list of flags
        its=$("$bin" train --data "$DATA" --iters "$ITERS" $FLAGS --sample-every 0 --log-every 0 \
            --checkpoint "$tmp/ab.ckpt" --force --rng-seed 1 2>&1 | sed -n 's/.*(\([0-9.]*\) it\/s).*/\1/p')
        echo "$bin ${its:-nan}"
    done
done | python3 -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    name, its = line.rsplit(" ", 1)
    runs.setdefault(name, []).append(float(its))
for name, v in runs.items():
    print(f"{name}: median {statistics.median(v):.0f} it/s, best {max(v):.0f}, runs " + " ".join(f"{x:.0f}" for x in v))
'
