#!/usr/bin/env bash
# Quick start: the main job, locally, in one command.
# Builds both daemons, starts asset-catalog-server on the embedded file store
# (state in .dev/ inside this checkout) and an asset-watcher watching DIR
# (default: ./watched, created if missing). Ctrl-C stops both.
#
#   scripts/dev.sh [DIR]
#
# Then drop files into DIR and list the catalog from another terminal (the API
# needs a token: dev.sh makes an admin one in .dev/admin.token):
#   curl -s -H "Authorization: Bearer $(cat .dev/admin.token)" http://127.0.0.1:8000/v1/assets | python3 -m json.tool
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
watch_dir=$(realpath -m "${1:-$repo/watched}")
port="${ASSET_CATALOG_DEV_PORT:-8000}"
dev="$repo/.dev"
url="http://127.0.0.1:$port"

command -v cargo >/dev/null || { echo "cargo is required: install Rust from https://rustup.rs" >&2; exit 1; }
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "dev.sh: 127.0.0.1:$port is already in use; set ASSET_CATALOG_DEV_PORT to another port" >&2
  exit 1
fi

echo "==> building (first build takes a few minutes)"
cargo build --bins --quiet
bin="${CARGO_TARGET_DIR:-$repo/target}/debug"

mkdir -p "$dev/state" "$watch_dir"
cat > "$dev/server.toml" <<TOML
# Written by scripts/dev.sh: a local server on the embedded file store.
[server]
listen = "127.0.0.1:$port"
state_dir = "$dev/state"

[storage]
url = "file://$dev/state/objects"
TOML

# Tokens (once): an admin token for you, an upload token for the watcher.
if [ ! -s "$dev/admin.token" ]; then
  (umask 077
   "$bin/asset-catalog-server" --config "$dev/server.toml" token create --name dev-admin --scope admin >"$dev/admin.token"
   "$bin/asset-catalog-server" --config "$dev/server.toml" token create --name dev-watcher --scope upload >"$dev/watcher.token")
fi

# The watcher gets its own XDG tree under .dev/ so it never touches your real one.
export XDG_CONFIG_HOME="$dev/config" XDG_STATE_HOME="$dev/local-state" XDG_CACHE_HOME="$dev/cache"
if [ ! -f "$XDG_CONFIG_HOME/asset-watcher/config.toml" ]; then
  "$bin/asset-watcher" init --server "$url" --watch "$watch_dir" --token-file "$dev/watcher.token"
fi

pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$bin/asset-catalog-server" --config "$dev/server.toml" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "dev.sh: the server exited; see its log above" >&2; exit 1; }
  sleep 0.1
done

"$bin/asset-watcher" run &
pids+=($!)
link=$("$bin/asset-catalog-server" --config "$dev/server.toml" ui-link --base-url "$url" 2>/dev/null)

cat <<MSG

asset-catalog is running:
  server   $url   (state in $dev/state)
  watching $watch_dir

Drop files into $watch_dir, then browse the catalog: open this one-time
sign-in link (15 minutes; later sign in with the token in $dev/admin.token):
  $link
or list it:
  curl -s -H "Authorization: Bearer \$(cat $dev/admin.token)" $url/v1/assets | python3 -m json.tool
Watcher status:
  XDG_STATE_HOME=$XDG_STATE_HOME XDG_CONFIG_HOME=$XDG_CONFIG_HOME $bin/asset-watcher status
Ctrl-C stops both.

MSG
wait -n "${pids[@]}"
