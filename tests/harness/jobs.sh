#!/usr/bin/env bash
# Submitting test jobs to the single-node cluster as an unprivileged user, for the e2e
# suites. Source it after tests/lib.sh; needs STS and VENV.
#
#   jobs_init USER DIR [USER DIR ...]   where each user's job output goes (%j.out)
#   submit USER SBATCH-ARGS... <<script prints the job id; sbatch's stderr goes to $WORK_ERR
#   job_out ID                          the output of the first user's job ID
#   state_of ID                         its JobState
#   wait_running ID FILE                until the job runs and FILE exists (30 s)

declare -A JOB_DIRS=()
JOB_FIRST_DIR=
WORK_ERR=$(mktemp)
jobs_init() {
  JOB_FIRST_DIR=$2
  while [ $# -ge 2 ]; do
    JOB_DIRS[$1]=$2
    shift 2
  done
}
# runuser -l gives the clean login environment a user's shell would.
submit() {
  local user=$1 script
  shift
  script=$(cat)
  runuser -l "$user" -c "$(printf '%q ' sbatch --parsable -o "${JOB_DIRS[$user]}/%j.out" "$@") <<'JOB'
#!/bin/bash
STS=$STS
VENV=$VENV
$script
JOB" 2>"$WORK_ERR" | tail -n1
}
job_out() { cat "$JOB_FIRST_DIR/$1.out" 2>/dev/null; }
state_of() { sl scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[^ ]*' | cut -d= -f2; }
wait_running() {
  local i
  for ((i = 0; i < 150; i++)); do
    [ "$(state_of "$1")" = RUNNING ] && [ -e "$2" ] && return 0
    sleep 0.2
  done
  return 1
}
