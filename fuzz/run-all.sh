#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) on the stable
# toolchain and fails if any of them finds a crash, a timeout or a leak.
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]
#
# Environment:
#   FUZZ_SANITIZER  none (default) or address (AddressSanitizer; needs
#                   RUSTC_BOOTSTRAP=1 on stable, set here for you)
#   FUZZ_JOBS       libFuzzer -fork=N: keep going after a crash and report
#                   all of them (default: stop at the first crash)
#
# The committed corpus fuzz/corpus/<target>/ is copied into the scratch
# corpus fuzz/target/corpus/<target>/ (ignored by git), and libFuzzer is
# given the scratch folder only: new inputs can land nowhere else. The run
# fails if the committed corpus changed anyway. Crashes go to
# fuzz/artifacts/<target>/, logs to fuzz/target/logs/<target>.log. To keep
# what a run found, minimise it into the committed corpus by hand (see
# fuzz/README.md, "Keeping the corpus small").
set -uo pipefail

seconds=${1:-60}
shift || true
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || exit 1
fi

sanitizer=${FUZZ_SANITIZER:-none}
if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build --sanitizer "$sanitizer" || exit 1

# What the committed corpus holds: names and checksums.
corpus_state() {
    if [ -d fuzz/corpus ]; then
        (cd fuzz/corpus && find . -type f -exec cksum {} + | LC_ALL=C sort -k 3)
    fi
}
corpus_before=$(corpus_state)

mkdir -p fuzz/target/logs
failed=()
summary=()
for target in "${targets[@]}"; do
    scratch=fuzz/target/corpus/$target
    mkdir -p "$scratch"
    if [ -d "fuzz/corpus/$target" ]; then
        cp -R "fuzz/corpus/$target/." "$scratch/"
    fi
    args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048)
    if [ -f "fuzz/dicts/$target.dict" ]; then
        args+=(-dict="fuzz/dicts/$target.dict")
    fi
    if [ -n "${FUZZ_JOBS:-}" ]; then
        args+=(-fork="$FUZZ_JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    log=fuzz/target/logs/$target.log
    echo "== $target: ${seconds}s" >&2
    # The scratch folder only: libFuzzer writes new inputs to its first
    # corpus folder (and may rewrite what it reduces there).
    cargo fuzz run "$target" --sanitizer "$sanitizer" "$scratch" -- "${args[@]}" >"$log" 2>&1
    status=$?
    crashes=$(grep -cE '^(==[0-9]+== ERROR|.*deadly signal|.*panicked at|SUMMARY: libFuzzer)' "$log" || true)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    # Fork mode counts what its children found: oom/timeout/crash: a/b/c.
    if grep -qE 'oom/timeout/crash: ([1-9][0-9]*/[0-9]+/[0-9]+|[0-9]+/[1-9][0-9]*/[0-9]+|[0-9]+/[0-9]+/[1-9][0-9]*)' <<<"$last"; then
        crashes=$((crashes + 1))
    fi
    rate=$(grep -E 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
    summary+=("$target: exit $status; ${rate:-?} exec/s; $last")
    if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed+=("$target")
        grep -E -A 20 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 60 >&2
        ls -1 "fuzz/artifacts/$target" 2>/dev/null | sed 's/^/  artifact: /' >&2
    fi
done

printf '%s\n' "${summary[@]}"
corpus_written=0
if [ "$(corpus_state)" != "$corpus_before" ]; then
    echo "the committed corpus fuzz/corpus/ changed during the run (it must only be read):" >&2
    diff <(printf '%s\n' "$corpus_before") <(corpus_state) | head -n 20 >&2
    corpus_written=1
fi
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzzing found failures in: ${failed[*]} (inputs in fuzz/artifacts/; see fuzz/README.md)" >&2
fi
if [ ${#failed[@]} -ne 0 ] || [ "$corpus_written" -ne 0 ]; then
    exit 1
fi
