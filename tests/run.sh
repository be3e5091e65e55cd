#!/bin/sh
# Runs every test binary in BUILD/tests and ends with "N passed, N failed".
# A binary that dies without reporting counts as one failure; its FAIL
# lines and "skipped: why" lines are shown.
build=${1:-build}
pass=0
fail=0
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d | *.o) continue ;; esac
    name=$(basename "$t")
    out=$(cd "$(dirname "$0")/.." && "$t" 2>"$build/tests/$name.log")
    rc=$?
    p=$(printf '%s\n' "$out" | grep -c '^ok - ')
    f=$(printf '%s\n' "$out" | grep -c '^FAIL - ')
    printf '%s\n' "$out" | grep -E '^(FAIL - |skipped: )' | sed "s|^|$name: |"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "$name: exited with status $rc"
    fi
    if [ "$f" -ne 0 ]; then
        echo "--- $name stderr:"
        tail -n 30 "$build/tests/$name.log"
    fi
    echo "$name: $p passed, $f failed"
    pass=$((pass + p))
    fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
