#!/usr/bin/env bash
# User and group names as a directory service gives them (SSSD's alice@example.com,
# winbind's EXAMPLE\carol, the group "domain users"), through the node's real NSS: the
# users are real passwd entries (useradd --badname), the group a real group entry. They
# are checked in the map (--check-config), in real Slurm jobs submitted by those users,
# and in a PBS prologue called as pbs_mom calls it. What reaches STS is read on the wire
# (the fault proxy's record of each call's parameters): a SourceIdentity and a tag that
# keep the users apart.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../harness/jobs.sh
. "$REPO/tests/harness/jobs.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
PROXY=$(bash "$REPO/tests/harness/sts.sh" proxy-url)
MAP=/etc/aws-role/role-map.toml
BIN=${AWS_ROLE_BIN_DIR:-/usr/libexec/aws-role}
ADA='alice@example.com'
CAROL='EXAMPLE\carol'
DU='domain users'
WORK=$(mktemp -d /tmp/aws-role-names.XXXXXX)
chmod 0755 "$WORK"
trap 'rm -rf "$WORK" /run/aws-role/778.pbs-server; bash "$REPO/tests/harness/site.sh" write "$STS"' EXIT

ensure_users
ensure_directory_names
ADA_OUT=/home/ad-alice/aws-role-names
CAROL_OUT=$WORK/carol
install -d -m 0700 -o "$CAROL" "$CAROL_OUT"
rm -rf "$ADA_OUT"
runuser -u "$ADA" -- mkdir -p "$ADA_OUT"
jobs_init "$ADA" "$ADA_OUT" "$CAROL" "$CAROL_OUT"
for u in "$ADA" "$CAROL" alice; do sl scancel -u "$u" >/dev/null 2>&1; done
bash "$REPO/tests/harness/cluster.sh" wait-idle >/dev/null

check_eq "NSS gives $ADA as it is" "$ADA" "$(getent passwd "$ADA" | cut -d: -f1)"
check_eq "NSS gives $CAROL as it is" "$CAROL" "$(id -un "$CAROL")"
check_contains "NSS lists both in '$DU'" "$ADA,$CAROL" "$(getent group "$DU")"

# The cluster's map, with STS behind the fault proxy under a path of this run's own (its
# record of parameters, call by call), and one role for the directory's names.
XPATH=names-$$-$RANDOM
bash "$REPO/tests/harness/site.sh" write "$PROXY/pass/$XPATH"
cat >>"$MAP" <<'TOML'

[roles.ad]
arn = "arn:aws:iam::123456789012:role/ad"
allow_users = ["alice@example.com"]
allow_groups = ["domain users"]
source_identity = "{user}"
tags = { user = "{user}" }

[pbs]
default_role = "ad"
TOML

# --- the map --------------------------------------------------------------------------
out=$("$BIN/aws-role-prolog" --config "$MAP" --check-config 2>&1)
check_eq "--check-config accepts the directory's names (exit 0)" 0 "$?"
check_not_contains "... and warns of none: NSS knows them all" "warning:" "$out"
sed 's/^allow_users = \["alice@example.com"\]$/allow_users = ["alice@example.com", "ghost@example.com"]/' "$MAP" >"$WORK/ghost.toml"
out=$("$BIN/aws-role-prolog" --config "$WORK/ghost.toml" --check-config 2>&1)
check_eq "a name NSS does not know is no error (exit 0)" 0 "$?"
check_contains "... but a warning naming role, list and name" \
  "warning: $WORK/ghost.toml: roles.ad.allow_users: \"ghost@example.com\" is no user this node's NSS knows" "$out"
printf '[sts]\nregion = "us-east-1"\n[roles.x]\narn = "arn:aws:iam::123456789012:role/x"\nallow_groups = ["bad:name"]\n' >"$WORK/bad.toml"
out=$("$BIN/aws-role-prolog" --config "$WORK/bad.toml" --check-config 2>&1)
check_eq "a name no NSS could give (a ':') is an error (exit 1)" 1 "$?"
check_contains "... at file:line:column" "$WORK/bad.toml:5:17: roles.x.allow_groups: \"bad:name\" is not a group name NSS could give" "$out"

# --- Slurm jobs ------------------------------------------------------------------------
JOB='echo "ARN=$($VENV/bin/aws --endpoint-url $STS sts get-caller-identity --query Arn --output text 2>&1)"'
A=$(submit "$ADA" --aws-role=ad <<<"$JOB")
C=$(submit "$CAROL" --aws-role=ad <<<"$JOB")
check "sbatch as $ADA and $CAROL accepted ($A $C)" test -n "$A" -a -n "$C"
lo=$(runuser -l alice -c "sbatch --aws-role=ad --wrap true" 2>&1)
check_contains "local alice is not $ADA: names match exactly, sbatch refuses her" "user alice may not use role ad" "$lo"
for j in "$A" "$C"; do slurm_job_wait "$j" 90 >/dev/null; done
check_eq "$ADA (allow_users) gets the role in her job" \
  "ARN=arn:aws:sts::123456789012:assumed-role/ad/slurm-$A-0" "$(grep ^ARN= "$ADA_OUT/$A.out")"
check_eq "$CAROL (group '$DU') gets it in his" \
  "ARN=arn:aws:sts::123456789012:assumed-role/ad/slurm-$C-0" "$(grep ^ARN= "$CAROL_OUT/$C.out")"
sent=$(sent_params "$PROXY" "$XPATH")
check_contains "the wire: $ADA's SourceIdentity and tag as NSS gives the name" \
  "RoleSessionName=slurm-$A-0 SourceIdentity=$ADA Tags.member.1.Key=user Tags.member.1.Value=$ADA" "$sent"
check_contains "the wire: $CAROL's backslash escaped one to one (=5C), not dropped" \
  "RoleSessionName=slurm-$C-0 SourceIdentity=EXAMPLE=5Ccarol Tags.member.1.Key=user Tags.member.1.Value=EXAMPLE=5Ccarol" "$sent"
check_eq "two AssumeRole calls" 2 "$(grep -c . <<<"$sent")"
gone() { [ ! -e "/run/aws-role/$A" ] && [ ! -e "/run/aws-role/$C" ]; }
check "the epilogs leave no job directory behind" wait_for 30 gone

# --- a PBS prologue ---------------------------------------------------------------------
# As pbs_mom runs it: OpenPBS's three arguments, root, cwd /, empty environment.
pbs() { (cd / && env -i "$BIN/$1" --config "$MAP" "${@:2}" </dev/null >"$WORK/out" 2>"$WORK/err"); }
P=777.pbs-server
pbs aws-role-prolog "$P" "$CAROL" "$DU"
check_eq "PBS prologue for $CAROL in group '$DU' exits 0" 0 "$?"
check_eq "... his credentials are his alone (root's, an ACL for his uid)" "640 root:root user:$(id -u "$CAROL"):r--" \
  "$(stat -c '%a %U:%G' "/run/aws-role/$P/credentials.json") $(getfacl -cpn "/run/aws-role/$P/credentials.json" 2>/dev/null | grep '^user:[0-9]')"
pbs aws-role-epilog "$P" "$CAROL" "$DU"
check "... and the epilogue removes them" test ! -e "/run/aws-role/$P"
pbs aws-role-prolog 778.pbs-server "$CAROL" "$ADA"
check_eq "a group the user is not in ($ADA's own) is refused, exit 0 as for any bad argument (no hold)" 0 "$?"
check_contains "... saying so" "argument 3 (group) $ADA is not a group of user $CAROL" "$(cat "$WORK/err")"
check "... and writes no credentials" test ! -e "/run/aws-role/778.pbs-server/credentials.json"
check_contains "the wire: the PBS job's SourceIdentity is $CAROL's, escaped" \
  "RoleSessionName=pbs-$P SourceIdentity=EXAMPLE=5Ccarol" "$(sent_params "$PROXY" "$XPATH")"

finish
