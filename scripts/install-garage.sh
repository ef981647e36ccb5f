#!/usr/bin/env bash
# Install Garage (a real, S3-compatible object store written in Rust) for the
# test suite and benchmarks, into a cache directory outside the checkout.
# Idempotent: does nothing when the binary is already there. Prints its path.
#
#   scripts/install-garage.sh            # -> ~/.cache/asset-catalog/garage-2.5.0/bin/garage
#
# Building it takes 10-15 minutes on 2 cores, once per machine.
set -euo pipefail

GARAGE_VERSION=2.5.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/asset-catalog"
root="$cache/garage-$GARAGE_VERSION"
bin="$root/bin/garage"

mkdir -p "$cache"
# Two test runs starting at once must not build it twice.
exec 9>"$cache/garage-install.lock"
flock 9

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

command -v cargo >/dev/null || { echo "install-garage: cargo is required (https://rustup.rs)" >&2; exit 1; }
echo "install-garage: building garage $GARAGE_VERSION into $root (10-15 min on 2 cores, once)" >&2
log="$cache/garage-build.log"
if ! cargo install "garage@$GARAGE_VERSION" --locked --root "$root" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install-garage: cargo install failed; full log in $log" >&2
  exit 1
fi
"$bin" --version >/dev/null
echo "$bin"
