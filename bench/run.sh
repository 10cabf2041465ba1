#!/usr/bin/env bash
# bench/run.sh: is aws-role fast and small enough to be invisible in a job's start-up?
#
# It measures side by side in ONE run on this machine (so that the machine's speed and
# noise cancel out of the ratios), and checks against the targets:
#   1. latency   what aws-role-prolog costs for one job compared with the least any program
#                can do (one process, one POST to STS: the "floor"; target <= 1.3x) and with
#                the usual hand-written prolog (bash + `aws sts assume-role`; target >= 20x);
#   2. burst     200 jobs starting at once on a node, with STS throttling 30% of the calls:
#                every job ends with credentials or a failure record (never a hang) within
#                the deadline; how many succeed, how long it takes, how many STS calls;
#   3. footprint the prolog and epilog stay small in memory (< 16 MiB), and the SPANK
#                plugin that slurmstepd loads stays small on disk (< 1.5 MiB).
#   4. cluster   job start overhead on the real test cluster (tests/harness/cluster.sh, started
#                if down): `srun true` and bursts of `sbatch --wrap true` with no plugin, with
#                the plugin loaded and no role (target <= 1.15x) and with --aws-role (<= 1.30x);
#   5a. lifetime STS calls per job as a function of its time limit (1 h, 1 d, 7 d, UNLIMITED),
#                at the default 1 h cap and at a 12 h cap, from `aws-role-refresher --plan` (the
#                daemon's own schedule), next to the closed form without jitter;
#   5b. refresher the node daemon with 500 live jobs on 60-s sessions (a refresh per job every
#                30 s, 75 times the production rate) next to the same daemon with no job, for
#                a fixed window: CPU, peak RSS, refreshes done vs due, lateness, failures,
#                expired credentials, moto's load.
#   7.  scale    bursts of N prologs (200, 1,000, 5,000) against an account-wide STS rate R
#                (50, 200 calls/s: the fault proxy's token bucket): success, STS calls per
#                job, p50/p99/last time to credentials, and the last against N/R, the
#                physical limit (targets: 100% when N/R is under the timeout, <= 1.2 calls
#                per job, last <= 1.3 x N/R).
#
# It prints a table of medians, percentiles and ratios, with the targets next to them and
# "met"/"MISSED" (also written to bench/results/latest.txt, not committed). It exits non-zero
# only on errors (a build, a server or a prolog that fails), never because a number is bad.
#
# Usage (root, Debian 12, after tests/harness/deps.sh):
#   bash bench/run.sh                      # every section
#   bash bench/run.sh latency footprint    # some sections
#   AWS_ROLE_BENCH_REFRESH_WINDOW=60 bash bench/run.sh lifetime refresher
# Settings (environment):
#   AWS_ROLE_BENCH_RUNS=30            runs per program in section 1 (after one warm-up round)
#   AWS_ROLE_BENCH_BURST=200          prologs started at once in section 2
#   AWS_ROLE_BENCH_BURST_MODE=throttle/0.3   fault proxy mode for section 2
#   AWS_ROLE_BENCH_BURST_TIMEOUT=8s   AWS_ROLE_BENCH_BURST_ATTEMPTS=8   ([sts] of the burst's map)
#   AWS_ROLE_BENCH_FOOTPRINT_RUNS=5   runs per program in section 3
#   AWS_ROLE_BENCH_CLUSTER_ROUNDS=3   section 4: rounds; each runs both plugstack configurations
#   AWS_ROLE_BENCH_CLUSTER_SRUNS=20   srun per configuration per round
#   AWS_ROLE_BENCH_CLUSTER_BURST=20   sbatch jobs per burst (one burst per configuration per round)
#   AWS_ROLE_BENCH_PLAN_SAMPLES=3     --plan runs per case in section 5a (1 s apart: the jitter)
#   AWS_ROLE_BENCH_REFRESH_JOBS=500   live jobs in section 5b
#   AWS_ROLE_BENCH_REFRESH_WINDOW=120 seconds the two refreshers run in section 5b
#   AWS_ROLE_BENCH_REFRESH_BATCH=50   prologs (and epilogs) run at once to make (end) those jobs
#   AWS_ROLE_BENCH_REFRESH_SESSION=60 their session (s; lead defaults to half of it:
#                                     AWS_ROLE_BENCH_REFRESH_LEAD); AWS_ROLE_BENCH_REFRESH_NODE_RATE:
#                                     [sts] node_rate of their map (default: none)
#   AWS_ROLE_BENCH_ENDPOINT_JOBS=500  jobs the endpoint serves in section 6
#   AWS_ROLE_BENCH_ENDPOINT_RUNS=200  botocore refreshes per mechanism (a fifth of it, at least 10,
#                                     fresh processes for the first credentials)
#   AWS_ROLE_BENCH_ENDPOINT_SECS=10   AWS_ROLE_BENCH_ENDPOINT_WORKERS=8   its throughput run
#   AWS_ROLE_BENCH_SCALE_N=200,1000,5000   AWS_ROLE_BENCH_SCALE_R=50,200   section 7's bursts
#                                     and rates (every pair); AWS_ROLE_BENCH_SCALE_CAP=500
#                                     prologs alive at once (memory: ~10 MiB each)
#   AWS_ROLE_BENCH_STS_PORT=5159      AWS_ROLE_BENCH_PROXY_PORT=5160   (own moto + proxy)
#   AWS_ROLE_BENCH_PROXY=tests/harness/sts-fault-proxy.py   (the fault proxy to run)
#   AWS_ROLE_BENCH_USER=alice         the job's user (created with useradd if missing)
#   AWS_ROLE_BENCH_BASE=/run/aws-role-bench   the bench's own directory (removed at exit); the
#                                     jobs' base_dir is its jobs/ subdirectory
#   AWS_ROLE_BENCH_TMPFS=1            if /run is not a tmpfs (as on this test VM; it is on any
#                                     systemd node), mount a tmpfs there so the jobs' files live
#                                     where they do in production; section 1 then also measures
#                                     the prolog on /run's own file system. 0: never mount.
#   AWS_ROLE_BENCH_RESULTS=bench/results/latest.txt
#   CARGO_TARGET_DIR (default ./target)
#
# The moto server and the fault proxy are the bench's own (never the test suite's on
# 5059/5060); both are stopped on exit. Only section 4 uses Slurm (the test cluster, whose
# site map points at the bench's moto during the section); sections 1-3 run the binaries
# exactly as slurmd runs a Prolog, like tests/integration/prolog.sh; section 5b runs the
# refresher as its systemd unit does: root, empty environment.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# log, die, wait_for, now_ms, elapsed_s, require_root, VENV
# shellcheck source-path=SCRIPTDIR source=../tests/lib.sh
. "$REPO/tests/lib.sh"

STS_PORT=${AWS_ROLE_BENCH_STS_PORT:-5159}
PROXY_PORT=${AWS_ROLE_BENCH_PROXY_PORT:-5160}
STS_URL=http://127.0.0.1:$STS_PORT
PROXY_URL=http://127.0.0.1:$PROXY_PORT
PROXY_SCRIPT=${AWS_ROLE_BENCH_PROXY:-$REPO/tests/harness/sts-fault-proxy.py}
RUNS=${AWS_ROLE_BENCH_RUNS:-30}
BURST=${AWS_ROLE_BENCH_BURST:-200}
BURST_MODE=${AWS_ROLE_BENCH_BURST_MODE:-throttle/0.3}
BURST_TIMEOUT=${AWS_ROLE_BENCH_BURST_TIMEOUT:-8s}
BURST_ATTEMPTS=${AWS_ROLE_BENCH_BURST_ATTEMPTS:-8}
FOOTPRINT_RUNS=${AWS_ROLE_BENCH_FOOTPRINT_RUNS:-5}
PLAN_SAMPLES=${AWS_ROLE_BENCH_PLAN_SAMPLES:-3}
REFRESH_JOBS=${AWS_ROLE_BENCH_REFRESH_JOBS:-500}
ENDPOINT_JOBS=${AWS_ROLE_BENCH_ENDPOINT_JOBS:-500}
ENDPOINT_RUNS=${AWS_ROLE_BENCH_ENDPOINT_RUNS:-200}
ENDPOINT_SECS=${AWS_ROLE_BENCH_ENDPOINT_SECS:-10}
ENDPOINT_WORKERS=${AWS_ROLE_BENCH_ENDPOINT_WORKERS:-8}
SCALE_N=${AWS_ROLE_BENCH_SCALE_N:-200,1000,5000}
SCALE_R=${AWS_ROLE_BENCH_SCALE_R:-50,200}
SCALE_CAP=${AWS_ROLE_BENCH_SCALE_CAP:-500}
# Section 6's endpoint: a port of its own, and room for the workers' connections.
ENDPOINT_PORT=${AWS_ROLE_BENCH_ENDPOINT_PORT:-944}
REFRESH_WINDOW=${AWS_ROLE_BENCH_REFRESH_WINDOW:-120}
REFRESH_BATCH=${AWS_ROLE_BENCH_REFRESH_BATCH:-50}
# Section 5b's map: 60-s sessions, lead 30 s + jitter 10 s, a scan every 5 s; longer
# sessions (lead: half of one) for thousands of jobs, and node_rate to pace the daemon.
REFRESH_SESSION=${AWS_ROLE_BENCH_REFRESH_SESSION:-60}
REFRESH_LEAD=${AWS_ROLE_BENCH_REFRESH_LEAD:-$((REFRESH_SESSION / 2))}
REFRESH_JITTER=10 REFRESH_SCAN=5
REFRESH_NODE_RATE=${AWS_ROLE_BENCH_REFRESH_NODE_RATE:-}
BENCH_USER=${AWS_ROLE_BENCH_USER:-alice}
ROOT=${AWS_ROLE_BENCH_BASE:-/run/aws-role-bench}
TMPFS=${AWS_ROLE_BENCH_TMPFS:-1}
BASE=$ROOT/jobs            # base_dir of the prolog's jobs
ALT_BASE=$ROOT/handwritten # where the hand-written prolog writes
DISK_BASE=$ROOT-disk       # base_dir on /run's own file system, when ROOT is a tmpfs we mounted
REFRESH_BASE=$ROOT/refresh-jobs # base_dir of section 5b's live jobs
IDLE_BASE=$ROOT/refresh-idle    # base_dir of section 5b's idle refresher (stays empty)
RESULTS=${AWS_ROLE_BENCH_RESULTS:-$HERE/results/latest.txt}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$CARGO_TARGET_DIR/release
PY=$VENV/bin/python3
PLUGIN_MAX_BYTES=$((1536 * 1024)) # 1.5 MiB, the same limit as tests/harness/install.sh
# Section 4: the test cluster's site map and plugstack fragment (tests/harness/).
SITE_MAP=${AWS_ROLE_MAP:-/etc/aws-role/role-map.toml}
PLUGSTACK_FRAGMENT=/etc/slurm/plugstack.conf.d/aws-role.conf
PLUGSTACK_MIN=/etc/slurm/plugstack.conf.d/aws-role-bench-min.conf
CLUSTER_ROUNDS=${AWS_ROLE_BENCH_CLUSTER_ROUNDS:-3}
CLUSTER_SRUNS=${AWS_ROLE_BENCH_CLUSTER_SRUNS:-20}
CLUSTER_BURST=${AWS_ROLE_BENCH_CLUSTER_BURST:-20}
ALL_SECTIONS=(latency burst footprint cluster lifetime refresher endpoint scale)

WORK=
MOUNTED=
BASE_FS=
DISK_FS=
MOTO_PID=
PROXY_PID=
REPORT=
SITE_MAP_SAVED=

# ------------------------------------------------------------------ set-up and clean-up

# stop_child PID NAME: SIGTERM a server this script started, SIGKILL after ~5 s, reap it.
stop_child() {
  local pid=$1 name=$2 i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  log "stopped $name (pid $pid)"
}

# stop_refreshers: section 5b's refreshers, if bench.py did not get to stop them itself
# (it records their PIDs; only those, and only while they still run aws-role-refresher).
stop_refreshers() {
  local pid
  [ -n "$WORK" ] && [ -f "$WORK/refresher.pids" ] || return 0
  while read -r pid; do
    if pid_matches "$pid" aws-role-refresher; then
      kill -TERM "$pid" 2>/dev/null || true
      log "stopped aws-role-refresher (pid $pid)"
    fi
  done <"$WORK/refresher.pids"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_refreshers
  restore_site
  stop_child "$PROXY_PID" "fault proxy"
  stop_child "$MOTO_PID" moto_server
  # Only the bench's own directories: its tmpfs, the base_dirs named for it, its mktemp dir.
  if [ -n "$MOUNTED" ]; then umount "$ROOT" || umount -l "$ROOT" || true; fi
  rm -rf -- "$ROOT" "$DISK_BASE"
  if [ -n "$WORK" ]; then rm -rf -- "$WORK"; fi
  if [ -n "$REPORT" ]; then rm -f -- "$REPORT"; fi
  exit "$rc"
}

# listening PORT: something accepts TCP connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_servers() {
  local p
  for p in "$STS_PORT" "$PROXY_PORT"; do
    listening "$p" && die "something already listens on 127.0.0.1:$p (set AWS_ROLE_BENCH_STS_PORT / AWS_ROLE_BENCH_PROXY_PORT)"
  done
  (cd / && exec "$VENV/bin/moto_server" -H 127.0.0.1 -p "$STS_PORT" </dev/null >"$WORK/moto.log" 2>&1) &
  MOTO_PID=$!
  wait_for 30 http_answers "$STS_URL/moto-api/" || { tail -n 20 "$WORK/moto.log" >&2; die "moto_server does not answer on $STS_URL"; }
  (cd / && exec "$PY" "$PROXY_SCRIPT" --port "$PROXY_PORT" --upstream "$STS_URL" \
    </dev/null >"$WORK/proxy.log" 2>&1) &
  PROXY_PID=$!
  wait_for 30 http_answers "$PROXY_URL/stats" || { tail -n 20 "$WORK/proxy.log" >&2; die "fault proxy does not answer on $PROXY_URL"; }
  log "moto_server (pid $MOTO_PID) on $STS_URL, fault proxy (pid $PROXY_PID) on $PROXY_URL"
}

ensure_user() {
  # As tests/harness/cluster.sh's ensure_users (which has no users-only subcommand).
  if ! id -u "$BENCH_USER" >/dev/null 2>&1; then
    log "creating user $BENCH_USER"
    useradd -m -s /bin/bash "$BENCH_USER"
  fi
}

ensure_time() {
  [ -x /usr/bin/time ] && return 0
  log "installing the 'time' package for /usr/bin/time"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >&2 \
    || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >&2; }
}

build() {
  local t0
  t0=$(now_ms)
  log "building the release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$REPO" && cargo build --release -p aws-role-prolog -p aws-role-epilog -p aws-role-credentials \
    -p aws-role-refresher -p aws-role-endpoint) >&2
  cc -O2 -Wall -o "$WORK/floor" "$HERE/floor.c"
  log "built in $(elapsed_s "$t0")"
}

# write_map FILE ENDPOINT TIMEOUT MAX_ATTEMPTS BASE_DIR [ROLE_LINE]: the map of
# tests/integration/prolog.sh; ROLE_LINE is one more line for the role (section 1's groups row).
write_map() {
  cat >"$1" <<TOML
[sts]
region = "us-east-1"
endpoint = "$2"
credentials_file = "$WORK/node-credentials"
timeout = "$3"
max_attempts = $4

[node]
base_dir = "$5"
credential_helper = "$BIN/aws-role-credentials"

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["$BENCH_USER"]
max_session = "2h"
${6:-}
TOML
}

# write_plan_map FILE: section 5a's map: the default timing ([refresh], margin, 1 h cap) and
# one role with STS's longest cap. --plan never calls STS.
write_plan_map() {
  cat >"$1" <<TOML
[sts]
region = "us-east-1"
endpoint = "$STS_URL"
credentials_file = "$WORK/node-credentials"

[node]
base_dir = "$REFRESH_BASE"
credential_helper = "$BIN/aws-role-credentials"

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["$BENCH_USER"]

[roles.long]
arn = "arn:aws:iam::123456789012:role/long"
allow_users = ["$BENCH_USER"]
max_session = "12h"
TOML
}

# write_refresh_map FILE: section 5b's map, short sessions as in tests/integration/refresh.sh
# (a min_session below 15 min is accepted only for a loopback endpoint); concurrency default.
write_refresh_map() {
  cat >"$1" <<TOML
[sts]
region = "us-east-1"
endpoint = "$STS_URL"
credentials_file = "$WORK/node-credentials"
min_session = "20s"
${REFRESH_NODE_RATE:+node_rate = $REFRESH_NODE_RATE}

[node]
base_dir = "$REFRESH_BASE"
credential_helper = "$BIN/aws-role-credentials"

[refresh]
lead = "${REFRESH_LEAD}s"
jitter = "${REFRESH_JITTER}s"
scan_interval = "${REFRESH_SCAN}s"

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["$BENCH_USER"]
max_session = "${REFRESH_SESSION}s"
TOML
}

setup() {
  local summary concurrency
  require_root
  # Everything under ROOT is deleted at exit: refuse anything but a dedicated directory.
  [[ $ROOT == /?*/?* && ${ROOT##*/} == *bench* ]] \
    || die "AWS_ROLE_BENCH_BASE=$ROOT: must be an absolute path whose last component contains 'bench'"
  if [ ! -x "$PY" ] || [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/aws" ]; then
    die "$VENV is missing moto/awscli; run tests/harness/deps.sh"
  fi
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  WORK=$(mktemp -d /tmp/aws-role-bench.XXXXXX)
  mkdir -p "$(dirname "$RESULTS")"
  REPORT=$(mktemp "$(dirname "$RESULTS")/.latest.XXXXXX")
  ensure_user
  ensure_time
  build
  prepare_dirs
  # Node credentials: root-only, never in the environment (as in tests/integration/prolog.sh).
  install -m 0600 /dev/null "$WORK/node-credentials"
  printf '[default]\naws_access_key_id = AKIDNODE000000000000\naws_secret_access_key = nodesecret\n' >"$WORK/node-credentials"
  write_map "$WORK/map.toml" "$STS_URL" 8s 5 "$BASE"
  if [ -n "$DISK_FS" ]; then write_map "$WORK/map-disk.toml" "$STS_URL" 8s 5 "$DISK_BASE"; fi
  write_map "$WORK/burst.toml" "$PROXY_URL/$BURST_MODE" "$BURST_TIMEOUT" "$BURST_ATTEMPTS" "$BASE"
  # Section 1's groups row: the same map, but an allow_groups makes the prolog ask NSS.
  write_map "$WORK/map-groups.toml" "$STS_URL" 8s 5 "$BASE" "allow_groups = [\"$(id -gn "$BENCH_USER")\"]"
  write_map "$WORK/endpoint.toml" "$STS_URL" 8s 5 "$BASE"
  printf '\n[endpoint]\nlisten = "127.0.0.1:%s"\nmax_connections_per_user = 256\n' "$ENDPOINT_PORT" >>"$WORK/endpoint.toml"
  write_plan_map "$WORK/plan.toml"
  write_refresh_map "$WORK/refresh.toml"
  "$BIN/aws-role-prolog" --check-config "$WORK/map.toml" >/dev/null || die "the bench's map is invalid"
  "$BIN/aws-role-prolog" --check-config "$WORK/map-groups.toml" >/dev/null || die "the bench's groups map is invalid"
  "$BIN/aws-role-prolog" --check-config "$WORK/plan.toml" >/dev/null || die "the bench's --plan map is invalid"
  summary=$("$BIN/aws-role-prolog" --check-config "$WORK/refresh.toml") || die "the bench's refresher map is invalid"
  concurrency=$(sed -n 's/.*at most \([0-9][0-9]*\) AssumeRole calls at once.*/\1/p' <<<"$summary")
  [ -n "$concurrency" ] || die "cannot read [refresh] concurrency from --check-config"
  install -d -m 0755 "$IDLE_BASE"
  cat >"$WORK/handwritten.conf" <<EOF
AWS=$VENV/bin/aws
ENDPOINT=$STS_URL
NODE_CREDENTIALS=$WORK/node-credentials
BASE=$ALT_BASE
ROLE=demo
ROLE_ARN=arn:aws:iam::123456789012:role/demo
ALLOWED_USER=$BENCH_USER
EOF
  start_servers
  cat >"$WORK/config.json" <<EOF
{
  "work": "$WORK", "bin": "$BIN", "venv": "$VENV", "floor": "$WORK/floor",
  "map": "$WORK/map.toml", "burst_map": "$WORK/burst.toml", "groups_map": "$WORK/map-groups.toml",
  "base": "$BASE", "alt_base": "$ALT_BASE", "base_fs": "$BASE_FS",
  "disk_map": "${DISK_FS:+$WORK/map-disk.toml}", "disk_base": "$DISK_BASE", "disk_fs": "$DISK_FS",
  "handwritten": "$HERE/handwritten-prolog.sh", "handwritten_settings": "$WORK/handwritten.conf",
  "user": "$BENCH_USER", "uid": $(id -u "$BENCH_USER"), "gid": $(id -g "$BENCH_USER"),
  "sts_port": $STS_PORT, "proxy_port": $PROXY_PORT, "proxy_url": "$PROXY_URL",
  "runs": $RUNS, "burst": $BURST, "burst_mode": "$BURST_MODE",
  "burst_timeout": "$BURST_TIMEOUT", "burst_attempts": $BURST_ATTEMPTS,
  "one_cert": "$(find /etc/ssl/certs -maxdepth 1 -name '*.pem' -type f 2>/dev/null | sort | head -n1)",
  "footprint_runs": $FOOTPRINT_RUNS, "time_bin": "/usr/bin/time", "job_base": 700000,
  "moto_pid": $MOTO_PID, "moto_log": "$WORK/moto.log",
  "plan_map": "$WORK/plan.toml", "plan_samples": $PLAN_SAMPLES,
  "refresh_map": "$WORK/refresh.toml", "refresh_base": "$REFRESH_BASE", "refresh_idle_base": "$IDLE_BASE",
  "refresh_jobs": $REFRESH_JOBS, "refresh_window": $REFRESH_WINDOW, "refresh_batch": $REFRESH_BATCH,
  "refresh_session": $REFRESH_SESSION, "refresh_lead": $REFRESH_LEAD, "refresh_jitter": $REFRESH_JITTER,
  "refresh_scan": $REFRESH_SCAN, "refresh_concurrency": $concurrency, "refresh_node_rate": "$REFRESH_NODE_RATE",
  "cluster_sh": "$REPO/tests/harness/cluster.sh", "cluster_rounds": $CLUSTER_ROUNDS,
  "cluster_sruns": $CLUSTER_SRUNS, "cluster_burst": $CLUSTER_BURST, "cluster_base": "/run/aws-role",
  "spank_min": "$ROOT/bench_min.so",
  "endpoint_map": "$WORK/endpoint.toml", "endpoint_client": "$HERE/endpoint_client.py",
  "endpoint_jobs": $ENDPOINT_JOBS, "endpoint_runs": $ENDPOINT_RUNS, "endpoint_secs": $ENDPOINT_SECS,
  "endpoint_workers": $ENDPOINT_WORKERS,
  "scale_n": "$SCALE_N", "scale_r": "$SCALE_R", "scale_cap": $SCALE_CAP,
  "slurm_version": "$(dpkg-query -W -f='${Version}' slurmd 2>/dev/null || echo '?')"
}
EOF
}

# prepare_dirs: the bench's directory, on a tmpfs of its own if /run is not one.
prepare_dirs() {
  local parent_fs
  # Left over by a killed run?
  if mountpoint -q "$ROOT"; then umount "$ROOT"; fi
  rm -rf -- "$ROOT" "$DISK_BASE"
  install -d -m 0755 "$ROOT"
  parent_fs=$(findmnt -n -o FSTYPE -T "$ROOT")
  BASE_FS=$parent_fs
  if [ "$TMPFS" = 1 ] && [ "$parent_fs" != tmpfs ]; then
    if mount -t tmpfs -o mode=0755,size=256m aws-role-bench "$ROOT"; then
      MOUNTED=1
      BASE_FS=tmpfs
      DISK_FS=$parent_fs
    else
      log "could not mount a tmpfs on $ROOT: the jobs' files go to $parent_fs"
    fi
  fi
}

header() {
  local where="$BASE_FS"
  [ -n "$MOUNTED" ] && where="a tmpfs mounted by the bench (this VM's /run is $DISK_FS, not tmpfs)"
  echo "aws-role bench, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))," \
    "load average at start $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
  echo "STS: moto_server $("$PY" -c 'import moto; print(moto.__version__)') on $STS_URL, fault proxy on $PROXY_URL;" \
    "job user $BENCH_USER"
  echo "base_dir: $BASE on $where"
}

# ------------------------------------------------------------------ sections

section_latency() { "$PY" "$HERE/bench.py" latency "$WORK/config.json"; }

section_burst() { "$PY" "$HERE/bench.py" burst "$WORK/config.json"; }

section_footprint() {
  "$PY" "$HERE/bench.py" footprint "$WORK/config.json"
  plugin_size
}

# The plugin is built on its own, exactly as tests/harness/install.sh does (a separate cargo
# invocation, or cargo would unify core's `sts` feature into it); the release profile
# strips it (strip = true), which is checked here.
plugin_size() {
  local so=$BIN/libaws_role_spank.so inc=${SLURM_INCLUDE_DIR:-/usr/include} size stripped
  if [ ! -f "$inc/slurm/slurm_version.h" ]; then
    echo "   SPANK plugin: not built: $inc/slurm/slurm_version.h missing (install libslurm-dev)"
    return 0
  fi
  log "building the SPANK plugin (cargo build --release -p aws-role-spank)"
  (cd "$REPO" && cargo build --release -p aws-role-spank) >&2
  [ -f "$so" ] || die "$so was not built"
  size=$(stat -c %s "$so")
  if readelf -S "$so" 2>/dev/null | grep -q '\.symtab'; then stripped="NOT stripped"; else stripped=stripped; fi
  printf '   %-52s %10s bytes = %.2f MiB (%s)   < 1.5 MiB   %s\n' "SPANK plugin aws_role.so (release, LTO)" \
    "$size" "$(awk "BEGIN{print $size/1048576}")" "$stripped" "$( ((size < PLUGIN_MAX_BYTES)) && echo met || echo MISSED)"
  printf '   %-52s %s\n' "binaries on disk (stripped)" \
    "prolog $(stat -c %s "$BIN/aws-role-prolog") B, epilog $(stat -c %s "$BIN/aws-role-epilog") B, credentials $(stat -c %s "$BIN/aws-role-credentials") B"
}

# Section 4: job start overhead on the test cluster. Starts it if it is down (and leaves it
# running), installs the freshly built plugin and binaries (tests/harness/install.sh), and
# points the site map at the bench's own moto for the section; the map and the plugstack
# fragment are put back afterwards, also on Ctrl-C (cleanup).
section_cluster() {
  local rc=0
  if ! sl scontrol ping 2>/dev/null | grep -q 'is UP'; then
    log "starting the test cluster (tests/harness/cluster.sh up)"
    bash "$REPO/tests/harness/cluster.sh" up >&2
  fi
  bash "$REPO/tests/harness/install.sh" >&2
  cc -O2 -Wall -shared -fPIC -o "$ROOT/bench_min.so" "$HERE/spank-min.c"
  if [ -f "$SITE_MAP" ]; then cp -p "$SITE_MAP" "$WORK/site-map.saved"; fi
  SITE_MAP_SAVED=1
  AWS_ROLE_MAP=$SITE_MAP bash "$REPO/tests/harness/site.sh" write "$STS_URL" >&2
  "$PY" "$HERE/bench.py" cluster "$WORK/config.json" || rc=$?
  restore_site
  return "$rc"
}

# restore_site: the site map as section 4 found it, and the plugin loaded again.
restore_site() {
  [ -n "$SITE_MAP_SAVED" ] || return 0
  if [ -f "$WORK/site-map.saved" ]; then mv -f "$WORK/site-map.saved" "$SITE_MAP"; fi
  if [ -f "$PLUGSTACK_FRAGMENT.bench-off" ] || [ -f "$PLUGSTACK_MIN" ]; then
    rm -f "$PLUGSTACK_MIN"
    if [ -f "$PLUGSTACK_FRAGMENT.bench-off" ]; then mv -f "$PLUGSTACK_FRAGMENT.bench-off" "$PLUGSTACK_FRAGMENT"; fi
    bash "$REPO/tests/harness/cluster.sh" restart-slurmd >&2 || true
  fi
  SITE_MAP_SAVED=
}

# Section 5a: STS calls per job over its life, from the daemon's own schedule (--plan).
section_lifetime() { "$PY" "$HERE/bench.py" lifetime "$WORK/config.json"; }

# Section 5b: the refresher daemon with N live jobs and with none, side by side. The jobs talk
# to moto directly (no proxy: moto's own request log counts the STS calls); their epilogs
# remove them at the end.
section_refresher() { "$PY" "$HERE/bench.py" refresher "$WORK/config.json"; }

# Section 6: the credentials endpoint beside credential_process, with N jobs on the node.
section_scale() { "$PY" "$HERE/bench.py" scale "$WORK/config.json"; }

section_endpoint() { "$PY" "$HERE/bench.py" endpoint "$WORK/config.json"; }

# ------------------------------------------------------------------ main

main() {
  local sections=("$@") s
  ((${#sections[@]})) || sections=("${ALL_SECTIONS[@]}")
  for s in "${sections[@]}"; do
    [[ " ${ALL_SECTIONS[*]} " == *" $s "* ]] || die "unknown section '$s' (known: ${ALL_SECTIONS[*]})"
  done
  setup
  { header; echo; } | tee -a "$REPORT"
  for s in "${sections[@]}"; do
    "section_$s" | tee -a "$REPORT"
    echo | tee -a "$REPORT"
  done
  echo "(also in $RESULTS)" >&2
  mv -f "$REPORT" "$RESULTS"
  REPORT=
}

main "$@"
