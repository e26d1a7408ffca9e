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
# New inputs go to fuzz/target/corpus/<target>/ (the committed corpus in
# fuzz/corpus/<target>/ is read, never written); crashes to
# fuzz/artifacts/<target>/; logs to fuzz/target/logs/<target>.log.
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

mkdir -p fuzz/target/logs
failed=()
summary=()
for target in "${targets[@]}"; do
    scratch=fuzz/target/corpus/$target
    mkdir -p "$scratch" "fuzz/corpus/$target"
    args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048)
    if [ -f "fuzz/dicts/$target.dict" ]; then
        args+=(-dict="fuzz/dicts/$target.dict")
    fi
    if [ -n "${FUZZ_JOBS:-}" ]; then
        args+=(-fork="$FUZZ_JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    log=fuzz/target/logs/$target.log
    echo "== $target: ${seconds}s" >&2
    cargo fuzz run "$target" --sanitizer "$sanitizer" "$scratch" "fuzz/corpus/$target" -- "${args[@]}" >"$log" 2>&1
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
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzzing found failures in: ${failed[*]} (inputs in fuzz/artifacts/; see fuzz/README.md)" >&2
    exit 1
fi
