#!/usr/bin/env bash
# Single-node Slurm test cluster (munged + slurmctld + slurmd on this machine) for the
# aws-role test suite. Runs as root on a machine without systemd, after deps.sh.
#
#   cluster.sh up              write config, create users, start daemons, wait until idle
#   cluster.sh down            cancel test jobs, stop the daemons that `up` started
#   cluster.sh status          daemons + sinfo/squeue
#   cluster.sh restart-slurmd  needed after plugstack changes (slurmd decides whether to run
#                              SPANK job_prolog/job_epilog from the stack it loaded at start)
#   cluster.sh reconfigure     scontrol reconfigure (after editing aws-role-test.conf)
#   cluster.sh assert-healthy  fail if the node is down/drained/failing or has a Reason
#   cluster.sh wait-idle [S]   wait (bounded) until alice/bob have no jobs left
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"

SLURM_ETC=/etc/slurm
SLURM_CONF=$SLURM_ETC/slurm.conf
# Test scripts put their Prolog=/Epilog=/TaskProlog= lines here, so slurm.conf itself
# can be rewritten by `up` without losing them.
EXTRA_CONF=$SLURM_ETC/aws-role-test.conf
PLUGSTACK=$SLURM_ETC/plugstack.conf
PLUGSTACK_D=$SLURM_ETC/plugstack.conf.d
SLURM_LOG=/var/log/slurm
SLURM_STATE=/var/lib/slurm

UP_TIMEOUT=${AWS_ROLE_TEST_UP_TIMEOUT:-30}
IDLE_TIMEOUT=${AWS_ROLE_TEST_IDLE_TIMEOUT:-120}

MUNGED_PIDF=$RUN_DIR/munged.pid
CTLD_PIDF=$RUN_DIR/slurmctld.pid
SLURMD_PIDF=$RUN_DIR/slurmd.pid
# Substrings of /proc/PID/cmdline that identify our processes.
MUNGED_PAT=/usr/sbin/munged
CTLD_PAT="/usr/sbin/slurmctld -D"
SLURMD_PAT="/usr/sbin/slurmd -D"

# slurmd refuses to start unless NodeName matches the short hostname.
NODE=$(hostname -s)

# ---------------------------------------------------------------- node state

# sinfo -N prints the node once per partition; one line is enough.
node_state() { sl sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1; }
node_show() { sl scontrol show node -o "$NODE" 2>/dev/null; }
ctld_up() { sl scontrol ping 2>/dev/null | grep -q 'is UP'; }

# wait_ready RESUME: wait until the node responds and accepts work. What it may resume:
#   all  - slurmctld was just started, so DOWN/DRAIN is state saved by an earlier run;
#   down - slurmd was just (re)started: DOWN/UNKNOWN can be an artifact of that, but a
#          DRAIN was set by something a test did and must stay visible;
#   none - daemons were already up: any bad state is an error.
# Hiding a drain that a test caused would defeat assert-healthy.
wait_ready() {
  local resume=$1 deadline st last_resume=0
  deadline=$(( $(now_ms) + UP_TIMEOUT * 1000 ))
  while :; do
    st=$(node_state || true)
    case $st in
      idle | mixed | allocated | completing) return 0 ;;
    esac
    # '*' = slurmd has not (re)registered yet, and plain 'unknown' (seen for a few
    # seconds after a slurmctld restart) rejects RESUME: both settle by themselves.
    if [[ $st != *'*' && $st =~ down|drain|fail ]]; then
      if [ "$resume" = none ] || { [ "$resume" = down ] && [[ $st =~ drain|fail ]]; }; then
        log "node $NODE is '$st'; not resuming it (that would hide what caused it)"
        node_show >&2 || true
        log "run 'cluster.sh down; cluster.sh up' to reset it"
        return 1
      fi
      if (( $(now_ms) - last_resume > 2000 )); then
        log "node $NODE is '$st' after (re)start; resuming it ($(node_show | grep -o 'Reason=.*' || echo 'no reason'))"
        sl scontrol update NodeName="$NODE" State=RESUME >&2 || true
        last_resume=$(now_ms)
      fi
    fi
    if (( $(now_ms) >= deadline )); then
      log "node $NODE not ready after ${UP_TIMEOUT}s (state '${st:-no answer}')"
      node_show >&2 || true
      tail -n 20 "$SLURM_LOG/slurmctld.log" "$SLURM_LOG/slurmd.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- setup

ensure_dirs() {
  install -d -m 0755 "$RUN_DIR" "$LOG_DIR" "$SLURM_ETC" "$PLUGSTACK_D"
  install -d -m 0755 -o slurm -g slurm "$SLURM_LOG" "$SLURM_STATE" \
    "$SLURM_STATE/slurmctld" "$SLURM_STATE/slurmd"
  # Not empty: every Slurm command warns on stderr about an empty Include file.
  if [ ! -s "$EXTRA_CONF" ]; then
    printf '# Test-specific slurm.conf lines (Prolog=, Epilog=, TaskProlog=, ...).\n' >"$EXTRA_CONF"
    chmod 0644 "$EXTRA_CONF"
  fi
  local want="include $PLUGSTACK_D/*.conf"
  if ! grep -qxF "$want" "$PLUGSTACK" 2>/dev/null; then
    printf '%s\n' "$want" >>"$PLUGSTACK"
    chmod 0644 "$PLUGSTACK"
  fi
}

# hw_field NAME: one field of `slurmd -C`, so the node definition matches this machine
# (a RealMemory above the real one would drain the node as "Low RealMemory").
HW_LINE=
hw_field() {
  local v
  v=$(tr ' ' '\n' <<<"$HW_LINE" | sed -n "s/^$1=//p")
  [ -n "$v" ] || die "slurmd -C printed no $1: $HW_LINE"
  printf '%s' "$v"
}

render_conf() {
  cat <<EOF
# Written by tests/harness/cluster.sh; rewritten by every 'cluster.sh up'.
# Put test-specific lines (Prolog=, Epilog=, TaskProlog=, ...) into $EXTRA_CONF.
ClusterName=lab
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$SLURM_LOG/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
PrologFlags=Alloc
# Test jobs mostly sleep: advertise more CPUs than the machine has (64,
# AWS_ROLE_TEST_CPUS) so that concurrent test jobs, several users' jobs on one node and
# tests/e2e/load.sh's 500-task array can run side by side.
SlurmdParameters=config_overrides
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=$SLURM_STATE/slurmd
StateSaveLocation=$SLURM_STATE/slurmctld
SlurmctldLogFile=$SLURM_LOG/slurmctld.log
SlurmdLogFile=$SLURM_LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 $HW_FIELDS State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
Include $EXTRA_CONF
EOF
}

# write_conf: returns 0 if slurm.conf changed (running daemons must then restart).
write_conf() {
  local new f
  HW_LINE=$(slurmd -C | head -n1)
  HW_FIELDS=
  local cpus=${AWS_ROLE_TEST_CPUS:-64}
  HW_FIELDS="CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1"
  HW_FIELDS+=" RealMemory=$(hw_field RealMemory)"
  new=$(render_conf)
  if [ -f "$SLURM_CONF" ] && [ "$(cat "$SLURM_CONF")" = "$new" ]; then
    return 1
  fi
  printf '%s\n' "$new" >"$SLURM_CONF.tmp"
  chmod 0644 "$SLURM_CONF.tmp"
  mv -f "$SLURM_CONF.tmp" "$SLURM_CONF"
  return 0
}

# ---------------------------------------------------------------- daemons

munge_works() { timeout 5 munge -n </dev/null 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

# start_munged: prints "started" if it started munged.
start_munged() {
  pidfile_alive "$MUNGED_PIDF" "$MUNGED_PAT" >/dev/null && return 0
  if is_running munged; then
    log "munged already running but not started by cluster.sh; using it"
    return 0
  fi
  install -d -m 0755 -o munge -g munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
  fi
  # Foreground under setsid (like the slurm daemons) so the PID we record is exactly
  # munged's, with no daemonize race; setpriv execs, runuser would stay as a parent.
  (cd / && exec setsid setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged -F </dev/null >>"$LOG_DIR/munged.stdout" 2>&1) &
  echo $! >"$MUNGED_PIDF"
  wait_for 5 munge_works || { tail -n 20 /var/log/munge/munged.log "$LOG_DIR/munged.stdout" >&2 || true; die "munged does not work"; }
  echo started
}

# start_daemon NAME PIDFILE PATTERN SYSTEM_PIDFILE
start_daemon() {
  local name=$1 pidf=$2 pat=$3 syspidf=$4 pid
  pidfile_alive "$pidf" "$pat" >/dev/null && return 0
  if is_running "$name"; then
    log "$name already running but not started by cluster.sh; using it"
    return 0
  fi
  rm -f "$syspidf" "$pidf"
  # setsid: own session so the daemon survives the caller's terminal/CI step; cd / so
  # it does not pin the caller's cwd. setsid execs (we are no group leader), so $! is
  # the daemon's own PID.
  (cd / && exec setsid "/usr/sbin/$name" -D </dev/null >>"$SLURM_LOG/$name.stdout" 2>&1) &
  pid=$!
  echo "$pid" >"$pidf"
  sleep 0.1
  if ! pid_matches "$pid" "$pat"; then
    tail -n 20 "$SLURM_LOG/$name.stdout" >&2 || true
    die "$name exited right after start"
  fi
  echo started
}

# A daemon that dies on a config error should fail `up` at once, not after UP_TIMEOUT.
ours_died() { [ -s "$1" ] && ! pidfile_alive "$1" "$2" >/dev/null; }
ctld_up_or_died() { ctld_up || ours_died "$CTLD_PIDF" "$CTLD_PAT"; }

start_slurmctld() {
  local r
  r=$(start_daemon slurmctld "$CTLD_PIDF" "$CTLD_PAT" /run/slurmctld.pid)
  wait_for "$UP_TIMEOUT" ctld_up_or_died || true
  if ! ctld_up; then
    tail -n 20 "$SLURM_LOG/slurmctld.log" "$SLURM_LOG/slurmctld.stdout" >&2 || true
    die "slurmctld does not answer 'scontrol ping'"
  fi
  [ -z "$r" ] || echo "$r"
}

slurmd_start_time() { node_show | grep -o 'SlurmdStartTime=[^ ]*'; }

# slurmctld records the start time that slurmd sends when it registers, so a new value
# proves the new slurmd has registered (its log line does not: it precedes the RPC).
slurmd_registered_since() {
  local cur
  cur=$(slurmd_start_time) || return 1
  [ "$cur" != "$1" ] && [ "$cur" != SlurmdStartTime=None ]
}
slurmd_registered_or_died() { slurmd_registered_since "$1" || ours_died "$SLURMD_PIDF" "$SLURMD_PAT"; }

start_slurmd() {
  local r old
  old=$(slurmd_start_time || true)
  # The value has 1 s resolution: make sure a restart cannot reuse the old second.
  [ "${old#SlurmdStartTime=}" != "$(date +%FT%T)" ] || sleep 1
  r=$(start_daemon slurmd "$SLURMD_PIDF" "$SLURMD_PAT" /run/slurmd.pid)
  if [ -n "$r" ]; then
    wait_for "$UP_TIMEOUT" slurmd_registered_or_died "$old" || true
    if ! slurmd_registered_since "$old"; then
      tail -n 20 "$SLURM_LOG/slurmd.log" "$SLURM_LOG/slurmd.stdout" >&2 || true
      die "slurmd did not register with slurmctld"
    fi
    echo "$r"
  fi
}

stop_slurmd() { stop_pidfile "$SLURMD_PIDF" "$SLURMD_PAT" slurmd; }
stop_slurmctld() { stop_pidfile "$CTLD_PIDF" "$CTLD_PAT" slurmctld; }

# The daemons write /run/slurm{ctld,d}.pid even with -D. A stale one breaks e.g.
# `apt-get purge` (slurmctld.prerm runs scancel when the file exists).
remove_stale_sys_pidfiles() {
  is_running slurmctld || rm -f /run/slurmctld.pid
  is_running slurmd || rm -f /run/slurmd.pid
}

# ---------------------------------------------------------------- commands

cmd_up() {
  local t0 started=() changed=0 r
  t0=$(now_ms)
  require_root
  command -v slurmctld >/dev/null || die "slurm not installed; run tests/harness/deps.sh"
  ensure_users
  ensure_dirs
  write_conf && changed=1

  # (separate assignments: a die inside $(...) must abort us under set -e)
  r=$(start_munged)
  if [ -n "$r" ]; then started+=(munged); fi
  munge_works || die "munge -n | unmunge fails"

  if [ "$changed" = 1 ] && pidfile_alive "$CTLD_PIDF" "$CTLD_PAT" >/dev/null; then
    log "slurm.conf changed; restarting slurmctld and slurmd"
    stop_slurmd
    stop_slurmctld
  elif [ "$changed" = 1 ] && ctld_up; then
    log "slurm.conf changed and slurmctld is not ours; trying scontrol reconfigure"
    sl scontrol reconfigure || true
  fi
  r=$(start_slurmctld)
  if [ -n "$r" ]; then started+=(slurmctld); fi
  r=$(start_slurmd)
  if [ -n "$r" ]; then started+=(slurmd); fi

  case " ${started[*]} " in
    *" slurmctld "*) wait_ready all ;;
    *" slurmd "*) wait_ready down ;;
    *) wait_ready none ;;
  esac
  echo "cluster up: node $NODE $(node_state) in $(elapsed_s "$t0") (started: ${started[*]:-nothing, already up})"
}

cmd_down() {
  local t0 u
  t0=$(now_ms)
  require_root
  if ctld_up; then
    for u in "${TEST_USERS[@]}"; do
      id -u "$u" >/dev/null 2>&1 && { sl scancel -u "$u" || true; }
    done
    # Give the Epilogs a moment to run, so no job is left half-cleaned in saved state.
    wait_for 10 no_test_jobs || log "jobs still present after scancel; stopping anyway"
  fi
  stop_slurmd
  stop_slurmctld
  stop_pidfile "$MUNGED_PIDF" "$MUNGED_PAT" munged
  remove_stale_sys_pidfiles
  echo "cluster down in $(elapsed_s "$t0")"
}

cmd_restart_slurmd() {
  local t0
  t0=$(now_ms)
  require_root
  if ! pidfile_alive "$SLURMD_PIDF" "$SLURMD_PAT" >/dev/null && is_running slurmd; then
    die "the running slurmd was not started by cluster.sh; not touching it"
  fi
  ctld_up || die "slurmctld not answering; run 'cluster.sh up'"
  stop_slurmd
  rm -f /run/slurmd.pid
  start_slurmd >/dev/null
  wait_ready down
  echo "slurmd restarted: node $NODE $(node_state) in $(elapsed_s "$t0")"
}

cmd_reconfigure() {
  local t0
  t0=$(now_ms)
  sl scontrol reconfigure
  wait_ready none
  echo "reconfigured: node $NODE $(node_state) in $(elapsed_s "$t0")"
}

daemon_status() {
  local name=$1 pidf=$2 pat=$3 pid
  if pid=$(pidfile_alive "$pidf" "$pat"); then
    echo "$name: running, pid $pid"
  elif pid=$(live_pgrep "$name" | head -n1) && [ -n "$pid" ]; then
    echo "$name: running, pid $pid (not started by cluster.sh)"
  else
    echo "$name: stopped"
    return 1
  fi
}

cmd_status() {
  local rc=0
  daemon_status munged "$MUNGED_PIDF" "$MUNGED_PAT" || rc=3
  daemon_status slurmctld "$CTLD_PIDF" "$CTLD_PAT" || rc=3
  daemon_status slurmd "$SLURMD_PIDF" "$SLURMD_PAT" || rc=3
  sl sinfo || rc=3
  sl squeue || rc=3
  return $rc
}

cmd_assert_healthy() {
  local show problems bad=()
  pidfile_alive "$SLURMD_PIDF" "$SLURMD_PAT" >/dev/null || is_running slurmd || bad+=("slurmd not running")
  pidfile_alive "$CTLD_PIDF" "$CTLD_PAT" >/dev/null || is_running slurmctld || bad+=("slurmctld not running")
  if ! show=$(node_show) || [ -z "$show" ]; then
    bad+=("scontrol show node $NODE failed")
  else
    mapfile -t problems < <(node_problems "$show")
    bad+=("${problems[@]}")
  fi
  if [ ${#bad[@]} -gt 0 ]; then
    log "node $NODE unhealthy: ${bad[*]}"
    sl scontrol show node "$NODE" >&2 || true
    return 1
  fi
  echo "node $NODE healthy: $(grep -o 'State=[^ ]*' <<<"$show" | head -n1)"
}

no_test_jobs() {
  local out
  out=$(sl squeue -h -u "$(IFS=,; echo "${TEST_USERS[*]}")" -o '%i %T') || return 1
  [ -z "$out" ] || return 1
  # Also wait for the node's COMPLETING flag to clear (an Epilog still running, e.g. of a
  # job that is not alice's or bob's), so the next test starts on a quiet node.
  ! node_show | grep -q ' State=[^ ]*COMPLETING'
}

cmd_wait_idle() {
  local secs=${1:-$IDLE_TIMEOUT} t0
  t0=$(now_ms)
  if ! wait_for "$secs" no_test_jobs; then
    log "jobs of ${TEST_USERS[*]} still present (or slurmctld unreachable) after ${secs}s:"
    sl squeue -u "$(IFS=,; echo "${TEST_USERS[*]}")" >&2 || true
    return 1
  fi
  echo "idle after $(elapsed_s "$t0")"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart-slurmd) cmd_restart_slurmd ;;
  reconfigure) cmd_reconfigure ;;
  assert-healthy) cmd_assert_healthy ;;
  wait-idle) cmd_wait_idle "${2:-}" ;;
  *)
    echo "usage: $0 up|down|status|restart-slurmd|reconfigure|assert-healthy|wait-idle [SECONDS]" >&2
    exit 2
    ;;
esac
