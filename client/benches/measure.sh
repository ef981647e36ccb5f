#!/usr/bin/env bash
# Measures asset-watcher against a release asset-catalog-server (file store)
# on loopback, with default watcher settings:
#   1. files/s for 10,000 x 4 KiB files: cold `asset-watcher scan` until all
#      are stored (the scan exits only when its queue is done);
#   2. seconds to rescan 100,000 unchanged files, and the bytes hashed during
#      that rescan (must be 0);
#   3. the client's peak RSS (max over the runs, from /usr/bin/time -v),
#      including a run that uploads one 1 GiB file.
# Usage: client/benches/measure.sh [--no-build]   (from anywhere in the repo)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" != "--no-build" ]]; then
    cargo build --release -p asset-catalog-server -p asset-watcher --bins
fi
BIN="$PWD/target/release"
WORK="$(mktemp -d /tmp/aw-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$WORK/server/objects" "$WORK/home/w"
cat > "$WORK/server/server.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT"
state_dir = "$WORK/server/state"

[storage]
url = "file://$WORK/server/objects"

[log]
level = "warn"
EOF
# Auth is on by default: an upload token for the watcher, a read token for us.
srv() { "$BIN/asset-catalog-server" --config "$WORK/server/server.toml" "$@"; }
TOKEN="$(srv token create --name bench --scope upload 2>/dev/null)"
READ_TOKEN="$(srv token create --name bench-read --scope read 2>/dev/null)"
"$BIN/asset-catalog-server" --config "$WORK/server/server.toml" serve 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done

H="$WORK/home"
watcher() {
    env -i HOME="$H" USER=bench PATH=/usr/bin:/bin \
        XDG_CONFIG_HOME="$H/.config" XDG_STATE_HOME="$H/.local/state" XDG_CACHE_HOME="$H/.cache" \
        ASSET_WATCHER_LOG=warn "$BIN/asset-watcher" "$@"
}
mkdir -p "$H/.config/asset-watcher"
(umask 077 && echo "$TOKEN" > "$H/.config/asset-watcher/token")
watcher init --server "http://127.0.0.1:$PORT" --watch "$H/w" \
    --token-file "$H/.config/asset-watcher/token" > /dev/null

# files DIR COUNT SIZE PREFIX: COUNT files of SIZE random bytes, 100 per directory.
files() {
    python3 - "$@" <<'EOF'
import os, sys
root, count, size, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for i in range(count):
    d = os.path.join(root, f"{prefix}{i // 100:04d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{i:06d}.bin"), "wb") as f:
        f.write(os.urandom(size))
EOF
}

# timed LABEL ARGS...: run the watcher under /usr/bin/time -v; prints its summary.
PEAK_KB=0
timed() {
    local label=$1; shift
    /usr/bin/time -v -o "$WORK/time.$label" bash -c "$(declare -f watcher); H='$H' BIN='$BIN' watcher $*" > "$WORK/out.$label"
    local secs rss
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/time.$label")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.$label")
    (( rss > PEAK_KB )) && PEAK_KB=$rss
    echo "$label: ${secs}s, peak RSS ${rss} KiB: $(cat "$WORK/out.$label")"
    eval "SECS_$label=$secs"
}

echo "== 10,000 x 4 KiB files, cold scan"
files "$H/w" 10000 4096 cold
sync
timed cold scan --no-progress
grep -q "10000 synced" "$WORK/out.cold" || { echo "cold scan did not store every file"; exit 1; }
python3 -c "print(f'cold scan: {10000 / $SECS_cold:.0f} files/s')"

echo "== 100,000 files: upload 90,000 more (1 KiB), then rescan them all unchanged"
files "$H/w" 90000 1024 more
sync
timed fill scan --no-progress
grep -q "90000 synced" "$WORK/out.fill" || { echo "fill scan did not store every file"; exit 1; }
timed rescan scan --no-progress
grep -q "bytes_hashed=0" "$WORK/out.rescan" && echo "rescan hashed 0 bytes" || { echo "rescan HASHED BYTES"; exit 1; }
echo "rescan of 100,000 unchanged files: ${SECS_rescan}s"
echo "== one 1 GiB file: memory stays flat whatever the size"
head -c 1073741824 /dev/urandom > "$H/w/big.bin"
sync
timed big scan --no-progress
grep -q "1 synced" "$WORK/out.big" || { echo "big file was not stored"; exit 1; }
python3 -c "print(f'1 GiB upload: {1024 / $SECS_big:.0f} MiB/s')"
echo "client peak RSS over all runs: $((PEAK_KB / 1024)) MiB ($PEAK_KB KiB)"
echo "server metrics:"
curl -fs -H "Authorization: Bearer $READ_TOKEN" "http://127.0.0.1:$PORT/metrics" \
    | grep -E '^asset_catalog_(upload_bytes_total|uploads_total|dedup_hits_total)'
