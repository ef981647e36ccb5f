#!/usr/bin/env bash
# End-to-end test of asset-catalog.deb in a real systemd.
#
#   packaging/e2e-systemd.sh [--deb FILE] [--no-s3] [--keep]
#
# Boots Debian 12 with systemd as PID 1 (systemd-nspawn over a cached debootstrap
# rootfs, see packaging/lib/container.sh) and inside it does what a user does:
#   1. apt install ./asset-catalog.deb      (server enabled + running, user unit only shipped)
#   2. systemctl start asset-catalog-server (active, /readyz answers; unit verify + security score)
#   3. journalctl -u asset-catalog-server   (the server's own startup lines)
#   4. a lingering user: asset-watcher init, systemctl --user enable --now asset-watcher,
#      files dropped into the watched directory reach the catalog, journalctl --user shows them
#   5. TLS as server.toml says: certificate and root-only key in /etc/asset-catalog/tls
#      (delivered as credentials), https for curl and the watcher, a renewed certificate
#      taken up by `systemctl reload` without a restart
#   6. restart of both (nothing re-uploaded), reinstall and upgrade with a modified conffile
#      (kept, data kept), apt remove (stopped, data kept), apt purge (only the package's things gone)
#   7. the same server on S3: Garage inside the container, switched to through the conffile
#      plus a credential file in /etc/asset-catalog/credentials.
#
# The container has its own network namespace (--private-network): the packaged
# server's fixed 127.0.0.1:8000 and Garage's ports cannot clash with anything on
# the host, and parallel runs cannot see each other. Garage therefore runs
# inside the container (its binary bind-mounted read-only from the host cache).
#
# Needs root. Installs debootstrap/systemd-container/zstd when missing. The first
# run builds the rootfs cache (~2 min); later runs boot in about a second.
# Options: --deb FILE (default ./asset-catalog.deb, built with packaging/build-deb.sh
# when missing), --no-s3 (skip step 7), --keep (keep the run directory and log).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=packaging/lib/container.sh
source packaging/lib/container.sh

deb=${ASSET_CATALOG_DEB:-$repo/asset-catalog.deb}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/asset-catalog
garage_bin=${GARAGE_BIN:-$cache/garage-2.5.0/bin/garage}
with_s3=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb=$(realpath "$2"); shift ;;
    --no-s3) with_s3=0 ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "e2e-systemd: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || { echo "e2e-systemd: must run as root (systemd-nspawn, mounts)" >&2; exit 1; }

LOG=$(mktemp "${TMPDIR:-/tmp}/asset-catalog-e2e.XXXXXX.log")
started=$(date +%s.%N)
step_started=$started
current_step=""
passed=0

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
step() {
  current_step=$*
  step_started=$(date +%s.%N)
  printf '\n==> %s\n' "$*"
  printf '\n==> %s\n' "$*" >>"$LOG"
}
pass() {
  passed=$((passed + 1))
  printf '  PASS  %s\n' "$*"
  printf 'PASS %s\n' "$*" >>"$LOG"
}
info() { printf '        %s\n' "$*"; }

diagnostics() {
  [ -n "$CT_PID1" ] || return 0
  {
    echo "--- systemctl status asset-catalog-server"
    ct_exec systemctl status --no-pager -l asset-catalog-server 2>&1 || true
    echo "--- journalctl -u asset-catalog-server (last 40)"
    ct_exec journalctl --no-pager -n 40 -u asset-catalog-server 2>&1 || true
    echo "--- journalctl --user -u asset-watcher (last 40)"
    ct_user_sh 'journalctl --user --no-pager -n 40 -u asset-watcher' 2>&1 || true
    echo "--- systemctl --failed"
    ct_exec systemctl --failed --no-pager 2>&1 || true
  } >>"$LOG" 2>&1
}

fail() {
  printf '  FAIL  %s\n' "$*"
  printf 'FAIL %s\n' "$*" >>"$LOG"
  diagnostics
  echo
  echo "---- last lines of $LOG ----"
  tail -n 60 "$LOG"
  echo "e2e-systemd: FAILED in step '$current_step' after $(elapsed "$started") s (full log: $LOG)"
  keep=1
  exit 1
}

finish() {
  local rc=$?
  CT_KEEP_RUN_DIR=$keep ct_cleanup
  [ "$keep" = 1 ] || rm -f "$LOG"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# run DESC CMD...: run a command, its output to the log; PASS or FAIL.
run() {
  local desc=$1
  shift
  if "$@" >>"$LOG" 2>&1; then pass "$desc"; else fail "$desc"; fi
}

# eventually SECS DESC CMD...: retry CMD every 0.2 s until it succeeds (bounded).
eventually() {
  local secs=$1 desc=$2 deadline
  shift 2
  deadline=$(awk -v s="$secs" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n + s }')
  while :; do
    if "$@" >>"$LOG" 2>&1; then pass "$desc"; return 0; fi
    if awk -v d="$deadline" -v n="$(date +%s.%N)" 'BEGIN { exit !(n > d) }'; then
      fail "$desc (not within ${secs} s)"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------
step "preparation: package, host tools, rootfs, boot"
if [ ! -f "$deb" ]; then
  info "no $deb: building it with packaging/build-deb.sh"
  ASSET_CATALOG_DEB=$deb packaging/build-deb.sh >>"$LOG" 2>&1 || fail "packaging/build-deb.sh"
fi
info "package: $deb ($(du -h "$deb" | cut -f1))"
ct_host_tools >>"$LOG" 2>&1 || fail "installing host tools"
ct_reap_stale
lower=$(ct_rootfs "$cache") || fail "building the rootfs cache"
info "rootfs cache: $lower ($(elapsed "$step_started") s)"

nspawn_opts=(--private-network)
if [ "$with_s3" = 1 ]; then
  [ -x "$garage_bin" ] || fail "Garage not found at $garage_bin (scripts/install-garage.sh builds it; or --no-s3)"
  nspawn_opts+=(--bind-ro="$garage_bin:/usr/local/bin/garage")
fi
ct_boot "$lower" "ac-e2e-$$" "${nspawn_opts[@]}" 2>>"$LOG" || fail "booting the container"
cp "$deb" "$CT_ROOT/root/asset-catalog.deb"
pass "container booted with systemd as PID 1 ($(ct_exec systemctl --version | head -n1)) in $(elapsed "$step_started") s"

source packaging/lib/e2e-steps.sh
source packaging/lib/e2e-tls.sh

step_install
step_start
step_journal
step_watcher
step_tls
step_restart_upgrade_purge
if [ "$with_s3" = 1 ]; then
  step_s3
fi

printf '\ne2e-systemd: %d passed, 0 failed (%s s)\n' "$passed" "$(elapsed "$started")"
