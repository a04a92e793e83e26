#!/usr/bin/env bash
# Fuzz one or more targets (default: all four) for SECONDS each (default 600).
#   fuzz/run.sh                      # checkpoint, history, text, posts; 10 minutes each
#   SECONDS_EACH=60 fuzz/run.sh text # one target, one minute
# Needs `cargo install cargo-fuzz`. cargo-fuzz passes nightly-only flags to rustc;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Without AddressSanitizer
# (-s none): the code under test is safe Rust, and libFuzzer still catches panics,
# and allocations over -malloc_limit_mb (inputs here are at most -max_len bytes, so
# anything near 256 MB is an allocation the input does not justify).
# Seeds live in fuzz/seeds/TARGET (committed); the growing corpus in fuzz/corpus
# (not committed); crashes in fuzz/artifacts/TARGET. Copy a crash into
# fuzz/seeds/TARGET and tests/it/fuzz_regressions.rs replays it on every `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(checkpoint history text posts)
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== $t: ${SECONDS_EACH:-600}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="${SECONDS_EACH:-600}" -malloc_limit_mb=256 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1
done
