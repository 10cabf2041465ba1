#!/usr/bin/env bash
# End to end on a real single-node Slurm with the aws-role plugin installed
# (tests/harness/install.sh) and the STS emulator: jobs are submitted by unprivileged
# users with the real sbatch/srun, and every result is read from the job's own output
# and the node's state.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../harness/jobs.sh
. "$REPO/tests/harness/jobs.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
OUT=/home/alice/aws-role-e2e
BOB_OUT=/home/bob/aws-role-e2e
TEST_BIN=/usr/local/libexec/aws-role-test
REL=/tmp/aws-role-e2e-release

# Start from a quiet node: no test job of an earlier (perhaps aborted) run may linger.
sl scancel -u alice >/dev/null 2>&1
sl scancel -u bob >/dev/null 2>&1
bash "$REPO/tests/harness/cluster.sh" wait-idle >/dev/null
# --- fixtures ---------------------------------------------------------------------------
install -d -m 0755 "$TEST_BIN"
write_map() { bash "$REPO/tests/harness/site.sh" write "$1"; }
write_map "$STS"
(cd "$REPO" && cargo build -q --release -p aws-role-test-sdk-client) || not_ok "build the Rust SDK test client"
install -m 0755 "$REPO/target/release/aws-role-sdk-whoami" "$TEST_BIN/"
rm -rf "$OUT" "$BOB_OUT" "$REL".*
runuser -u alice -- mkdir -p "$OUT"
runuser -u bob -- mkdir -p "$BOB_OUT"
jobs_init alice "$OUT" bob "$BOB_OUT"

# Probes every client inside a job prints, one per line.
WHOAMI='
echo "CLI=$($VENV/bin/aws --endpoint-url $STS sts get-caller-identity --query Arn --output text 2>&1)"
echo "BOTO3=$($VENV/bin/python3 -c "import boto3,sys; print(boto3.client(\"sts\", endpoint_url=sys.argv[1]).get_caller_identity()[\"Arn\"])" $STS 2>&1)"
echo "RUST=$('"$TEST_BIN"'/aws-role-sdk-whoami $STS 2>&1)"
'

# A time-limit job starts first: it takes ~75 s to be killed, the rest runs meanwhile.
TL=$(submit alice --aws-role=demo --time=1 <<<'sleep 300')

# --- the option exists -------------------------------------------------------------------
check_contains "sbatch --help lists --aws-role" "--aws-role" "$(runuser -l alice -c 'sbatch --help' 2>&1)"
check_contains "srun --help lists --aws-role" "--aws-role" "$(runuser -l alice -c 'srun --help' 2>&1)"

# --- a job with a role -------------------------------------------------------------------
J=$(runuser -l alice -c "export AWS_ACCESS_KEY_ID=AKIDSHADOW0000000000 AWS_SECRET_ACCESS_KEY=shadow AWS_PROFILE=mine
  sbatch --parsable --aws-role=demo -o $OUT/%j.out" <<JOB 2>"$WORK_ERR" | tail -n1
#!/bin/bash
STS=$STS
VENV=$VENV
$WHOAMI
env | grep -E '^AWS_' | grep -v -E 'SECRET|TOKEN' | sort | sed 's/^/ENV /'
echo "KEYVAR=\${AWS_ACCESS_KEY_ID:-unset} PROFILE=\${AWS_PROFILE:-unset}"
echo "FILES=\$(stat -c '%a %U' \$(dirname \$AWS_CONFIG_FILE)/credentials.json \$(dirname \$AWS_CONFIG_FILE)/config | tr '\n' ' ')"
touch $OUT/\$SLURM_JOB_ID.ready
for i in \$(seq 300); do [ -e $REL.\$SLURM_JOB_ID ] && break; sleep 0.2; done
JOB
)
check "sbatch --aws-role=demo accepted (job $J)" test -n "$J"
if wait_running "$J" "$OUT/$J.ready"; then
  D=/run/aws-role/$J
  secret=$(sed -n 's/.*"SecretAccessKey": "\([^"]*\)".*/\1/p' "$D/credentials.json")
  check "the node holds the job's credentials while it runs" test -n "$secret"
  check "bob cannot read alice's credentials" bash -c "! runuser -u bob -- cat $D/credentials.json >/dev/null 2>&1"
  check "bob cannot list alice's job dir" bash -c "! runuser -u bob -- ls $D >/dev/null 2>&1"
  B=$(submit bob <<<"cat $D/credentials.json $D/credentials 2>&1; ls $D 2>&1; echo done")
  slurm_job_wait "$B" 60 >/dev/null
  bo=$(cat "$BOB_OUT/$B.out" 2>/dev/null)
  check_contains "bob's job on the same node is refused alice's files" "Permission denied" "$bo"
  check_not_contains "bob's job never sees alice's secret" "$secret" "$bo"
else
  not_ok "job $J did not start (state $(state_of "$J")): $(cat "$WORK_ERR")"
fi
touch "$REL.$J"
st=$(slurm_job_wait "$J" 90)
check_eq "the job completed" COMPLETED "$st"
o=$(job_out "$J")
check_contains "AWS CLI in the job: assumed-role/demo/slurm-$J-0" "assumed-role/demo/slurm-$J-0" "$(grep ^CLI= <<<"$o")"
check_contains "boto3 in the job: assumed-role/demo/slurm-$J-0" "assumed-role/demo/slurm-$J-0" "$(grep ^BOTO3= <<<"$o")"
check_contains "aws-sdk-rust in the job: assumed-role/demo/slurm-$J-0" "assumed-role/demo/slurm-$J-0" "$(grep ^RUST= <<<"$o")"
check_contains "AWS_ROLE_NAME is exported" "ENV AWS_ROLE_NAME=demo" "$o"
check_contains "AWS_ROLE_SESSION_NAME is exported" "ENV AWS_ROLE_SESSION_NAME=slurm-$J-0" "$o"
check_contains "the plugin gives the job its endpoint URL" "ENV AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:941/v1/credentials/$J" "$o"
check_contains "... and the map's region" "ENV AWS_REGION=us-east-1" "$o"
check_not_contains "no inherited shadow survives (the endpoint's variables are set after the unsets)" "AKIDSHADOW" "$o"
check_contains "AWS_ACCESS_KEY_ID and AWS_PROFILE exported at submit do not reach the job" "KEYVAR=unset PROFILE=unset" "$o"
check_contains "the job's files are root's 0640, readable by alice" "FILES=640 root 640 root" "$o"
check "credentials gone after normal end" test ! -e "/run/aws-role/$J"
if [ -n "${secret:-}" ]; then
  check "the secret key is in no Slurm log" bash -c "! grep -rqF -- '$secret' /var/log/slurm/ /var/log/aws-role-test/"
  check "the secret key is in no job output" bash -c "! grep -rqF -- '$secret' $OUT $BOB_OUT"
fi

# --- array job: one session per task -------------------------------------------------------
A=$(submit alice --aws-role=demo --array=0-2 -o "$OUT/%A_%a.out" <<<'echo "ID=$SLURM_JOB_ID TASK=$SLURM_ARRAY_TASK_ID"; '"$WHOAMI")
for t in 0 1 2; do
  for ((i = 0; i < 300; i++)); do
    f=$OUT/${A}_$t.out
    [ -s "$f" ] && grep -q '^RUST=' "$f" && break
    sleep 0.2
  done
  id=$(sed -n 's/^ID=\([0-9]*\) .*/\1/p' "$f" 2>/dev/null)
  check_contains "array task $t: session slurm-<its job id>-$t" "assumed-role/demo/slurm-$id-$t" "$(grep ^CLI= "$f" 2>/dev/null)"
done

# --- partition default, opt-out ----------------------------------------------------------------
G=$(submit alice -p gpu <<<"$WHOAMI")
slurm_job_wait "$G" 60 >/dev/null
check_contains "a gpu job without --aws-role gets the partition default" "assumed-role/shared/slurm-$G-0" "$(job_out "$G")"
N=$(submit alice -p gpu --aws-role=none <<<'echo "CONFIG=${AWS_CONFIG_FILE:-unset}"')
slurm_job_wait "$N" 60 >/dev/null
check_contains "--aws-role=none opts out of the default" "CONFIG=unset" "$(job_out "$N")"
check "--aws-role=none leaves nothing on the node" test ! -e "/run/aws-role/$N"

# --- no role: no prolog process, yet stale files are still removed -------------------------------
# The plugin skips aws-role-prolog/-epilog for a job that cannot get a role and has nothing on
# the node (bench/ section 4: a process and a slurmctld RPC saved on every such job start).
prolog_runs() { grep -c "aws-role: job $1: aws-role-prolog" /var/log/slurm/slurmd.log; }
P=$(submit alice <<<'echo "CONFIG=${AWS_CONFIG_FILE:-unset}"')
slurm_job_wait "$P" 60 >/dev/null
check_contains "a debug job without --aws-role gets no AWS config" "CONFIG=unset" "$(job_out "$P")"
check_eq "... and slurmd ran no aws-role-prolog for it" 0 "$(prolog_runs "$P")"
check_eq "--aws-role=none (gpu) ran no aws-role-prolog either" 0 "$(prolog_runs "$N")"
check "a gpu job (partition default) did run it" test "$(prolog_runs "$G")" -gt 0
# A directory already under a role-less job's id (left by a crash, a lost epilog) must not
# survive into that job: the prolog still runs for it and removes it.
H=$(submit alice --hold <<<'echo "CONFIG=${AWS_CONFIG_FILE:-unset}"')
install -d -m 0711 "/run/aws-role/$H"
printf 'stale\n' >"/run/aws-role/$H/credentials"
sl scontrol release "$H"
slurm_job_wait "$H" 60 >/dev/null
check_contains "a job without a role ignores a stale directory under its id" "CONFIG=unset" "$(job_out "$H")"
check "the stale directory is removed" test ! -e "/run/aws-role/$H"

# --- refused at submit ----------------------------------------------------------------------------
before=$(sl squeue -h -u alice | wc -l)
R=$(submit alice --aws-role=analytics <<<'echo should not run')
err=$(cat "$WORK_ERR")
check_eq "a role alice may not use is refused at submit (no job id)" "" "$R"
check_contains "the refusal lists the roles alice may request" "demo" "$err"
check_eq "no job was queued" "$before" "$(sl squeue -h -u alice | wc -l)"
R=$(submit alice --aws-role=arn:aws:iam::123456789012:role/demo <<<'echo should not run')
check_eq "a full ARN is refused at submit" "" "$R"

# --- STS down: the job fails clearly, the node stays up ------------------------------------------
write_map "http://127.0.0.1:1"
F=$(submit alice --aws-role=demo <<<'echo "SHOULD NOT RUN"')
st=$(slurm_job_wait "$F" 60)
write_map "$STS"
check_eq "with STS down the job FAILS" FAILED "$st"
check_contains "the job's output says why" "aws-role: could not assume role demo" "$(job_out "$F")"
check_not_contains "the job script never ran" "SHOULD NOT RUN" "$(job_out "$F")"
check "the node is not drained after an STS failure" bash "$REPO/tests/harness/cluster.sh" assert-healthy
check "the failed job left nothing on the node" test ! -e "/run/aws-role/$F"

# --- credentials gone after scancel and requeue ----------------------------------------------------
C=$(submit alice --aws-role=demo <<<"touch $OUT/\$SLURM_JOB_ID.ready; sleep 300")
if wait_running "$C" "$OUT/$C.ready"; then
  check "scancel: credentials present while running" test -e "/run/aws-role/$C/credentials.json"
else
  not_ok "scancel: job $C did not start"
fi
sl scancel "$C"
slurm_job_wait "$C" 60 >/dev/null
check "scancel: credentials gone" test ! -e "/run/aws-role/$C"
Q=$(submit alice --aws-role=demo <<<"touch $OUT/\$SLURM_JOB_ID.ready.\${SLURM_RESTART_COUNT:-0}; sleep 300")
if wait_running "$Q" "$OUT/$Q.ready.0"; then
  sl scontrol requeue "$Q"
  for ((i = 0; i < 150; i++)); do [ -e "/run/aws-role/$Q" ] || break; sleep 0.2; done
  check "requeue: credentials of the killed run are gone" test ! -e "/run/aws-role/$Q"
else
  not_ok "requeue: job $Q did not start"
fi
sl scancel "$Q"
slurm_job_wait "$Q" 60 >/dev/null

# --- time limit (submitted first) -------------------------------------------------------------------
st=$(slurm_job_wait "$TL" 150)
check_eq "the --time=1 job was killed by its limit" TIMEOUT "$st"
check "time limit: credentials gone" test ! -e "/run/aws-role/$TL"

check "nothing is left in /run/aws-role" bash -c "[ -z \"\$(ls -A /run/aws-role 2>/dev/null)\" ]"
check "the node is not drained" bash "$REPO/tests/harness/cluster.sh" assert-healthy
rm -f "$WORK_ERR" "$REL".*
finish
