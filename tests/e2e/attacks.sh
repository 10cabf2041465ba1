#!/usr/bin/env bash
# Hostile users on the real single-node Slurm (tests/README.md, "Attacks"): alice (may use
# role demo) and bob (group analysts: role analytics) try to get a role they may not use,
# to read each other's credentials, to make the prolog write where it should not, and to
# keep credentials after their job. Every attack must fail with a clear message where the
# user sees one, write nothing unsafe, leave no credential behind and never drain the node.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../harness/jobs.sh
. "$REPO/tests/harness/jobs.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
MAP=/etc/aws-role/role-map.toml
OUT=/home/alice/aws-role-attacks
BOB_OUT=/home/bob/aws-role-attacks
REL=/tmp/aws-role-attacks-release
write_map() { bash "$REPO/tests/harness/site.sh" write "$STS"; }
# with_base_dir DIR: the site map with [node] base_dir = DIR (an administrator's choice).
with_base_dir() {
  sed "/^\[node\]/a base_dir = \"$1\"" "$MAP" >"$MAP.new" && mv -f "$MAP.new" "$MAP"
}
healthy() { bash "$REPO/tests/harness/cluster.sh" assert-healthy >/dev/null; }
no_dir() { test ! -e "/run/aws-role/$1"; }

sl scancel -u alice >/dev/null 2>&1
sl scancel -u bob >/dev/null 2>&1
bash "$REPO/tests/harness/cluster.sh" wait-idle >/dev/null
write_map
rm -rf "$OUT" "$BOB_OUT" "$REL".*
runuser -u alice -- mkdir -p "$OUT"
runuser -u bob -- mkdir -p "$BOB_OUT"
jobs_init alice "$OUT" bob "$BOB_OUT"
SECRETS=()
remember_secret() {
  local s
  s=$(sed -n 's/.*"SecretAccessKey": "\([^"]*\)".*/\1/p' "/run/aws-role/$1/credentials.json" 2>/dev/null)
  [ -n "$s" ] && SECRETS+=("$s")
}
ARN_OF='echo "ARN=$($VENV/bin/aws --endpoint-url $STS sts get-caller-identity --query Arn --output text 2>&1)"'

# === 1. Role escalation ===================================================================
# 1a. The plain ways to ask, through every client: refused before anything is queued.
before=$(sl squeue -h | wc -l)
out=$(runuser -l alice -c "sbatch --aws-role=analytics --wrap true" 2>&1); rc=$?
check "sbatch --aws-role=analytics (not alice's): refused, exit $rc" test "$rc" -ne 0
check_contains "... and told which roles she may use" "roles you may request" "$out"
out=$(runuser -l alice -c "srun --aws-role=analytics true" 2>&1); rc=$?
check "srun --aws-role=analytics: refused, exit $rc" test "$rc" -ne 0
check_contains "... with the reason" "may not use role analytics" "$out"
out=$(runuser -l alice -c "salloc --aws-role=analytics true" 2>&1); rc=$?
check "salloc --aws-role=analytics: refused, exit $rc" test "$rc" -ne 0
check_contains "... with the reason" "may not use role analytics" "$out"
# Odd values: a full ARN, path and shell tricks, control characters, 10 kB.
long=$(head -c 10000 /dev/zero | tr '\0' a)
for v in "arn:aws:iam::123456789012:role/analytics" "../analytics" 'demo;id' '$(id)' \
  $'demo\nanalytics' $'demo\e[2J' "démo" "$long" "" "analytics " "ANALYTICS"; do
  printf -v q '%q' "--aws-role=$v"
  out=$(runuser -l alice -c "sbatch $q --wrap true" 2>&1); rc=$?
  shown=$(printf '%q' "${v:0:24}")
  check "sbatch --aws-role=$shown: refused with exit 1, no crash (exit $rc)" test "$rc" = 1
  check_contains "... the message starts with aws-role:" "aws-role:" "$out"
  check_not_contains "... no raw control character reaches the terminal" $'\e' "$out"
done
check "a 10 kB value is not echoed back whole" test "$(runuser -l alice -c "sbatch --aws-role=$long --wrap true" 2>&1 | wc -c)" -lt 2000
check_eq "none of these queued a job" "$before" "$(sl squeue -h | wc -l)"

# 1b. Around the client: her own SLURM_CONF and plugstack, with a SPANK plugin of her own that
# sets the job-control variable (SPANK_AWS_ROLE on the node) and skips our submit check.
EVIL=/home/alice/aws-role-attacks/evil
runuser -u alice -- mkdir -p "$EVIL"
runuser -u alice -- gcc -shared -fPIC -o "$EVIL/evil.so" "$REPO/tests/e2e/attacks/evil-spank.c"
sed "/^Include /d" /etc/slurm/slurm.conf | runuser -u alice -- tee "$EVIL/slurm.conf" >/dev/null
echo "PlugStackConfig=$EVIL/plugstack.conf" | runuser -u alice -- tee -a "$EVIL/slurm.conf" >/dev/null
echo "optional $EVIL/evil.so" | runuser -u alice -- tee "$EVIL/plugstack.conf" >/dev/null
evil_submit() { # ROLE-VALUE: prints the job id
  local v
  printf -v v '%q' "$1"
  runuser -l alice -c "SLURM_CONF=$EVIL/slurm.conf EVIL_ROLE=$v sbatch --parsable -o $OUT/%j.out" <<JOB 2>/dev/null | tail -n1
#!/bin/bash
STS=$STS VENV=$VENV
$ARN_OF
JOB
}
declare -A EVIL_JOBS=()
for v in analytics "arn:aws:iam::123456789012:role/analytics" "../../../etc" "$long" $'demo\nanalytics'; do
  EVIL_JOBS[$(evil_submit "$v")]=$v
done
check_eq "her own plugin got all 5 crafted jobs past sbatch" 5 "${#EVIL_JOBS[@]}"
for j in "${!EVIL_JOBS[@]}"; do
  st=$(slurm_job_wait "$j" 60)
  shown=$(printf '%q' "${EVIL_JOBS[$j]:0:24}")
  o=$(job_out "$j")
  check_eq "crafted SPANK_AWS_ROLE=$shown: the node refuses it, the job FAILS" FAILED "$st"
  check_contains "... its output says why" "aws-role:" "$o"
  check_not_contains "... it never got role analytics" "assumed-role/analytics" "$o"
  check "... nothing left on the node" no_dir "$j"
done
check_contains "the analytics refusal names the rule" "may not use role analytics" "$(cat "$OUT"/*.out)"
check "after 5 crafted requests the node is not drained" healthy

# 1c. Variables exported into the job cannot choose a role or an identity.
bob_uid=$(id -u bob)
X=$(submit alice --export="ALL,SPANK_AWS_ROLE=analytics,SLURM_SPANK_AWS_ROLE=analytics,SLURM_JOB_UID=$bob_uid,SLURM_JOB_USER=bob,AWS_ROLE_NAME=analytics" \
  <<<"$ARN_OF; echo \"CONFIG=\${AWS_CONFIG_FILE:-unset}\"")
slurm_job_wait "$X" 60 >/dev/null
o=$(job_out "$X")
check_contains "sbatch --export=SPANK_AWS_ROLE=analytics,SLURM_JOB_UID=bob,...: no role at all" "CONFIG=unset" "$o"
check_not_contains "... never analytics" "assumed-role/analytics" "$o"
# The variable that carries the option itself, exported into the job: the steps then believe
# a role was asked for, find none on the node and fail the job, saying so.
X=$(submit alice --export="ALL,_SLURM_SPANK_OPTION_aws_role_aws_role=analytics" <<<"$ARN_OF")
st=$(slurm_job_wait "$X" 60)
o=$(job_out "$X")
check_eq "--export=_SLURM_SPANK_OPTION_aws_role_aws_role=analytics: the job FAILS" FAILED "$st"
check_contains "... saying the role must be asked for at submission" "give --aws-role to sbatch/salloc" "$o"
check_not_contains "... never analytics" "assumed-role/analytics" "$o"
check "... nothing is left on the node" no_dir "$X"
Y=$(submit alice --aws-role=demo --export="ALL,SPANK_AWS_ROLE=analytics,SLURM_JOB_UID=$bob_uid,SLURM_JOB_USER=bob" <<<"$ARN_OF")
slurm_job_wait "$Y" 60 >/dev/null
check_contains "--aws-role=demo with the same exports: still demo, as alice's session" "assumed-role/demo/slurm-$Y-0" "$(job_out "$Y")"
Z=$(runuser -l alice -c "_SLURM_SPANK_OPTION_aws_role_aws_role=analytics SPANK_AWS_ROLE=analytics sbatch --parsable -o $OUT/%j.out --wrap 'echo CONFIG=\${AWS_CONFIG_FILE:-unset}'" 2>&1 | tail -n1)
if [[ $Z =~ ^[0-9]+$ ]]; then
  slurm_job_wait "$Z" 60 >/dev/null
  check "the option's variable in sbatch's environment: nothing is left on the node" no_dir "$Z"
  case $(job_out "$Z") in
    *"give --aws-role to sbatch/salloc"* | *CONFIG=unset*) ok "... the job has no role, or fails saying why" ;;
    *) not_ok "... the job has no role, or fails saying why: $(job_out "$Z" | head -c 300)" ;;
  esac
else
  check_contains "the option's variable in sbatch's environment is checked like --aws-role" "may not use role analytics" "$Z"
fi

# 1d. srun inside another job asks for another role.
S=$(submit alice --aws-role=demo <<<"srun --aws-role=analytics bash -c '$ARN_OF' 2>&1; echo \"RC=\$?\"; $ARN_OF")
slurm_job_wait "$S" 60 >/dev/null
o=$(job_out "$S")
check_contains "srun --aws-role=analytics inside alice's demo job: refused" "may not use role analytics" "$o"
check_not_contains "... no step of it became analytics" "assumed-role/analytics" "$o"
check_contains "... the job itself keeps demo" "assumed-role/demo/slurm-$S-0" "$o"
# Round two, 13: a role she may ask for (shared, partition gpu's default) is still not the
# job's: before, the step was only permission-checked, then ran with demo without a word.
S3=$(submit alice --aws-role=demo <<<"srun --aws-role=shared bash -c '$ARN_OF' 2>&1; echo \"RC=\$?\"")
slurm_job_wait "$S3" 60 >/dev/null
o=$(job_out "$S3")
check_contains "srun --aws-role=shared inside alice's demo job: the step fails, saying why" "a job step cannot change the job's AWS role: this job has role demo" "$o"
check_not_contains "... it never ran as shared" "assumed-role/shared" "$o"
check_not_contains "... nor silently as demo" "ARN=arn:aws:sts::123456789012:assumed-role/demo" "$o"
S2=$(submit alice <<<"srun --aws-role=demo bash -c 'echo STEPCONFIG=\${AWS_CONFIG_FILE:-unset}' 2>&1")
slurm_job_wait "$S2" 60 >/dev/null
o=$(job_out "$S2")
check_contains "srun --aws-role=demo inside a job without a role: the step fails, saying why" "give --aws-role to sbatch/salloc" "$o"
check_not_contains "... it never ran with a role" "STEPCONFIG=/" "$o"
check "... and nothing is left on the node" no_dir "$S2"

# === 2. Cross-user ========================================================================
J=$(submit alice --aws-role=demo <<<"touch $OUT/\$SLURM_JOB_ID.ready; for i in \$(seq 600); do [ -e $REL.\$SLURM_JOB_ID ] && break; sleep 0.2; done")
if wait_running "$J" "$OUT/$J.ready"; then
  D=/run/aws-role/$J
  remember_secret "$J"
  secret=${SECRETS[-1]:-}
  check "alice's job holds credentials" test -n "$secret"
  check "bob cannot read them" bash -c "! runuser -u bob -- cat $D/credentials.json $D/credentials >/dev/null 2>&1"
  check "bob cannot list her job dir or the base dir" bash -c "! runuser -u bob -- ls $D >/dev/null 2>&1 && ! runuser -u bob -- ls /run/aws-role >/dev/null 2>&1"
  check "bob cannot plant a file, a symlink or a hard link in her job dir" bash -c \
    "! runuser -u bob -- touch $D/x 2>/dev/null && ! runuser -u bob -- ln -s /etc/shadow $D/y 2>/dev/null && ! runuser -u bob -- ln /etc/passwd $D/z 2>/dev/null"
  check "alice cannot plant one either (the dir is root's)" bash -c \
    "! runuser -u alice -- ln -s /etc/shadow $D/y 2>/dev/null && ! runuser -u alice -- mkdir /run/aws-role/99999999 2>/dev/null"
  check "the credential helper is not setuid" bash -c "[ \"\$(stat -c %a $BIN/aws-role-credentials)\" = 755 ]"
  o=$(runuser -u bob -- "$BIN/aws-role-credentials" "$D" 2>&1)
  check_not_contains "bob running the credential helper on her dir gets nothing" "$secret" "$o"
  o=$(runuser -u bob -- env AWS_CONFIG_FILE="$D/config" AWS_SHARED_CREDENTIALS_FILE="$D/credentials" "$VENV/bin/aws" --endpoint-url "$STS" sts get-caller-identity 2>&1)
  check_not_contains "bob pointing the AWS CLI at her files is not alice" "assumed-role/demo" "$o"
  pids=$(pgrep -u alice -f "$REL" | head -n 3)
  leak=0
  for p in $pids; do
    runuser -u bob -- cat "/proc/$p/environ" >/dev/null 2>&1 && leak=1
    tr '\0' '\n' <"/proc/$p/environ" | grep -qF -- "$secret" && leak=1
  done
  check "bob cannot read her job's /proc/PID/environ, which holds no secret anyway" test "$leak" = 0
  B=$(submit bob <<<"cat $D/credentials.json 2>&1; ls $D 2>&1; $VENV/bin/aws --endpoint-url $STS sts get-caller-identity --query Arn --output text 2>&1; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c AWS_; echo done")
  slurm_job_wait "$B" 60 >/dev/null
  bo=$(cat "$BOB_OUT/$B.out" 2>/dev/null)
  check_contains "bob's job on the same node is refused her files" "Permission denied" "$bo"
  check_not_contains "... and never sees her secret" "$secret" "$bo"
  check_not_contains "... nor becomes her role" "assumed-role/demo" "$bo"
  check_not_contains "scontrol show job (as bob) shows no secret" "$secret" "$(runuser -u bob -- scontrol show job -dd "$J" 2>&1)"
  check_not_contains "ps argv of every process shows no secret" "$secret" "$(ps -eo args)"
else
  not_ok "alice's job $J did not start (state $(state_of "$J"))"
fi
touch "$REL.$J"
slurm_job_wait "$J" 60 >/dev/null
check "her credentials are gone when the job ends" no_dir "$J"

# === 3. Where the product writes ==========================================================
# 3a. A base dir an administrator put where users can reach it: alice plants it first.
ATT=/tmp/aws-role-attacks-base
rm -rf "$ATT" "$ATT-ln" /tmp/aws-role-attacks-victim
runuser -u alice -- mkdir -m 0777 "$ATT"
with_base_dir "$ATT"
P=$(submit alice --aws-role=demo <<<"$ARN_OF")
st=$(slurm_job_wait "$P" 60)
check_eq "base dir planted by alice (hers, 0777): the job FAILS" FAILED "$st"
check_contains "... and says so" "aws-role:" "$(job_out "$P")"
check_eq "... nothing was written into her directory" "" "$(ls -A "$ATT")"
rm -rf "$ATT"
install -d -m 0700 /tmp/aws-role-attacks-victim
runuser -u alice -- ln -s /tmp/aws-role-attacks-victim "$ATT"
P=$(submit alice --aws-role=demo <<<"$ARN_OF")
st=$(slurm_job_wait "$P" 60)
check_eq "base dir planted as a symlink to a root dir: the job FAILS" FAILED "$st"
check_eq "... nothing was written through the link" "" "$(ls -A /tmp/aws-role-attacks-victim)"
rm -f "$ATT"
# The base itself is root's, but a directory above it is alice's: she could swap it.
runuser -u alice -- mkdir -p "$ATT-ln"
install -d -m 0711 "$ATT-ln/jobs"
with_base_dir "$ATT-ln/jobs"
write_map
with_base_dir "$ATT-ln/jobs"
P=$(submit alice --aws-role=demo <<<"$ARN_OF")
st=$(slurm_job_wait "$P" 60)
check_eq "base dir under a directory alice owns: the job FAILS" FAILED "$st"
check_eq "... nothing was written below it" "" "$(ls -A "$ATT-ln/jobs")"
check "the node is not drained by an unsafe base dir" healthy
rm -rf "$ATT-ln" /tmp/aws-role-attacks-victim
write_map

# 3b. A full and a read-only /run (tmpfs of its own as the base dir).
FULL=/run/aws-role-attacks
umount "$FULL" 2>/dev/null
install -d -m 0711 "$FULL"
mount -t tmpfs -o size=16k,mode=0711 aws-role-attacks "$FULL"
dd if=/dev/zero of="$FULL/filler" bs=4k count=100 2>/dev/null
with_base_dir "$FULL"
P=$(submit alice --aws-role=demo <<<"$ARN_OF; echo ran")
st=$(slurm_job_wait "$P" 60)
check_eq "/run full: the job FAILS" FAILED "$st"
check_contains "... its output says why" "aws-role:" "$(job_out "$P")"
check_eq "... no partial file is left" "filler" "$(ls -A "$FULL")"
check "... the node is not drained" healthy
rm -f "$FULL/filler"
mount -o remount,ro "$FULL"
P=$(submit alice --aws-role=demo <<<"$ARN_OF; echo ran")
st=$(slurm_job_wait "$P" 60)
check_eq "/run read-only: the job FAILS" FAILED "$st"
check_contains "... its output says why" "aws-role:" "$(job_out "$P")"
check "... the node is not drained" healthy
N=$(submit alice <<<'echo plain')
check_eq "/run read-only: a job without a role still runs" COMPLETED "$(slurm_job_wait "$N" 60)"
umount "$FULL"
rmdir "$FULL"
write_map

# === 4. Credentials outliving the job =====================================================
# 4a. The epilog binary fails: the plugin removes the files itself.
E=$(submit alice --aws-role=demo <<<"touch $OUT/\$SLURM_JOB_ID.ready; sleep 2")
wait_running "$E" "$OUT/$E.ready" && remember_secret "$E"
chmod 000 "$BIN/aws-role-epilog"
st=$(slurm_job_wait "$E" 60)
chmod 755 "$BIN/aws-role-epilog"
check_eq "epilog binary broken: the job still COMPLETES" COMPLETED "$st"
check "... its credentials are gone all the same" no_dir "$E"
check "... the node is not drained" healthy

# 4b. Node reboot: slurmd and the job's slurmstepd die, /run is wiped, slurmd comes back.
R=$(submit alice --aws-role=demo --no-requeue <<<"touch $OUT/\$SLURM_JOB_ID.ready; sleep 300")
if wait_running "$R" "$OUT/$R.ready"; then
  remember_secret "$R"
  pkill -KILL -f "slurmstepd: \[$R" ; pkill -KILL -x slurmd
  rm -rf /run/aws-role/*   # what a reboot does to a tmpfs
  bash "$REPO/tests/harness/cluster.sh" up >/dev/null 2>&1
  sl scancel "$R" >/dev/null 2>&1
  slurm_job_wait "$R" 60 >/dev/null
  check "after a reboot the job's credentials are gone" no_dir "$R"
  check "... and the node came back, not drained" healthy
else
  not_ok "reboot: job $R did not start"
fi

# === 6. Round two (tests/README.md, "Attacks, round two") ================================
SLURMD_LOG=/var/log/slurm/slurmd.log
# 6a (1). Accounts are the user's word on this cluster (no AccountingStorageEnforce).
write_map
cat >>"$MAP" <<'TOML'

[roles.finance]
arn = "arn:aws:iam::123456789012:role/finance"
allow_accounts = ["finance"]

[roles.tagged]
arn = "arn:aws:iam::123456789012:role/tagged"
allow_users = ["alice"]
tags = { project = "{account}" }
TOML
out=$(runuser -l bob -c "sbatch --aws-role=nosuchrole --wrap true" 2>&1)
check_contains "a refusal lists the roles bob may request" "roles you may request" "$out"
check_not_contains "... but never which account unlocks which role" "finance" "$out"
A=$(submit alice --account=finance --aws-role=finance <<<"$ARN_OF; echo ran")
st=$(slurm_job_wait "$A" 60)
check_eq "sbatch --account=finance --aws-role=finance (an account she typed): the job FAILS" FAILED "$st"
check_contains "... saying accounts are not enforced here" "does not enforce accounts" "$(job_out "$A")"
check_not_contains "... it never became finance" "assumed-role/finance" "$(job_out "$A")"
check "... nothing is left on the node" no_dir "$A"
A=$(submit alice --account=finance --aws-role=tagged <<<"$ARN_OF; echo ran")
st=$(slurm_job_wait "$A" 60)
check_eq "--aws-role=tagged (its tags carry {account}): the job FAILS" FAILED "$st"
check_contains "... saying why" "puts the job's account into its session (tags)" "$(job_out "$A")"
out=$("$BIN/aws-role-prolog" --check-node 2>&1)
check_contains "--check-node FAILs the map's account roles" "FAIL  job accounts: roles finance, tagged depend on job accounts" "$out"
out=$("$BIN/aws-role-prolog" --check-config "$MAP" 2>&1); rc=$?
check_eq "--check-config refuses them too (exit 1)" 1 "$rc"
check_contains "... saying why" "does not enforce accounts" "$out"
check "the node cached Slurm's answer (root 0600, no job directory)" test "$(stat -c '%a %U' /run/aws-role/.slurm-accounts.json 2>&1)" = "600 root"
rm -f /run/aws-role/.slurm-accounts.json # the node's own record; a purge removes it
write_map
D=$(submit alice --aws-role=demo <<<"$ARN_OF")
slurm_job_wait "$D" 60 >/dev/null
check "the node's log says what granted a role" grep -q "job $D: .*role chosen: requested with --aws-role by user alice, allowed by name for user alice" "$SLURMD_LOG"

# 6b (7). A job's gid is not membership: alice with the gid of analysts (as root can set
# it, or `sg` keeps it after she left the group) is refused analytics.
out=$(setpriv --reuid=alice --regid=analysts --clear-groups -- env -i HOME=/home/alice PATH=/usr/bin:/bin \
  sbatch --parsable --aws-role=analytics -o "$OUT/gid-%j.out" --wrap "$ARN_OF" 2>&1); rc=$?
check "alice running with the gid of analysts: --aws-role=analytics refused (exit $rc)" test "$rc" -ne 0
check_contains "... saying she may not use it" "may not use role analytics" "$out"

# 6c (2). A job cannot grow its own credential files, and so cannot fill the node's /run.
check "/run/aws-role is a tmpfs of its own" mountpoint -q /run/aws-role
check_contains "--check-node says so" "OK    base dir file system: /run/aws-role is a tmpfs of its own" "$("$BIN/aws-role-prolog" --check-node 2>&1)"
G=$(submit alice --aws-role=demo <<<'D=$(dirname $AWS_CONFIG_FILE)
for f in credentials.json credentials config endpoint-token endpoint-url; do
  head -c 1048576 /dev/zero >>$D/$f 2>/dev/null && echo "GREW $f"
  : >$D/$f 2>/dev/null && echo "TRUNCATED $f"
  chmod 0666 $D/$f 2>/dev/null && echo "CHMOD $f"
done
touch $D/mine 2>/dev/null && echo "CREATED"
'"$ARN_OF")
st=$(slurm_job_wait "$G" 60)
o=$(job_out "$G")
check_eq "alice's job that tries to grow its files still COMPLETES" COMPLETED "$st"
check "... it could not grow, truncate, chmod or add any file" bash -c "! grep -qE 'GREW|TRUNCATED|CHMOD|CREATED' <<<\"\$1\"" _ "$o"
check_contains "... and its credentials still work" "assumed-role/demo/slurm-$G-0" "$o"
B=$(submit bob --aws-role=analytics <<<"$ARN_OF")
check_eq "bob's job right after gets its role" COMPLETED "$(slurm_job_wait "$B" 60)"

# 6d (8). The node's own keys readable by every user: no STS call, the job fails, no drain.
chmod 0644 /etc/aws-role/node-credentials
K=$(submit alice --aws-role=demo <<<"$ARN_OF")
st=$(slurm_job_wait "$K" 60)
chmod 0600 /etc/aws-role/node-credentials
check_eq "node keys mode 0644: the job FAILS" FAILED "$st"
check_contains "... saying the node's keys are not root's alone" "is not root's alone" "$(job_out "$K")"
check "... the node is not drained" healthy

# 6e (10). Slurm's PrologEpilogTimeout below the plugin's timeout=30: the plugin must end
# the prolog first (Slurm would kill the job_prolog, requeue the job and drain the node).
EXTRA=/etc/slurm/aws-role-test.conf
cp "$EXTRA" "$EXTRA.attacks"
echo "PrologEpilogTimeout=4" >>"$EXTRA"
sl scontrol reconfigure >/dev/null 2>&1
bash "$REPO/tests/harness/site.sh" write "$(bash "$REPO/tests/harness/sts.sh" proxy-url)/hang"
sed -i 's/^timeout = .*/timeout = "20s"/' "$MAP"
H=$(submit alice --aws-role=demo --no-requeue <<<"$ARN_OF")
st=$(slurm_job_wait "$H" 90)
check_eq "PrologEpilogTimeout=4, STS hangs: the job FAILS" FAILED "$st"
check_contains "... saying the prolog was stopped in time" "did not finish within 3 s and was killed" "$(job_out "$H")"
check "... the node is not drained" healthy
check "... no prolog outlived its job_prolog" bash -c "! pgrep -f '[a]ws-role-prolog --config' >/dev/null"
mv -f "$EXTRA.attacks" "$EXTRA"
sl scontrol reconfigure >/dev/null 2>&1
sl scontrol update nodename="$(sl scontrol show node -o | sed -n 's/^NodeName=\([^ ]*\).*/\1/p' | head -n1)" state=resume >/dev/null 2>&1
write_map

# 6f (12). No printing mode of any binary panics when its reader has gone (stdout on a
# pipe whose read end is closed: every write fails with EPIPE, as under `| head -1`).
closed_stdout() { # CMD...: prints CMD's stderr, then rc=N
  /usr/bin/python3 - "$@" <<'PY'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
sys.stdout.write(p.stderr.decode(errors="replace"))
print("rc=%d" % p.returncode)
PY
}
for cmd in "aws-role-prolog --check-config $MAP" "aws-role-prolog --status" "aws-role-prolog --check-node" \
  "aws-role-prolog --help" "aws-role-epilog --help" "aws-role-credentials --help" \
  "aws-role-refresher --help" "aws-role-refresher --config $MAP --plan 7-00:00:00"; do
  # shellcheck disable=SC2086 # the words of $cmd are its arguments
  out=$(closed_stdout "$BIN"/$cmd)
  check_not_contains "$cmd on a closed stdout: no panic" "panicked" "$out"
  check_not_contains "... and no exit 101" "rc=101" "$out"
done

# === 5. Secrets in logs ====================================================================
check_eq "every secret issued in this suite was seen" 0 "$(( ${#SECRETS[@]} < 3 ))"
hits=0
for s in "${SECRETS[@]}"; do
  grep -rlF -- "$s" /var/log/slurm /var/log/aws-role-test "$OUT" "$BOB_OUT" 2>/dev/null && hits=$((hits + 1))
done
check_eq "the ${#SECRETS[@]} secret keys are in no Slurm log, aws-role log or job output" 0 "$hits"
check "nothing is left in /run/aws-role" bash -c "[ -z \"\$(ls -A /run/aws-role 2>/dev/null)\" ]"
check "the node is not drained" healthy
rm -f "$REL".*
finish
