#!/usr/bin/env bash
# Benchmarks of issue #6, in one command, on this machine: builds release
# binaries, installs the peers (Debian's rclone, awscli, wrk), PostgreSQL 15
# and Garage when missing, starts Garage (TCP_NODELAY shim) and
# asset-catalog-server on 127.0.0.1, generates its own data, runs B1-B6 for us
# and for the peers (median of 3 runs each), B7 (scale-out ingest), B8 (the
# index at 1,000,000 assets, SQLite vs PostgreSQL, bench/index-bench) and B9
# (background jobs; Debian's python3-pil draws its JPEGs), B11 (the web UI on
# B8's index, in Debian's Chromium) and writes BENCHMARKS.md, with a chart of
# each scenario's figures per unit in bench/charts/.
#
#   bench/run.sh                    # full run (~50 min on 2 idle cores), writes BENCHMARKS.md
#   bench/run.sh --quick            # smoke run: small sizes, 1 run (~2 min),
#                                   #   writes target/bench/BENCHMARKS.quick.md
#   bench/run.sh --runs 5 --only B1,B4
#   bench/run.sh --only B8 --merge  # B8 alone (~10 min), its section and summary rows
#                                   #   written into the existing BENCHMARKS.md
#   bench/run.sh --only B8 --assets 20000 --output target/bench/B8.md
#                                   # a quick B8 (20,000 assets, ~1 min)
#   bench/run.sh --only B7 --merge  # B7 alone (~13 min): B1's ingest on SQLite and on 1-3 servers
#                                   #   sharing PostgreSQL behind HAProxy, into BENCHMARKS.md
#   bench/run.sh --only B9 --merge  # B9 alone (~12 min): scrub vs sha256sum, thumbnail jobs/s
#                                   #   of 12 MP JPEGs, B1's ingest beside a backlog of jobs
#   bench/run.sh --only B10 --merge # B10 alone (~6 min): a 2 GiB tus upload, plain PUT vs
#                                   #   resumable, and cut by kill -9 of watcher or server at half
#   bench/run.sh --only B11 --merge # B11 alone: the web UI at 1M assets in Chromium
#   bench/run.sh --profile debug    # use debug binaries (smoke runs only)
#   bench/run.sh --no-build         # use the binaries already in target/
#   bench/run.sh --perf --only B1   # profile our daemons (perf record) -> target/bench/perf/
#   bench/run.sh --no-build --render target/bench/results.json
#                                   # rewrite BENCHMARKS.md and its charts (bench/charts/) from
#                                   #   the last run's raw results (after editing
#                                   #   bench/findings.md); measures nothing
#   bench/run.sh --no-build --render target/bench/results.B10.json --merge --only B10
#                                   # the same for one scenario's section of BENCHMARKS.md
#   bench/run.sh --help             # every option of the harness
#
# Run it on an otherwise idle machine: the load average is recorded in the report.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

profile=release
build=1
render=0
only=B1,B2,B3,B4,B5,B6,B7,B8,B9,B10  # the harness's default: every scenario
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="${2:?--only needs scenarios, e.g. B1,B4}"; pass+=("$1" "$2"); shift 2 ;;
    --only=*) only="${1#--only=}"; pass+=("$1"); shift ;;
    --profile) profile="${2:?--profile needs release or debug}"; shift 2 ;;
    --profile=*) profile="${1#--profile=}"; shift ;;
    --no-build) build=0; shift ;;
    --render) render=1; pass+=("$1" "${2:?--render needs a results JSON}"); shift 2 ;;
    --render=*) render=1; pass+=("$1"); shift ;;
    -h|--help)
      sed -n '2,/^set -euo/{/^set -euo/d;p}' "$0"
      echo
      exec python3 -B bench/harness --help ;;
    *) pass+=("$1"); shift ;;
  esac
done
case "$profile" in
  release) cargo_profile=(--release) ;;
  debug) cargo_profile=() ;;
  *) echo "run.sh: --profile must be release or debug, not '$profile'" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*" >&2; }
target="${CARGO_TARGET_DIR:-$repo/target}"

# Re-rendering measures nothing: no peers, Garage, shim or build needed.
if [ "$render" = 1 ]; then
  exec python3 -B bench/harness --repo "$repo" --bin-dir "$target/$profile" \
    --profile "$profile" --command "bench/run.sh${pass[*]:+ ${pass[*]}}" "${pass[@]}"
fi

step "tools"
for t in python3 gcc cargo git find sha256sum xargs; do
  command -v "$t" >/dev/null || { echo "run.sh: '$t' is required" >&2; exit 1; }
done
# What the chosen scenarios need: B1-B6 the peers and Garage, B8 PostgreSQL,
# B9 Garage and python3-pil, B10 Garage, B11 Chromium and python3-selenium.
only=${only// /}
wants() { [[ ",${only^^}," =~ ,($1), ]]; }
# The peers are Debian's packages, called by absolute path (a pip-installed
# aws earlier in PATH must not be picked up instead).
missing=()
if wants 'B[1-6]'; then
  [ -x /usr/bin/rclone ] || missing+=(rclone)
  [ -x /usr/bin/aws ] || missing+=(awscli)
  [ -x /usr/bin/wrk ] || missing+=(wrk)
fi
# B8's private PostgreSQL: testkit runs Debian's PostgreSQL 15 binaries.
if wants B8; then
  [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing+=(postgresql)
fi
# B7: the same PostgreSQL, and HAProxy in front of the servers.
if wants B7; then
  [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing+=(postgresql)
  [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
fi
# B9 draws its JPEGs with Debian's python3 and PIL (the harness itself needs
# only the standard library of whichever python3 runs it).
if wants B9; then
  /usr/bin/python3 -c 'import PIL' 2>/dev/null || missing+=(python3-pil)
fi
# B11 reads the web UI in Debian's Chromium, through Debian's Selenium.
if wants B11; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  /usr/bin/python3 -c 'import selenium' 2>/dev/null || missing+=(python3-selenium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${missing[*]} from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "run.sh: install these first: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
garage_args=()
if wants 'B[1-7]|B9|B10'; then
  garage=$(scripts/install-garage.sh)
  echo "garage: $garage" >&2
  garage_args=(--garage "$garage")
fi

mkdir -p "$target/bench"
shim="$target/bench/nodelay.so"
gcc -O2 -Wall -shared -fPIC -o "$shim" bench/nodelay.c -ldl

if [ "$build" = 1 ]; then
  step "cargo build ${cargo_profile[*]} --workspace --bins"
  cargo build "${cargo_profile[@]}" --workspace --bins
fi

step "benchmarks"
exec python3 -B bench/harness --repo "$repo" --bin-dir "$target/$profile" \
  --profile "$profile" "${garage_args[@]}" --shim "$shim" \
  --command "bench/run.sh${pass[*]:+ ${pass[*]}}" "${pass[@]}"
