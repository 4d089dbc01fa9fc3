#!/usr/bin/env bash
# Fuzz every Go fuzz target in the module for a set time each.
#
#   scripts/fuzz.sh                 every target, 30s each
#   FUZZTIME=5m scripts/fuzz.sh     longer
#   scripts/fuzz.sh ./api           only the targets of some packages
#
# Targets are found with `go test -list`, so new ones (trace CSV parsing,
# tariff cron windows) are fuzzed as soon as they exist. The committed seed
# corpora live in each package's testdata/fuzz/FuzzNAME; a failing input is
# written there by go test itself: fix the bug and commit the input as a
# regression case. With SAVE=1 the inputs the fuzzer found interesting are
# copied from the Go build cache into testdata/fuzz too (review before
# committing).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
pkgs=("$@")
((${#pkgs[@]})) || pkgs=(./...)
cache=$(go env GOCACHE)/fuzz
failed=0
for pkg in $(go list "${pkgs[@]}"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== $pkg $target ($fuzztime)"
    if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"; then
      echo "!! $pkg $target failed; the input is in $dir/testdata/fuzz/$target"
      failed=1
    fi
    if [[ "${SAVE:-}" == 1 && -d "$cache/$pkg/$target" ]]; then
      mkdir -p "$dir/testdata/fuzz/$target"
      cp -n "$cache/$pkg/$target"/* "$dir/testdata/fuzz/$target/" 2>/dev/null || true
    fi
  done
done
exit $failed
