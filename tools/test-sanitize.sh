#!/usr/bin/env bash
# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, in build-asan:
# any report stops the test that made it (halt_on_error), leaks included.
#
#     tools/test-sanitize.sh [meson test arguments...]
#
# -Db_lundef=false: the sanitizer runtimes are linked into executables only, and
# libraries built with -Wl,--no-undefined would not link.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=build-asan
if [ ! -d "$dir" ]; then
    nice -n 19 meson setup "$dir" --buildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dcuda=disabled
fi
nice -n 19 ninja -C "$dir"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OMP_WAIT_POLICY=PASSIVE
# no core files: a sanitized process maps terabytes of shadow memory, and dumping it
# outlasts the test's timeout
ulimit -c 0
# the sanitized code runs 3-10x slower: meson's timeouts and Check's own per-test ones
# (CK_TIMEOUT_MULTIPLIER; arena_allocs makes 600k checks) stretch
export CK_TIMEOUT_MULTIPLIER=10
nice -n 19 meson test -C "$dir" --print-errorlogs --timeout-multiplier 6 "$@"
