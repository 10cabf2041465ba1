#!/usr/bin/env bash
# The aws-role demo. On a fresh Debian 12 machine, as root:
#
#     bash tests/demo.sh
#
# Installs Slurm, munge and the STS emulator, builds and installs aws-role, brings up a
# one-node cluster, then submits, as the unprivileged user alice,
#
#     sbatch --aws-role=demo job.sh
#
# and prints the job's output: the identity the AWS CLI inside the job got, an
# assumed-role ARN ending in /slurm-<jobid>-0.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
H=$REPO/tests/harness
# shellcheck source=lib.sh
. "$REPO/tests/lib.sh"

t0=$(date +%s)
# Only what the demo needs (tests/run.sh installs the rest); without the RPM tools, only
# the .deb is built.
bash "$H/deps.sh" --demo
command -v cargo-generate-rpm >/dev/null || export AWS_ROLE_PACKAGES=deb
bash "$H/cluster.sh" up
bash "$H/sts.sh" up
bash "$H/install.sh"
bash "$H/site.sh" write
STS=$(bash "$H/sts.sh" url)

out=/home/alice/aws-role-demo
runuser -u alice -- mkdir -p "$out"
cat >"$out/job.sh" <<JOB
#!/bin/bash
# A researcher's job: nothing AWS-specific is configured; the SDKs find the role alone.
echo "job \$SLURM_JOB_ID on \$(hostname -s) as \$(id -un), AWS role \$AWS_ROLE_NAME"
$VENV/bin/aws --endpoint-url $STS sts get-caller-identity
JOB
chown alice: "$out/job.sh"

echo
echo "+ runuser -l alice -c 'sbatch --aws-role=demo job.sh'"
id=$(runuser -l alice -c "cd $out && sbatch --parsable --aws-role=demo -o $out/%j.out job.sh")
echo "Submitted batch job $id"
st=$(slurm_job_wait "$id" 120) || true
echo "job $id: $st"
echo "--- job output ($out/$id.out) ---"
cat "$out/$id.out"
grep -q "assumed-role/demo/slurm-$id-0" "$out/$id.out"
echo "--- the demo took $(($(date +%s) - t0)) s, set-up included ---"
