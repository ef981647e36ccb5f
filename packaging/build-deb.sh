#!/usr/bin/env bash
# Build asset-catalog.deb, the one Debian package of asset-catalog, and lint it.
#
#   packaging/build-deb.sh          # -> ./asset-catalog.deb (at the top of the checkout)
#
# Steps: release binaries (cargo skips what is up to date), man pages and shell
# completions from the binaries' `generate-docs`, `cargo deb` (installed with
# `cargo install cargo-deb --locked` when missing: a few minutes, once), then
# lintian, which must report no error and no warning.
# Environment: ASSET_CATALOG_DEB=PATH writes the package elsewhere;
# SKIP_LINTIAN=1 skips the lint (for quick local iterations only).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

out=${ASSET_CATALOG_DEB:-$repo/asset-catalog.deb}
docs=$repo/packaging/generated

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-deb: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is required (https://rustup.rs)"

say "release binaries"
cargo build --release --locked -p asset-catalog-server -p asset-watcher --bins

target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cannot find cargo's target directory"
for bin in asset-catalog-server asset-watcher; do
  [ -x "$target_dir/release/$bin" ] || die "missing $target_dir/release/$bin after the build"
done

say "man pages and shell completions"
rm -rf "$docs"
mkdir -p "$docs"
"$target_dir/release/asset-catalog-server" generate-docs --out "$docs" >&2
"$target_dir/release/asset-watcher" generate-docs --out "$docs" >&2
for f in asset-catalog-server.1 asset-watcher.1 \
  asset-catalog-server.bash _asset-catalog-server asset-catalog-server.fish \
  asset-watcher.bash _asset-watcher asset-watcher.fish; do
  [ -s "$docs/$f" ] || die "generate-docs did not write $f"
done
for page in "$docs"/*.1 packaging/man/*.5; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
  [ -z "$warnings" ] || die "man page $page: $warnings"
done

if ! command -v cargo-deb >/dev/null; then
  say "installing cargo-deb (once; a few minutes)"
  cargo install cargo-deb --locked
fi

say "cargo deb"
mkdir -p "$(dirname "$out")"
# --strip: the workspace keeps line tables in release binaries (for backtraces
# in development); the package ships them stripped, as Debian policy wants.
cargo deb --locked --no-build --strip -p asset-catalog-server --output "$out" >&2

if [ "${SKIP_LINTIAN:-0}" != 1 ]; then
  if ! command -v lintian >/dev/null; then
    say "installing lintian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null
  fi
  say "lintian"
  # --fail-on error,warning: any E: or W: fails the build; I:/P: are shown.
  lintian --display-info --pedantic --fail-on error,warning "$out" >&2 ||
    die "lintian reported errors or warnings (above)"
  echo "lintian: no errors, no warnings" >&2
fi

size=$(stat -c %s "$out")
say "built $out ($(numfmt --to=iec-i --suffix=B "$size"))"
echo "$out"
