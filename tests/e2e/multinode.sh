#!/usr/bin/env bash
# End to end on a multi-node Slurm (tests/harness/multinode.sh: every node a slurmd in its
# own network, UTS and mount namespace, with its own /run/aws-role). Brings its cluster up
# and down itself; it does not use or touch the single-node cluster.
#
# Proves: every task of a job, on every node, gets the job's role under one session name,
# while each node assumed the role itself and keeps its files to itself; arrays of
# multi-node jobs; one node failing to reach STS fails the job, not the nodes; nothing
# stays behind; and what PrologFlags=Alloc changes for batch-only jobs.
#
# With AWS_ROLE_MN_SLURM=24.11 the same suite runs on Slurm 24.11 from a Debian trixie root
# (tests/harness/trixie.sh); every Slurm command then goes through `multinode.sh client`.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

H=$REPO/tests/harness
MNH=$H/multinode.sh
OUT=/home/alice/aws-role-mn
REL=$OUT/release # (jobs of a 24.11 cluster see /home, not the host's /tmp)
T0=$(now_ms)

# One multi-node suite at a time on this machine: the cluster's names and ports are fixed.
exec 9>/run/aws-role-mn.lock
if ! flock -w 900 9; then
  not_ok "another multi-node suite holds /run/aws-role-mn.lock"
  finish
  exit 1
fi

DOWN_DONE=0
teardown() {
  [ "$DOWN_DONE" = 1 ] && return 0
  DOWN_DONE=1
  bash "$MNH" down
}
trap teardown EXIT
trap 'exit 143' INT TERM # (so that the EXIT trap takes the cluster down)

bash "$MNH" down >/dev/null 2>&1 # whatever an aborted run left
if ! up=$(bash "$MNH" up 2); then
  not_ok "the 2-node cluster comes up"
  finish
  exit 1
fi
echo "# $up"
eval "$(bash "$MNH" env)"
ok "the 2-node cluster comes up (Slurm $MN_SLURM, PrologFlags=Alloc)"
# Every Slurm client call below goes to this cluster (lib.sh's slurm_job_wait uses sl too).
export SLURM_CONF=$MN_CONF
sl() { timeout "$SLURM_CLIENT_TIMEOUT" bash "$MNH" client "$@"; }
# as_alice 'COMMAND': a login shell of alice's, as a client of this cluster.
as_alice() { bash "$MNH" client runuser -l alice -c "SLURM_CONF=$MN_CONF $1"; }
NODES=(n1 n2)
declare -A PID
node_pids() { local n; for n in "${NODES[@]}"; do PID[$n]=$(bash "$MNH" pid "$n"); done; }
node_pids

# on_node NODE CMD...: CMD in NODE's mount namespace (its /run/aws-role) and root directory
# (-r: the trixie root with 24.11), as root.
on_node() { local n=$1; shift; nsenter -t "${PID[$n]}" -m -r -- "$@"; }
healthy() { bash "$MNH" assert-healthy >/dev/null; }
has_dir() { on_node "$1" test -d "$MN_NODE_BASE/$2"; }
node_empty() { [ -z "$(on_node "$1" ls -A "$MN_NODE_BASE" 2>&1)" ]; }
check_nodes_empty() {
  local n
  for n in "${NODES[@]}"; do
    check "$1: $n's /run/aws-role is empty" node_empty "$n"
  done
}

rm -rf "$OUT"
runuser -u alice -- mkdir -p "$OUT"
# What every task prints: one line, parsed per node below.
runuser -u alice -- tee "$OUT/probe.sh" >/dev/null <<EOF
#!/bin/bash
cli=\$($MN_AWS --endpoint-url $MN_STS sts get-caller-identity --query Arn --output text 2>&1 | tr '\n' ' ')
boto3=\$($MN_PYTHON -c 'import boto3,sys; print(boto3.client("sts", endpoint_url=sys.argv[1]).get_caller_identity()["Arn"])' $MN_STS 2>&1 | tail -n1)
echo "TASK host=\$(hostname) step=\$SLURM_STEP_ID rank=\$SLURM_PROCID sess=\${AWS_ROLE_SESSION_NAME:-unset} cli=\${cli% } boto3=\$boto3"
EOF
# What a task gets from its node's credentials endpoint (each node runs its own): the
# access key served (its SHA-256: job output holds no key), as tools without
# credential_process and containers see it.
runuser -u alice -- tee "$OUT/endpoint-probe.sh" >/dev/null <<EOF
#!/bin/bash
akid=\$($MN_PYTHON -c 'import hashlib, json, os, urllib.request as u; r = u.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"], headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}); print(hashlib.sha256(json.load(u.urlopen(r, timeout=5))["AccessKeyId"].encode()).hexdigest())' 2>&1 | tail -n1)
echo "ENDPOINT host=\$(hostname) akid=\$akid"
EOF

# submit SBATCH-ARGS... <<script : prints the job id (alice, clean login environment).
WORK_ERR=$(mktemp)
submit() {
  local script
  script=$(cat)
  as_alice "$(printf '%q ' sbatch --parsable -o "$OUT/%j.out" "$@") <<'JOB'
#!/bin/bash
$script
JOB" 2>"$WORK_ERR" | tail -n1
}
job_out() { cat "$OUT/$1.out" 2>/dev/null; }
state_of() { sl scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[^ ]*' | cut -d= -f2; }
# wait_file FILE: the job touched it (up to 30 s).
wait_file() { wait_for 30 test -e "$1"; }
# task_line OUTPUT HOST [STEP]: the probe line of the task on HOST.
task_line() { grep "^TASK host=$2 step=${3:-0} " <<<"$1" | head -n1; }
# wait a step to finish: the release file is read by the job.
release() { touch "$REL.$1"; }
# shellcheck disable=SC2016  # expanded in the job, not here
WAIT_REL='for i in $(seq 300); do [ -e '"$REL"'.$SLURM_JOB_ID${1:-} ] && break; sleep 0.2; done'
# field JSON KEY: one top-level string field of a JSON document.
field() { "$VENV/bin/python3" -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null; }
# state_core JSON: the state record without the per-node fields (issue and expiry times).
state_core() {
  "$VENV/bin/python3" -c 'import json,sys; d=json.loads(sys.argv[1]); [d.pop(k, None) for k in ("issued", "expiration")]; print(json.dumps(d, sort_keys=True))' "$1" 2>/dev/null
}

# --- sbatch -N2 with srun tasks on both nodes ---------------------------------------------
J=$(submit -N2 --ntasks-per-node=2 --aws-role=demo <<JOB
srun -N2 --ntasks-per-node=1 bash $OUT/probe.sh
srun -N2 --ntasks-per-node=2 bash $OUT/probe.sh
srun -N2 -n2 bash $OUT/endpoint-probe.sh
touch $OUT/\$SLURM_JOB_ID.ready
$WAIT_REL
JOB
)
check "sbatch -N2 --aws-role=demo accepted (job $J)" test -n "$J"
secrets=()
if wait_file "$OUT/$J.ready"; then
  for n in "${NODES[@]}"; do
    check "while job $J runs, $n has /run/aws-role/$J in its own namespace" has_dir "$n" "$J"
  done
  check "... and the host's /run/aws-role has no such directory" test ! -e "/run/aws-role/$J"
  c1=$(on_node n1 cat "$MN_NODE_BASE/$J/credentials.json")
  c2=$(on_node n2 cat "$MN_NODE_BASE/$J/credentials.json")
  k1=$(field "$c1" AccessKeyId) k2=$(field "$c2" AccessKeyId)
  s1=$(field "$c1" SecretAccessKey) s2=$(field "$c2" SecretAccessKey)
  secrets=("$s1" "$s2" "$k1" "$k2")
  check "both nodes hold credentials" test -n "$k1" -a -n "$k2" -a -n "$s1" -a -n "$s2"
  check "each node assumed the role itself: different access keys" test "$k1" != "$k2"
  check "... and different secret keys" test "$s1" != "$s2"
  st1=$(on_node n1 cat "$MN_NODE_BASE/$J/state.json")
  st2=$(on_node n2 cat "$MN_NODE_BASE/$J/state.json")
  check_eq "both nodes' state records name session slurm-$J-0" "slurm-$J-0 slurm-$J-0" \
    "$(field "$st1" session_name) $(field "$st2" session_name)"
  check_eq "the state records differ only in issue and expiry times" "$(state_core "$st1")" "$(state_core "$st2")"
  check_eq "the AWS config files are identical on both nodes" \
    "$(on_node n1 cat "$MN_NODE_BASE/$J/config")" "$(on_node n2 cat "$MN_NODE_BASE/$J/config")"
  check "the files are root's 0640 (read-only for alice), on n2 too" \
    test "$(on_node n2 stat -c '%a %U' "$MN_NODE_BASE/$J/credentials.json" "$MN_NODE_BASE/$J/credentials" | sort -u)" = "640 root"
else
  not_ok "job $J did not reach its checkpoint (state $(state_of "$J")): $(cat "$WORK_ERR")"
fi
release "$J"
st=$(slurm_job_wait "$J" 60)
check_eq "the job completed" COMPLETED "$st"
o=$(job_out "$J")
for n in "${NODES[@]}"; do
  l=$(task_line "$o" "$n")
  check_contains "srun task on $n: AWS_ROLE_SESSION_NAME=slurm-$J-0" "sess=slurm-$J-0 " "$l"
  check_contains "srun task on $n: AWS CLI is assumed-role/demo/slurm-$J-0" "cli=arn:aws:sts::123456789012:assumed-role/demo/slurm-$J-0 " "$l"
  check_contains "srun task on $n: boto3 is assumed-role/demo/slurm-$J-0" "boto3=arn:aws:sts::123456789012:assumed-role/demo/slurm-$J-0" "$l"
done
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
check_eq "n1's endpoint served its task n1's own access key" "akid=$(sha "${k1:-?}")" "$(grep "^ENDPOINT host=n1 " <<<"$o" | cut -d' ' -f3)"
check_eq "n2's endpoint served its task n2's own access key" "akid=$(sha "${k2:-?}")" "$(grep "^ENDPOINT host=n2 " <<<"$o" | cut -d' ' -f3)"
check_eq "all 4 tasks of a 2-per-node step got the role" 4 \
  "$(grep '^TASK .* step=1 ' <<<"$o" | grep -c "sess=slurm-$J-0 cli=arn:aws:sts::123456789012:assumed-role/demo/slurm-$J-0 boto3=arn:aws:sts::123456789012:assumed-role/demo/slurm-$J-0$")"
check_nodes_empty "after job $J"

# --- srun -N2 and salloc -N2 from the submit host -------------------------------------------
o=$(as_alice "timeout 60 srun -N2 --ntasks-per-node=1 --aws-role=demo bash $OUT/probe.sh" 2>&1)
S=$(sed -n 's/.*sess=slurm-\([0-9]*\)-0 .*/\1/p' <<<"$o" | head -n1)
for n in "${NODES[@]}"; do
  check_contains "srun -N2 (a job of its own) on $n: assumed-role/demo/slurm-${S:-?}-0" "assumed-role/demo/slurm-$S-0 boto3=arn:aws:sts::123456789012:assumed-role/demo/slurm-$S-0" "$(task_line "$o" "$n")"
done
o=$(as_alice "timeout 60 salloc -N2 --aws-role=demo srun --ntasks-per-node=1 bash $OUT/probe.sh" 2>&1)
S=$(sed -n 's/.*sess=slurm-\([0-9]*\)-0 .*/\1/p' <<<"$o" | head -n1)
for n in "${NODES[@]}"; do
  check_contains "salloc -N2 + srun on $n: assumed-role/demo/slurm-${S:-?}-0" "assumed-role/demo/slurm-$S-0 boto3=arn:aws:sts::123456789012:assumed-role/demo/slurm-$S-0" "$(task_line "$o" "$n")"
done
wait_for 10 node_empty n1 && wait_for 10 node_empty n2
check_nodes_empty "after the srun and salloc jobs"

# --- batch-only multi-node job (no step on n2): PrologFlags=Alloc provisions both nodes ----
B=$(submit -N2 --aws-role=demo --time=20 <<JOB
echo "BATCH on \$(hostname)"
touch $OUT/\$SLURM_JOB_ID.ready
$WAIT_REL
JOB
)
if wait_file "$OUT/$B.ready"; then
  check "Alloc, batch-only job $B: n1 (batch host) has its credentials" on_node n1 test -s "$MN_NODE_BASE/$B/credentials.json"
  check "Alloc, batch-only job $B: n2 (no step yet) has its credentials too" on_node n2 test -s "$MN_NODE_BASE/$B/credentials.json"
else
  not_ok "batch-only job $B did not start (state $(state_of "$B"))"
fi
release "$B"
check_eq "the batch-only job completed" COMPLETED "$(slurm_job_wait "$B" 60)"
# --time=20: each node sized the session from the job's end time (the plugin's
# slurm_load_job; on 24.11 that needs slurm_init first): 20 min + 5 min margin.
for n in "${NODES[@]}"; do
  # The session runs from the prolog's own clock: a second or two may have passed since
  # the job started (seen: 1499 on 24.11), never more than a few.
  check "--time=20 job $B: $n asked for a 1495-1500 s session (end time + margin)" \
    grep -qE "aws-role: job $B: aws-role-prolog: .*duration_s=(149[5-9]|1500)\$" "$MN_LOG/slurmd-$n.log"
  # ...and where that end time came from: 24.11 puts SLURM_JOB_END_TIME in the Prolog
  # environment (which wins); 22.05 has only the plugin's slurm_load_job (--end-time).
  case $MN_SLURM in
    22.05) src="plugin --end-time" ;;
    *) src="env SLURM_JOB_END_TIME" ;;
  esac
  check "--time=20 job $B: $n took the end time from $src (Slurm $MN_SLURM)" \
    grep -q "aws-role: job $B: aws-role-prolog: .*end_time_from=\"\?$src" "$MN_LOG/slurmd-$n.log"
done
check_nodes_empty "after batch-only job $B"

# --- an array of multi-node jobs ------------------------------------------------------------
A=$(submit -N2 --aws-role=demo --array=0-2 -o "$OUT/%A_%a.out" <<JOB
echo "ID=\$SLURM_JOB_ID TASK=\$SLURM_ARRAY_TASK_ID"
srun -N2 --ntasks-per-node=1 bash $OUT/probe.sh
JOB
)
check "sbatch --array=0-2 -N2 accepted (array $A)" test -n "$A"
array_done() { [ -z "$(sl squeue -h -o %i 2>/dev/null)" ]; }
wait_for 90 array_done || not_ok "array $A still queued or running after 90 s"
for t in 0 1 2; do
  o=$(cat "$OUT/${A}_$t.out" 2>/dev/null)
  id=$(sed -n 's/^ID=\([0-9]*\) .*/\1/p' <<<"$o")
  for n in "${NODES[@]}"; do
    l=$(task_line "$o" "$n")
    check_contains "array task $t (job ${id:-?}) on $n: session slurm-<its job id>-$t" "sess=slurm-$id-$t cli=arn:aws:sts::123456789012:assumed-role/demo/slurm-$id-$t boto3=arn:aws:sts::123456789012:assumed-role/demo/slurm-$id-$t" "$l"
  done
done
check_nodes_empty "after array $A"

# --- scancel of a running multi-node job ------------------------------------------------------
C=$(submit -N2 --aws-role=demo <<JOB
touch $OUT/\$SLURM_JOB_ID.ready
sleep 300
JOB
)
if wait_file "$OUT/$C.ready"; then
  check "scancel: job $C has credentials on both nodes" bash -c "nsenter -t ${PID[n1]} -m -r -- test -d $MN_NODE_BASE/$C && nsenter -t ${PID[n2]} -m -r -- test -d $MN_NODE_BASE/$C"
else
  not_ok "job $C did not start (state $(state_of "$C"))"
fi
sl scancel "$C"
check_eq "scancel: the job is CANCELLED" CANCELLED "$(slurm_job_wait "$C" 60)"
check_nodes_empty "after scancel of job $C"

# --- a heterogeneous job: each component is a job of its own to the node ----------------------
# Every node's prolog sees its component's job id (the leader's id + offset), so the session
# name is that of the component: the same role everywhere, but one session per component.
HJ=$(submit --aws-role=demo -N1 : -N1 <<JOB
echo "GROUP1=\$SLURM_JOB_ID_HET_GROUP_1"
srun --het-group=0,1 bash $OUT/probe.sh
JOB
)
HJ=${HJ%%+*}
# (slurm_job_wait reads one JobState; a het job has one per component)
het_done() { [ -z "$(sl squeue -h -j "$HJ" -o %i 2>/dev/null)" ]; }
wait_for 60 het_done || not_ok "het job $HJ still queued or running after 60 s"
st=$(sl scontrol show job -o "$HJ" 2>/dev/null | grep -o 'JobState=[^ ]*' | cut -d= -f2 | sort -u | tr '\n' ' ')
st=${st% }
check_eq "het job $HJ (-N1 : -N1) completed" COMPLETED "$st"
o=$(job_out "$HJ")
G1=$(sed -n 's/^GROUP1=//p' <<<"$o")
check_contains "het job, component 0's task: assumed-role/demo/slurm-$HJ-0" "sess=slurm-$HJ-0 cli=arn:aws:sts::123456789012:assumed-role/demo/slurm-$HJ-0 " "$(grep '^TASK .* rank=0 ' <<<"$o")"
check_contains "het job, component 1's task: the role too, as slurm-<component 1's id ${G1:-?}>-0" "sess=slurm-$G1-0 cli=arn:aws:sts::123456789012:assumed-role/demo/slurm-$G1-0 " "$(grep '^TASK .* rank=1 ' <<<"$o")"
check_nodes_empty "after het job $HJ"

# --- one node cannot reach STS ------------------------------------------------------------------
# A route inside ONE node's network namespace: that node alone gets "unreachable" for the
# STS emulator's address; slurmctld (another address) stays reachable.
cut_sts() { ip -n "$MN_PREFIX-$1" route add unreachable "$MN_STS_IP/32"; }
mend_sts() { ip -n "$MN_PREFIX-$1" route del unreachable "$MN_STS_IP/32" 2>/dev/null || true; }
for bad in n2 n1; do
  cut_sts "$bad"
  F=$(submit -N2 --aws-role=demo <<JOB
echo "BATCH RAN on \$(hostname)"
srun -N2 --ntasks-per-node=1 bash $OUT/probe.sh
JOB
  )
  st=$(slurm_job_wait "$F" 60)
  mend_sts "$bad"
  o=$(job_out "$F")
  check_eq "$bad cannot reach STS: job $F FAILS" FAILED "$st"
  check_contains "... and its output says why, from $bad" "slurmstepd-$bad: error: aws-role: could not assume role demo" "$o"
  check_not_contains "... no task ran on $bad" "TASK host=$bad " "$o"
  if [ "$bad" = n1 ]; then
    check_not_contains "... the batch script never ran (n1 is the batch host)" "BATCH RAN" "$o"
  else
    check_contains "... the batch script ran on n1, whose credentials were fine" "BATCH RAN on n1" "$o"
  fi
  check "... $bad's slurmd log tells the administrator" grep -q "aws-role: job $F: aws-role-prolog: .*job will fail: could not assume role demo" "$MN_LOG/slurmd-$bad.log"
  check "... no node drains" healthy
  check_nodes_empty "after failed job $F"
done

# --- no secret in any log or output --------------------------------------------------------------
# The job's secret keys (and, for good measure, its access key ids and the nodes' own
# secret) appear in no log of the cluster and in no job output.
if [ ${#secrets[@]} = 4 ] && [ -n "${secrets[0]}" ] && [ -n "${secrets[1]}" ]; then
  for s in "${secrets[@]}" "$(sed -n 's/^aws_secret_access_key = //p' "$MN_ROOT/etc/node-credentials")"; do
    check "key ${s:0:4}... is in no slurmd/slurmctld/munged/STS log" bash -c "! grep -rqF -- '$s' '$MN_LOG'"
    check "key ${s:0:4}... is in no job output" bash -c "! grep -rqF -- '$s' '$OUT'"
  done
else
  not_ok "no secret keys were read from job $J to look for"
fi

# --- without PrologFlags=Alloc ---------------------------------------------------------------------
if up=$(AWS_ROLE_MN_ALLOC=0 bash "$MNH" up 2 2>/dev/null); then
  echo "# $up"
  ok "the cluster restarts without PrologFlags=Alloc"
else
  not_ok "the cluster restarts without PrologFlags=Alloc"
fi
node_pids
check_contains "slurmctld runs without Alloc" "(null)" "$(sl scontrol show config 2>/dev/null | grep '^PrologFlags')"
W=$(submit -N2 --aws-role=demo <<JOB
echo "BATCH on \$(hostname)"
touch $OUT/\$SLURM_JOB_ID.ready1
set -- .1; $WAIT_REL
srun -N2 --ntasks-per-node=1 bash $OUT/probe.sh
touch $OUT/\$SLURM_JOB_ID.ready2
set -- .2; $WAIT_REL
JOB
)
if wait_file "$OUT/$W.ready1"; then
  check "no Alloc, batch-only phase of job $W: n1 (batch host) has credentials" on_node n1 test -s "$MN_NODE_BASE/$W/credentials.json"
  check "no Alloc, batch-only phase: n2 has NOTHING yet (its prolog has not run)" bash -c "! nsenter -t ${PID[n2]} -m -r -- test -e $MN_NODE_BASE/$W"
  check_eq "no Alloc: n2's slurmd ran no aws-role-prolog for the job yet" 0 "$(grep -c "aws-role: job $W: aws-role-prolog" "$MN_LOG/slurmd-n2.log")"
else
  not_ok "no-Alloc job $W did not start (state $(state_of "$W"))"
fi
release "$W.1"
if wait_file "$OUT/$W.ready2"; then
  check "no Alloc, after a step reached n2: n2 has credentials" on_node n2 test -s "$MN_NODE_BASE/$W/credentials.json"
  o=$(job_out "$W")
  for n in "${NODES[@]}"; do
    check_contains "no Alloc, srun task on $n: assumed-role/demo/slurm-$W-0" "sess=slurm-$W-0 cli=arn:aws:sts::123456789012:assumed-role/demo/slurm-$W-0 " "$(task_line "$o" "$n")"
  done
else
  not_ok "no-Alloc job $W: the srun step did not finish (state $(state_of "$W"))"
fi
release "$W.2"
check_eq "the no-Alloc job completed" COMPLETED "$(slurm_job_wait "$W" 60)"
check_nodes_empty "no Alloc, after job $W"
check "no Alloc: no node drains" healthy

# --- tear down: nothing of ours remains -------------------------------------------------------------
check "the host's /run/aws-role never held a job of this cluster" \
  bash -c "! ls /run/aws-role 2>/dev/null | grep -qE '^(7[0-9]{6})\$'"
DOWN_OUT=$(mktemp)
if teardown >"$DOWN_OUT" 2>/dev/null; then ok "the cluster goes down ($(cat "$DOWN_OUT"))"; else not_ok "the cluster goes down"; fi
rm -f "$DOWN_OUT"
leftover() {
  local p cmd out=
  for p in /proc/[0-9]*; do
    [ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ $cmd == *"$MN_ROOT"* || $cmd == *"moto_server -H $MN_STS_IP"* ]] && out+="${p#/proc/}:$cmd "
  done
  echo "$out"
}
check_eq "no process of the cluster is left" "" "$(leftover)"
check_eq "no namespace or link of the cluster is left" "" "$(ip netns list | grep "^$MN_PREFIX-"; ip -o link | grep -o "${MN_PREFIX}[^:@]*")"
rm -f "$WORK_ERR" "$REL".*
echo "# multinode suite (Slurm $MN_SLURM): $(elapsed_s "$T0")"
finish
