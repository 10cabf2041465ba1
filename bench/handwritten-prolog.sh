#!/bin/bash
# The usual hand-written alternative to aws-role-prolog, for comparison in bench/run.sh
# (section 1 (b)): a Slurm Prolog in bash that calls `aws sts assume-role` and writes an
# INI credentials file for the job's user, without jq. It is deliberately minimal (one
# role, one allowed user, no walltime, no failure record, no refresh): whatever it
# leaves out would only make it slower. Run by bench.py exactly like aws-role-prolog
# (root, empty environment plus the Prolog variables).
#
#   handwritten-prolog.sh SETTINGS   SETTINGS defines AWS, ENDPOINT, NODE_CREDENTIALS,
#                                    BASE, ROLE, ROLE_ARN, ALLOWED_USER (site constants)
set -euo pipefail
PATH=/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck source=/dev/null
. "$1"

[ "${SPANK_AWS_ROLE:-}" = "$ROLE" ] || exit 0
[ "$SLURM_JOB_USER" = "$ALLOWED_USER" ] || { echo "role $ROLE not allowed for $SLURM_JOB_USER" >&2; exit 0; }

out=$(AWS_SHARED_CREDENTIALS_FILE=$NODE_CREDENTIALS AWS_CONFIG_FILE=/dev/null \
  AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  "$AWS" --endpoint-url "$ENDPOINT" sts assume-role --role-arn "$ROLE_ARN" \
  --role-session-name "slurm-$SLURM_JOB_ID-0" --duration-seconds 3600 \
  --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken,Expiration]' --output text)
read -r key secret token expiration <<<"$out"

umask 077
dir=$BASE/$SLURM_JOB_ID
install -d -m 0711 "$BASE" "$dir"
tmp=$(mktemp "$dir/.credentials.XXXXXX")
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n# expires %s\n' \
  "$key" "$secret" "$token" "$expiration" >"$tmp"
chown "$SLURM_JOB_UID:$SLURM_JOB_GID" "$tmp"
mv "$tmp" "$dir/credentials"
