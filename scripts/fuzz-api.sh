#!/usr/bin/env bash
# Fuzz the HTTP API with schemathesis against the OpenAPI document the server
# serves (GET /v1/openapi.json): valid and invalid data (--mode all), every
# phase (examples, coverage, fuzzing, stateful), repeated until the time is
# spent. The server is the debug binary (the one `cargo build --workspace
# --bins` makes) on the embedded file store in a temp dir, on a free
# 127.0.0.1 port, with auth on and an admin token made by `token create`.
# Fails when any check fails, the server dies, or its log shows a panic.
#
#   scripts/fuzz-api.sh               # short run (2 minutes), as CI runs it
#   scripts/fuzz-api.sh --minutes 10  # the soak run
#
# Installs schemathesis (pinned) into a venv under ~/.cache/asset-catalog/
# when missing. Reports (JUnit, failures as pytest reproducers) and the
# server log are kept in target/fuzz-api/.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=2
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="${2:-}"; shift 2 || shift ;;
    --minutes=*) minutes="${1#*=}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "fuzz-api.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$minutes" in ''|*[!0-9]*|0) echo "fuzz-api.sh: --minutes needs a whole number ≥ 1" >&2; exit 2 ;; esac

SCHEMATHESIS_VERSION=4.32.5
venv="$HOME/.cache/asset-catalog/schemathesis-$SCHEMATHESIS_VERSION"
st="$venv/bin/schemathesis"
if [ ! -x "$st" ]; then
  python=$(command -v python3.11 || command -v python3) || { echo "fuzz-api.sh: python3 (≥ 3.9, with venv) is required" >&2; exit 1; }
  echo "==> installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv" || { echo "fuzz-api.sh: cannot make a venv with $python (on Debian: apt install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "==> building the server (debug)"
# Exactly test.sh's build (same packages, so the same features): a no-op there.
cargo build --quiet --locked --workspace --bins
server="${CARGO_TARGET_DIR:-$PWD/target}/debug/asset-catalog-server"
out="$PWD/target/fuzz-api"
rm -rf "$out"
mkdir -p "$out"

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cat > "$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$work/state"

[storage]
url = "file://$work/state/objects"

[auth]
enabled = true
TOML
mkdir -p "$work/state/objects"
# One admin token: every route's authorized path is exercised (ignored_auth
# covers the unauthorized one).
token=$("$server" --config "$work/server.toml" token create --name fuzz-admin --scope admin)

log="$out/server.log"
RUST_LOG=info "$server" --config "$work/server.toml" >"$log" 2>&1 &
pid=$!
# Port 0: the kernel picks a free port; read it back from the "listening" line.
addr=
for _ in $(seq 1 200); do
  addr=$(sed -n 's/.*listening.*addr=\([0-9.]*:[0-9]*\).*/\1/p; s/.*addr=\([0-9.]*:[0-9]*\).*listening.*/\1/p' "$log" | head -n1)
  [ -n "$addr" ] && curl -sf "http://$addr/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "fuzz-api.sh: the server exited at startup:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "fuzz-api.sh: the server never said where it listens:" >&2; cat "$log" >&2; exit 1; }
url="http://$addr"
echo "==> fuzzing $url for $minutes min (schemathesis $SCHEMATHESIS_VERSION; log: $log)"

start=$(date +%s)
status=0
# From $out: schemathesis keeps its example database in ./.schemathesis.
# One worker: the 2-core machine also runs the server, and hypothesis's
# lambda introspection trips a CPython 3.11 threading bug (gh-106905).
# The checks. 413 is how this API rejects an over-long batch
# (too_many_hashes), so it counts as rejecting invalid data. The multipart
# form is exempt from negative_data_rejection (its invalid cases are still
# sent and checked for 5xx and conformance): schemathesis drops null, empty
# and non-string values of form fields when it encodes them, so its
# "invalid" forms reach the server valid (three soak runs, three such false
# alarms: an empty-array mtime, a non-string mtime, an empty extra field).
cat > "$out/schemathesis.toml" <<'TOML'
[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
response_headers_conformance.enabled = true
negative_data_rejection = { enabled = true, expected-statuses = ["400", "401", "403", "404", "405", "413", "415", "416", "422"] }
use_after_free.enabled = true
ensure_resource_availability.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true
ignored_auth.enabled = true
missing_required_header.enabled = true

[[operations]]
include-operation-id = "formUpload"
checks.negative_data_rejection.enabled = false

# tus says a request without `Tus-Resumable: 1.0.0` gets 412, so for the
# resumable uploads 412 is how invalid data (that header missing or wrong)
# is rejected.
[[operations]]
include-path-regex = "^/v1/uploads"
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "409", "412", "413", "415", "416", "422"]
checks.missing_required_header.expected-statuses = ["400", "401", "403", "406", "412", "415", "422"]
TOML
# A random body never hashes to a random {sha256}, so PUT would only ever
# see 422: for half of the valid cases, name the body's real hash in the path
# so uploads are really stored (and then read, ranged, deleted by the
# stateful phase). Valid cases only: a negative case stays invalid.
cat > "$out/fuzz_api_hooks.py" <<'PY'
import hashlib

import schemathesis
from schemathesis.generation import GenerationMode


# tus PATCH bodies are raw bytes, sent as application/octet-stream ones are.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@schemathesis.hook
def map_case(ctx, case):
    op = ctx.operation
    if op is None or op.method.upper() != "PUT" or op.path != "/v1/assets/{sha256}":
        return case
    meta = getattr(case, "_meta", None)
    if meta is not None and meta.generation.mode != GenerationMode.POSITIVE:
        return case
    body = case.body
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        return case
    # Binary bodies are drawn from a few fixed sample files: vary them (0 to
    # 4 KiB more, derived from the drawn headers, so a case replays the same).
    seed = hashlib.sha256(repr(sorted((case.headers or {}).items())).encode()).digest()
    extra = int.from_bytes(seed[:2], "big") % 4097
    body += (seed * (extra // len(seed) + 1))[:extra]
    case.body = body
    digest = hashlib.sha256(body).hexdigest()
    if int(digest[-1], 16) % 2 == 0:
        case.path_parameters = {**(case.path_parameters or {}), "sha256": digest}
    return case
PY
(cd "$out" && PYTHONPATH="$out" SCHEMATHESIS_HOOKS=fuzz_api_hooks "$st" --no-color --config-file "$out/schemathesis.toml" run "$url/v1/openapi.json" \
  --mode all \
  --phases examples,coverage,fuzzing,stateful \
  --max-time "$((minutes * 60))" \
  --workers 1 \
  --request-timeout 30 \
  --header "Authorization: Bearer $token" \
  --suppress-health-check all \
  --report junit,pytest \
  --report-dir "$out") || status=$?
elapsed=$(( $(date +%s) - start ))

if ! kill -0 "$pid" 2>/dev/null; then
  echo "fuzz-api.sh: FAIL: the server died during the run; its log: $log" >&2
  status=1
elif curl -sf -H "Authorization: Bearer $token" "$url/metrics" >"$out/metrics.txt"; then
  # What the server saw, from its own request histogram.
  awk '/^asset_catalog_http_request_duration_seconds_count/ {
         match($0, /status="[0-9]+"/); code = substr($0, RSTART + 8, 3); by[code] += $NF; n += $NF }
       END { line = ""; for (code in by) line = line " " code ":" by[code]
             printf "==> the server answered %d requests (by status:%s)\n", n, line }' "$out/metrics.txt"
fi
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
if grep -n -E 'panicked at|stack backtrace' "$log" >&2; then
  echo "fuzz-api.sh: FAIL: the server panicked (lines above, from $log)" >&2
  status=1
fi
if [ "$status" = 0 ]; then
  echo "==> fuzz-api.sh: passed in ${elapsed}s"
else
  echo "fuzz-api.sh: FAIL after ${elapsed}s; reports in $out" >&2
fi
exit "$status"
