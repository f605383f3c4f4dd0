#!/usr/bin/env bash
# Runs the fuzz targets one after the other (never two at once), each for SECONDS (default 1800)
# at nice 19 with one libFuzzer job, logging to fuzz/logs/<target>.log (ignored by git). Needs
# `cargo install cargo-fuzz`; stable rustc takes cargo-fuzz's nightly flags with
# RUSTC_BOOTSTRAP=1. From the repository root:
#   fuzz/run.sh [SECONDS] [TARGET...]        (targets: state audio_file; default both)
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-1800}"
[ "$#" -gt 0 ] && shift
TARGETS=("$@")
[ "${#TARGETS[@]}" -eq 0 ] && TARGETS=(state audio_file)
mkdir -p fuzz/logs
for t in "${TARGETS[@]}"; do
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
    start=$(date +%s)
    echo "== $t: $(date -u +%FT%TZ), ${SECONDS_EACH} s" | tee "fuzz/logs/$t.log"
    RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run "$t" -j1 -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" >> "fuzz/logs/$t.log" 2>&1
    echo "== $t: exit $?, $(( $(date +%s) - start )) s" | tee -a "fuzz/logs/$t.log"
done
