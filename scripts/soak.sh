#!/usr/bin/env bash
# The long variants of the fault suite (issue 7): what CI runs in short form,
# at soak sizes. Run it before a release, on an otherwise idle machine.
#
#   scripts/soak.sh               # everything (~30 min on 2 idle cores: 1,689-1,818 s)
#   scripts/soak.sh --minutes 30  # fuzz the HTTP API for 30 minutes instead of 10
#
# ASSET_CATALOG_SOAK=1 switches the fault tests to their soak sizes:
#   watcher (client/tests/e2e/faults): kill -9 rounds over more files, a
#     several-minute server outage, an inotify overflow of 100,000 creates;
#     and 5,000 directories swapped for symlinks out of the tree (outside.rs);
#   resumable uploads (client e2e resumable.rs): one 400 MiB file through 30
#     kill -9 of the watcher and 8 of the server at random byte counts (5 MiB
#     parts), at most one part (plus 1 MiB for a server kill) re-sent per kill;
#   server (server/tests/integration: faults, outage, storage_down): S3 down 5 minutes;
#   N servers on one PostgreSQL (scale): 100 rounds of same-content and
#     delete-versus-upload races;
#   the 3-server cluster under faults (client e2e cluster.rs): 5x the files.
# Then scripts/fuzz-api.sh fuzzes every route for --minutes (default 10).
# Every step runs even when an earlier one fails; the failures are listed at
# the end and the exit status is 1 if there was any.
# ASSET_CATALOG_FAULT_SEED=N replays the random kill points of a run (each
# fault test prints its seed).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="${2:-}"; shift 2 || shift ;;
    --minutes=*) minutes="${1#*=}"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$minutes" in ''|*[!0-9]*|0) echo "soak.sh: --minutes needs a whole number ≥ 1" >&2; exit 2 ;; esac

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)
failed=()
# Run one step; a failure is recorded and reported at the end, so one
# failing step never hides the others.
run() {
  local name="$1"; shift
  step "$name"
  local t0=$(date +%s)
  if "$@"; then
    printf '==> %s: passed in %ss\n' "$name" "$(( $(date +%s) - t0 ))"
  else
    printf '==> %s: FAILED (exit %s) after %ss\n' "$name" "$?" "$(( $(date +%s) - t0 ))"
    failed+=("$name")
  fi
}

GARAGE_BIN=$(scripts/install-garage.sh)
export GARAGE_BIN
export ASSET_CATALOG_SOAK=1

step "build (the tests spawn the real binaries)"
cargo build --workspace --bins --locked

run "watcher faults at soak size" \
  cargo test --locked -p asset-watcher --test e2e faults -- --nocapture
run "watcher: a 400 MiB resumable upload through 30 watcher and 8 server kills" \
  cargo test --locked -p asset-watcher --test e2e resumable_upload_resumes -- --nocapture
run "watcher: directories swapped for symlinks, 5,000 rounds" \
  cargo test --locked -p asset-watcher --test e2e outside -- --nocapture
run "server faults and storage outage at soak size" \
  cargo test --locked -p asset-catalog-server --test integration -- faults outage storage_down --nocapture
run "three servers on one PostgreSQL: 100 rounds of same-content and delete races" \
  cargo test --locked -p asset-catalog-server --test integration -- scale --nocapture
run "cluster (3 servers, Garage x3, HAProxy, 2 watchers) under faults, 5x the files" \
  cargo test --locked -p asset-watcher --test e2e cluster -- --nocapture
run "API fuzzing for $minutes minutes" \
  scripts/fuzz-api.sh --minutes "$minutes"

elapsed=$(( $(date +%s) - start ))
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nsoak FAILED in %ss: %s step(s) failed:\n' "$elapsed" "${#failed[@]}"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
printf '\nsoak passed in %ss\n' "$elapsed"
