#!/usr/bin/env bash
# Load: a 500-task array with --aws-role on the one node (it advertises 64 CPUs, by
# SlurmdParameters=config_overrides in tests/harness/cluster.sh), against an STS that
# answers Throttling to 30% of the calls (the fault proxy). Every task must get its
# credentials or fail with a clear message; the node must not drain; the epilogs must leave
# /run/aws-role empty. AWS_ROLE_LOAD_TASKS changes the size (default 500).
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../harness/jobs.sh
. "$REPO/tests/harness/jobs.sh"

TASKS=${AWS_ROLE_LOAD_TASKS:-500}
STS=$(bash "$REPO/tests/harness/sts.sh" url)
PROXY=$(bash "$REPO/tests/harness/sts.sh" proxy-url)
OUT=/home/alice/aws-role-load
stats() { curl -s "$PROXY/stats"; }
calls() { stats | "$VENV/bin/python3" -c 'import json,sys; print(json.load(sys.stdin)["calls"].get(sys.argv[1], 0))' "$1"; }

sl scancel -u alice >/dev/null 2>&1
bash "$REPO/tests/harness/cluster.sh" wait-idle >/dev/null
cpus=$(sl scontrol show node -o | grep -o 'CPUTot=[0-9]*' | cut -d= -f2)
check_eq "the node advertises 64 CPUs" 64 "$cpus"
rm -rf "$OUT"
runuser -u alice -- mkdir -p "$OUT"
jobs_init alice "$OUT"
bash "$REPO/tests/harness/site.sh" write "$PROXY/throttle/0.3"
calls0=$(calls throttle)

t0=$(now_ms)
A=$(submit alice --aws-role=demo --array=0-$((TASKS - 1)) -o "$OUT/%A_%a.out" <<<'
f=$(dirname "${AWS_CONFIG_FILE:-/nonexistent/x}")/credentials.json
echo "TASK=$SLURM_ARRAY_TASK_ID SESSION=${AWS_ROLE_SESSION_NAME:-none} FILE=$(test -r "$f" && grep -c SecretAccessKey "$f" || echo missing)"')
check "sbatch --array=0-$((TASKS - 1)) --aws-role=demo accepted ($A)" test -n "$A"
peak=0 drained=0
for ((i = 0; i < 1800; i++)); do
  n=$(sl squeue -h -j "$A" 2>/dev/null | wc -l)
  d=$(ls /run/aws-role 2>/dev/null | wc -l)
  [ "$d" -gt "$peak" ] && peak=$d
  sl sinfo -h -o %T | grep -qiE 'drain|down|fail' && drained=1
  [ "$n" = 0 ] && break
  sleep 1
done
secs=$(( ($(now_ms) - t0) / 1000 ))
check_eq "all $TASKS tasks ended within 30 min (took ${secs}s)" 0 "$n"
for ((i = 0; i < 50; i++)); do [ -z "$(ls -A /run/aws-role)" ] && break; sleep 0.2; done
bash "$REPO/tests/harness/site.sh" write "$STS"

states=$(sl scontrol show job -o "$A" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')
good=0 clear=0 bad=0
for ((t = 0; t < TASKS; t++)); do
  o=$(cat "$OUT/${A}_$t.out" 2>/dev/null)
  if [[ $o == *"SESSION=slurm-"*"-$t FILE=1"* ]]; then
    good=$((good + 1))
  elif [[ $o == *"aws-role: could not assume role demo"* ]]; then
    clear=$((clear + 1))
  else
    bad=$((bad + 1))
    [ "$bad" -le 3 ] && echo "# task $t: ${o:0:300}"
  fi
done
sts_calls=$(( $(calls throttle) - calls0 ))
echo "# load: $TASKS tasks in ${secs}s; credentials $good, clear failures $clear, other $bad; Slurm: ${states%, }; STS calls $sts_calls (throttled 30%); peak job dirs $peak"
check_eq "every task got its credentials or a clear failure ($good + $clear)" "$TASKS" "$((good + clear))"
check "at least 99% got credentials ($good/$TASKS)" test "$((good * 100))" -ge "$((TASKS * 99))"
check "STS calls >= tasks and <= 8 (the default max_attempts) per task ($sts_calls)" test "$sts_calls" -ge "$TASKS" -a "$sts_calls" -le "$((TASKS * 8))"
check_eq "the node never drained during the load" 0 "$drained"
check "the node is not drained" bash "$REPO/tests/harness/cluster.sh" assert-healthy
check "the epilogs left /run/aws-role empty" bash -c "[ -z \"\$(ls -A /run/aws-role)\" ]"
finish
