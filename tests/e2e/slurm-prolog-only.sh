#!/usr/bin/env bash
# Prolog-only mode, for sites that do not load the plugin: slurm.conf's Prolog=, Epilog=
# and TaskProlog= name the binaries. Partition defaults must work, a failure must fail the
# job (not the node), and nothing may be left behind. Restores the plugin set-up on exit.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

H=$REPO/tests/harness
STS=$(bash "$H/sts.sh" url)
EXTRA=/etc/slurm/aws-role-test.conf
PLUG=/etc/slurm/plugstack.conf.d/aws-role.conf
OUT=/home/alice/aws-role-e2e-po

restore() {
  [ -e "$PLUG.off" ] && mv -f "$PLUG.off" "$PLUG"
  printf '# test-specific slurm.conf lines (tests/harness/cluster.sh)\n' >"$EXTRA"
  bash "$H/site.sh" write "$STS"
  sl scontrol reconfigure >/dev/null 2>&1
  bash "$H/cluster.sh" restart-slurmd >/dev/null
}
trap restore EXIT

# Start from a quiet node: no test job of an earlier (perhaps aborted) run may linger.
sl scancel -u alice >/dev/null 2>&1
sl scancel -u bob >/dev/null 2>&1
bash "$REPO/tests/harness/cluster.sh" wait-idle >/dev/null
bash "$H/site.sh" write "$STS"
mv -f "$PLUG" "$PLUG.off"
printf 'Prolog=%s\nEpilog=%s\nTaskProlog=%s\n' "$BIN/aws-role-prolog" "$BIN/aws-role-epilog" "$BIN/aws-role-prolog" >"$EXTRA"
sl scontrol reconfigure
bash "$H/cluster.sh" restart-slurmd >/dev/null
rm -rf "$OUT"
runuser -u alice -- mkdir -p "$OUT"

run_job() {
  local id
  id=$(runuser -l alice -c "sbatch --parsable $* -o $OUT/%j.out" <<JOB
#!/bin/bash
echo "CONFIG=\${AWS_CONFIG_FILE:-unset} KEYVAR=\${AWS_ACCESS_KEY_ID:-unset}"
echo "NAMES=\${AWS_ROLE_NAME:-unset} \${AWS_ROLE_SESSION_NAME:-unset}"
echo "CLI=\$($VENV/bin/aws --endpoint-url $STS sts get-caller-identity --query Arn --output text 2>&1)"
JOB
  )
  echo "$id"
}

check_contains "sbatch has no --aws-role without the plugin" "unrecognized option" \
  "$(runuser -l alice -c 'sbatch --aws-role=demo --wrap true' 2>&1)"

G=$(run_job -p gpu)
st=$(slurm_job_wait "$G" 60)
check_eq "a gpu job completes" COMPLETED "$st"
o=$(cat "$OUT/$G.out" 2>/dev/null)
check_contains "the TaskProlog pointed the job at its config" "CONFIG=/run/aws-role/$G/config" "$o"
check_contains "the AWS CLI gets the partition default role" "assumed-role/shared/slurm-$G-0" "$o"
check_contains "the TaskProlog exported the role and session names too" "NAMES=shared slurm-$G-0" "$o"
check "the Epilog removed the job's credentials" test ! -e "/run/aws-role/$G"

D=$(run_job -p debug)
slurm_job_wait "$D" 60 >/dev/null
check_contains "a debug job (no default) gets no AWS variables" "CONFIG=unset" "$(cat "$OUT/$D.out" 2>/dev/null)"

# Slurm 22.05 gives a Prolog= no end time: by default the session lasts the role's cap
# (1 h); with [slurm] end_time_from_scontrol it ends with the job (30 min + 5 min margin).
left_job() {
  runuser -l alice -c "sbatch --parsable -p gpu --time=30 -o $OUT/%j.out" <<'JOB'
#!/bin/bash
exp=$(grep -o '"Expiration": *"[^"]*' "${AWS_CONFIG_FILE%/config}/credentials.json" | cut -d'"' -f4)
echo "LEFT=$(( $(date -d "$exp" +%s) - $(date +%s) ))"
JOB
}
T=$(left_job)
slurm_job_wait "$T" 60 >/dev/null
left=$(grep -o 'LEFT=[0-9]*' "$OUT/$T.out" 2>/dev/null | cut -d= -f2)
check "without scontrol, a 30-min job's session lasts the 1-h cap (${left:-?} s left)" test "${left:-0}" -ge 3500 -a "${left:-0}" -le 3600
AWS_ROLE_SITE_SCONTROL=1 bash "$H/site.sh" write "$STS"
T=$(left_job)
slurm_job_wait "$T" 60 >/dev/null
left=$(grep -o 'LEFT=[0-9]*' "$OUT/$T.out" 2>/dev/null | cut -d= -f2)
check "with end_time_from_scontrol, it ends with the job: 30 min + 5 min margin (${left:-?} s left)" test "${left:-0}" -ge 2040 -a "${left:-0}" -le 2100

bash "$H/site.sh" write "http://127.0.0.1:1"
F=$(run_job -p gpu)
st=$(slurm_job_wait "$F" 60)
bash "$H/site.sh" write "$STS"
check_eq "with STS down the job FAILS" FAILED "$st"
check_contains "its output says why" "aws-role: could not assume role shared" "$(cat "$OUT/$F.out" 2>/dev/null)"
check "the node is not drained" bash "$H/cluster.sh" assert-healthy
check "the failed job left nothing on the node" test ! -e "/run/aws-role/$F"
finish
