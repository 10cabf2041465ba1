#!/usr/bin/env bash
# The one shell library of the tests, the harness, the demo and the benchmarks. Source it;
# it runs nothing on its own. First the harness's helpers (logging, timeouts, processes,
# waiting for Slurm), then the suites' assertions: every check prints one TAP-like line
# ("ok - ..." / "not ok - ..."), and `finish` prints the counts and fails the script if
# any check failed.
# shellcheck disable=SC2034  # variables here are used by the scripts that source this

RUN_DIR=${AWS_ROLE_TEST_RUN_DIR:-/run/aws-role-test}
LOG_DIR=${AWS_ROLE_TEST_LOG_DIR:-/var/log/aws-role-test}
VENV=${AWS_ROLE_TEST_VENV:-/opt/aws-role-test/venv}
# Every Slurm client call goes through this: a dead or hung slurmctld must make the
# harness fail in seconds, not hang CI until its global timeout.
SLURM_CLIENT_TIMEOUT=${AWS_ROLE_TEST_SLURM_TIMEOUT:-10}

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

sl() { timeout "$SLURM_CLIENT_TIMEOUT" "$@"; }

now_ms() { date +%s%3N; }
# elapsed_s START_MS -> "1.234s"
elapsed_s() {
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%03ds' $((d / 1000)) $((d % 1000))
}

# debootstrap_into SUITE DIR MIRROR LOG [DEBOOTSTRAP_OPTION...]: a fresh minbase root of
# Debian SUITE in DIR (what was there is removed), installing debootstrap when missing;
# dies with the tail of LOG when it fails.
debootstrap_into() {
  local suite=$1 dir=$2 mirror=$3 logf=$4
  shift 4
  command -v debootstrap >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq debootstrap >/tmp/aws-role-debootstrap-apt.log 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq debootstrap; }
  }
  rm -rf "$dir"
  install -d -m 0755 "$(dirname "$dir")"
  log "debootstrap $suite into $dir"
  debootstrap --variant=minbase "$@" "$suite" "$dir" "$mirror" >"$logf" 2>&1 ||
    { tail -n 20 "$logf" >&2; die "debootstrap $suite failed"; }
}

# pid_matches PID PATTERN: PID is alive and its command line contains PATTERN.
# /run is on the root disk here (not tmpfs), so PID files survive reboots and a
# recorded PID may meanwhile belong to an unrelated process: always check cmdline.
pid_matches() {
  local pid=$1 pat=$2 cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$pat"* ]]
}

# pidfile_alive FILE PATTERN: prints the PID if FILE names a live matching process.
pidfile_alive() {
  local f=$1 pat=$2 pid
  [ -s "$f" ] || return 1
  pid=$(head -n1 "$f" 2>/dev/null) || return 1
  pid_matches "$pid" "$pat" || return 1
  printf '%s\n' "$pid"
}

# live_pgrep NAME: PIDs of processes named exactly NAME, without zombies. PID 1 on
# these machines does not reap orphans, so every daemon we stop stays behind as a
# zombie, and plain pgrep would still report it as running.
live_pgrep() {
  local pid st own_net own_mnt
  own_net=$(readlink /proc/self/ns/net)
  own_mnt=$(readlink /proc/self/ns/mnt)
  for pid in $(pgrep -x "$1"); do
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || continue
    [ -n "$st" ] && [ "$st" != Z ] || continue
    # Not another cluster's daemon (tests/harness/multinode.sh runs its own munged,
    # slurmctld and slurmds, in other namespaces or with another config): only one of this
    # machine's namespaces, started without -f, can be the single-node cluster's.
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$own_net" ] || continue
    [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$own_mnt" ] || continue
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE '(^| )(-f|--socket)( |=)' && continue
    echo "$pid"
  done
  return 0
}
is_running() { [ -n "$(live_pgrep "$1")" ]; }

# stop_pidfile FILE PATTERN NAME: SIGTERM the recorded process, wait up to
# ~10 s, then SIGKILL. Only ever touches the PID we recorded ourselves.
stop_pidfile() {
  local f=$1 pat=$2 name=$3 pid i
  if ! pid=$(pidfile_alive "$f" "$pat"); then
    rm -f "$f"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    pid_matches "$pid" "$pat" || break
    sleep 0.1
  done
  if pid_matches "$pid" "$pat"; then
    log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
      pid_matches "$pid" "$pat" || break
      sleep 0.1
    done
  fi
  pid_matches "$pid" "$pat" && die "$name (pid $pid) still alive after SIGKILL"
  rm -f "$f"
  log "stopped $name (pid $pid)"
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds or time runs out.
wait_for() {
  local secs=$1 deadline
  shift
  deadline=$(( $(now_ms) + secs * 1000 ))
  while :; do
    "$@" && return 0
    (( $(now_ms) >= deadline )) && return 1
    sleep 0.2
  done
}

# The test users of both clusters (tests/harness/cluster.sh, multinode.sh): alice (in
# group ml) and bob (in group analysts), created if missing.
TEST_USERS=(alice bob)
ensure_users() {
  local u
  for u in "${TEST_USERS[@]}"; do
    id -u "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"
  done
  getent group ml >/dev/null || groupadd ml
  getent group analysts >/dev/null || groupadd analysts
  id -nG alice | tr ' ' '\n' | grep -qx ml || usermod -aG ml alice
  id -nG bob | tr ' ' '\n' | grep -qx analysts || usermod -aG analysts bob
}

# Names as a directory service gives them (SSSD with use_fully_qualified_names, winbind),
# as real NSS entries: users alice@example.com and EXAMPLE\carol (useradd --badname), and
# the group "domain users" with both as members. Debian 12's groupadd has no --badname, so
# the group's line is added to /etc/group and /etc/gshadow under their lock (lckpwdf, as
# groupadd takes it, through python's ctypes).
ensure_directory_names() {
  id -u 'alice@example.com' >/dev/null 2>&1 ||
    useradd --badname -m -d /home/ad-alice -s /bin/bash 'alice@example.com'
  id -u 'EXAMPLE\carol' >/dev/null 2>&1 ||
    useradd --badname -m -d /home/ad-carol -s /bin/bash 'EXAMPLE\carol'
  getent group 'domain users' >/dev/null && return 0
  python3 - <<'PY'
import ctypes, grp
shadow = ctypes.CDLL("libc.so.6")
if shadow.lckpwdf() != 0:
    raise SystemExit("cannot lock the group database")
try:
    gid = max(g.gr_gid for g in grp.getgrall() if g.gr_gid < 60000) + 1
    with open("/etc/group", "a") as f:
        f.write("domain users:x:%d:alice@example.com,EXAMPLE\\carol\n" % gid)
    with open("/etc/gshadow", "a") as f:
        f.write("domain users:!::alice@example.com,EXAMPLE\\carol\n")
finally:
    shadow.ulckpwdf()
PY
}

# sent_params PROXY PATH: what each AssumeRole call through the fault proxy's pass/PATH
# carried on the wire, one line per call: its parameters sorted, "Key=value" apart by
# spaces, without RoleArn and DurationSeconds.
sent_params() {
  "$VENV/bin/python3" -c '
import json, sys, urllib.request
calls = json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))["paths"].get("pass/" + sys.argv[2], {}).get("params", [])
for c in calls:
    print(" ".join("%s=%s" % kv for kv in sorted(c.items()) if not kv[0].startswith(("RoleArn", "Duration"))))' "$1" "$2"
}

# http_answers URL: something answers an HTTP GET of URL; any status counts (moto and the
# fault proxy both answer GETs). The venv's python: curl is not among deps.sh's packages.
http_answers() {
  timeout 5 "$VENV/bin/python3" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=3)
except urllib.error.HTTPError:
    pass
EOF
}

# node_problems SHOW: what makes a node unhealthy in its `scontrol show node -o` line SHOW,
# one item per line: a State with DRAIN, DOWN, FAIL or NOT_RESPONDING, and any Reason=.
# Prints nothing for a healthy node.
node_problems() {
  local st
  st=$(grep -o ' State=[^ ]*' <<<"$1" | head -n1)
  st=${st# }
  if [[ $st =~ DRAIN|DOWN|FAIL|NOT_RESPONDING ]]; then echo "$st"; fi
  if grep -q ' Reason=' <<<"$1"; then grep -o 'Reason=.*' <<<"$1"; fi
  return 0
}

require_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# slurm_job_wait JOBID [SECONDS]: wait until the job has ended and its epilog is done,
# print its final state, succeed only for COMPLETED. Polls every 0.2 s: `sbatch --wait`
# polls at growing intervals and returned ~8 s after a 0.1 s job had finished.
slurm_job_wait() {
  local id=$1 secs=${2:-60} deadline st
  deadline=$(( $(now_ms) + secs * 1000 ))
  while :; do
    st=$(sl scontrol show job -o "$id" 2>/dev/null | grep -o 'JobState=[^ ]*' | cut -d= -f2) || st=
    case $st in
      PENDING | RUNNING | CONFIGURING | COMPLETING | SUSPENDED | REQUEUED | RESIZING | '') ;;
      *)
        # Terminal state: COMPLETING (epilog still running) is already excluded above.
        echo "$st"
        [ "$st" = COMPLETED ]
        return
        ;;
    esac
    if (( $(now_ms) >= deadline )); then
      echo "${st:-UNKNOWN}"
      log "job $id not finished after ${secs}s (state ${st:-unknown})"
      return 1
    fi
    sleep 0.2
  done
}

# ------------------------------------------------------------------ the suites' checks

T_PASS=0
T_FAIL=0
T_NAME=${0##*/}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${AWS_ROLE_BIN_DIR:-/usr/libexec/aws-role}

ok() { T_PASS=$((T_PASS + 1)); printf 'ok - %s\n' "$*"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); printf 'not ok - %s\n' "$*"; }

# check "what is proved" CMD...: passes when CMD succeeds.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# check_eq "what" EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}

# check_contains "what" NEEDLE HAYSTACK
check_contains() {
  if [[ $3 == *"$2"* ]]; then ok "$1"; else not_ok "$1 ('$2' not in: ${3:0:400})"; fi
}

# check_not_contains "what" NEEDLE HAYSTACK
check_not_contains() {
  if [[ $3 != *"$2"* ]]; then ok "$1"; else not_ok "$1 ('$2' found)"; fi
}

# node_credentials FILE [SECRET]: the node's own test keys, root-only, as the map's
# credentials_file (never in any environment).
node_credentials() {
  install -m 0600 /dev/null "$1"
  printf '[default]\naws_access_key_id = AKIDNODE000000000000\naws_secret_access_key = %s\n' \
    "${2:-nodesecret}" >"$1"
}

# map_head ENDPOINT TIMEOUT MAX_ATTEMPTS [MORE_STS_LINES] [CREDENTIALS_FILE]: the [sts] and
# [node] sections the integration suites' maps start with: node credentials in
# $WORK/node-credentials, jobs under $BASE, the credential helper from $BIN. The caller
# appends its roles (and any other section).
map_head() {
  cat <<TOML
[sts]
region = "us-east-1"
endpoint = "$1"
credentials_file = "${5:-$WORK/node-credentials}"
# Nothing listens here: --check-node probes this, never the real 169.254.169.254.
imds_endpoint = "http://127.0.0.1:9"
timeout = "$2"
max_attempts = $3
${4:-}
[node]
base_dir = "$BASE"
credential_helper = "$BIN/aws-role-credentials"
TOML
}

finish() {
  printf '%s: %d passed, %d failed\n' "$T_NAME" "$T_PASS" "$T_FAIL"
  printf '%s %s\n' "$T_PASS" "$T_FAIL" >>"${AWS_ROLE_TEST_TALLY:-/dev/null}"
  [ "$T_FAIL" = 0 ]
}

# mode_owner PATH: "<octal mode> <user>:<group>"
mode_owner() { stat -c '%a %U:%G' "$1" 2>&1; }
# job_file PATH: mode, owner and the named-user ACL entries of a job's file, e.g.
# "640 root:root user:alice:r--": root's, and readable (not writable) by the job's user.
job_file() {
  printf '%s %s' "$(stat -c '%a %U:%G' "$1" 2>&1)" \
    "$(getfacl -cp "$1" 2>/dev/null | grep '^user:[^:]' | tr '\n' ' ' | sed 's/ $//')"
}
