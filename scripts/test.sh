#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh Debian 12 machine.
# Installs what the tests need when it is missing (Debian packages, the
# Garage S3 server into ~/.cache/asset-catalog, cargo tools), then runs:
#   1. cargo fmt --check and cargo clippy -D warnings
#   2. every Rust test (unit, conformance over memory/file/Garage S3, spawned binaries, watcher e2e),
#      then 2 minutes of schemathesis against the server's OpenAPI document (scripts/fuzz-api.sh)
#   3. the Debian package build + lintian, and its end-to-end test in a real systemd (nspawn)
#
#   scripts/test.sh              # everything
#   scripts/test.sh --no-package # skip step 3 (no root / no systemd-nspawn needed)
set -euo pipefail
cd "$(dirname "$0")/.."

package=1
for arg in "$@"; do
  case "$arg" in
    --no-package) package=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "tools"
command -v cargo >/dev/null || { echo "cargo is required: install Rust from https://rustup.rs" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
# The Debian packages the tests start for real (testkit): PostgreSQL 15, HAProxy;
# and real pictures the media tests read: photos with EXIF in eight orientations
# (goexif's samples), a large PNG icon.
missing=()
[ -d /usr/share/gocode/src/github.com/rwcarlsen/goexif/exif/samples ] || missing+=(golang-github-rwcarlsen-goexif-dev)
[ -f /usr/share/icons/Adwaita/512x512/places/folder-pictures.png ] || missing+=(adwaita-icon-theme)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The web UI's tests drive Debian's Chromium through chromedriver (testkit::browser).
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${missing[*]}"
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
# A tus client nobody here wrote, for the resumable uploads' interop test:
# tuspy from PyPI in a venv of its own under ~/.cache/asset-catalog/.
TUSPY_VERSION=1.1.0
tus_venv="$HOME/.cache/asset-catalog/tuspy-$TUSPY_VERSION"
if [ ! -x "$tus_venv/bin/python" ] || ! "$tus_venv/bin/python" -c 'import tusclient' 2>/dev/null; then
  echo "installing tuspy $TUSPY_VERSION into $tus_venv"
  rm -rf "$tus_venv"
  "$(command -v python3.11 || command -v python3)" -m venv "$tus_venv"
  "$tus_venv/bin/pip" install --quiet --disable-pip-version-check "tuspy==$TUSPY_VERSION"
fi
export TUSPY_PYTHON="$tus_venv/bin/python"
GARAGE_BIN=$(scripts/install-garage.sh)
export GARAGE_BIN
echo "garage: $GARAGE_BIN"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo tests"
# Build every binary first: the watcher's e2e tests spawn the real server binary.
cargo build --workspace --bins --locked
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi

step "API fuzzing (schemathesis against /v1/openapi.json, 2 minutes)"
# Reuses the debug server built above; the soak is scripts/fuzz-api.sh --minutes 10.
scripts/fuzz-api.sh --minutes 2

if [ "$package" = 1 ]; then
  step "Debian package (build + lintian)"
  packaging/build-deb.sh
  step "package end-to-end test in a real systemd"
  packaging/e2e-systemd.sh
fi

printf '\nall tests passed in %ss\n' "$(( $(date +%s) - start ))"
