# aws-role: give a PBS/Torque/OpenPBS job its AWS role in login shells.
# shellcheck shell=sh
#
# Install as /etc/profile.d/aws-role.sh (root, 0644). A PBS prologue cannot set the job's
# environment, so this snippet does it: when PBS_JOBID is set and the prologue
# (aws-role-prolog) left this job's AWS config on the node, it points the AWS SDKs and CLI
# at it, exactly as the Slurm plugin does (core/src/delivery: environment, SHADOWING; a unit
# test there keeps this file in step with that list). When the role could not be given,
# it prints why on stderr and keeps the SDKs off the node's own instance role.
#
# AWS_ROLE_BASE_DIR overrides the map's [node] base_dir (default /run/aws-role).
# POSIX sh: sourced by sh, bash, dash, ksh and zsh login shells. It never exits.

if [ -n "${PBS_JOBID:-}" ]; then
    aws_role_dir=
    case $PBS_JOBID in
        */* | .*) ;;
        *)
            # The job's directory name: the id with '[' and ']' mapped to '_' (JobId::dir_name).
            aws_role_dir="${AWS_ROLE_BASE_DIR:-/run/aws-role}/$(printf '%s' "$PBS_JOBID" | sed 's/[][]/_/g')"
            ;;
    esac
    if [ -n "$aws_role_dir" ] && [ -r "$aws_role_dir/config" ]; then
        # Inherited credentials would shadow the job's role.
        unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
            AWS_CREDENTIAL_EXPIRATION AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN \
            AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
            AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE AWS_EC2_METADATA_SERVICE_ENDPOINT
        AWS_CONFIG_FILE="$aws_role_dir/config"
        AWS_SHARED_CREDENTIALS_FILE=/dev/null
        AWS_ROLE_CREDENTIALS_FILE="$aws_role_dir/credentials"
        CPL_AWS_CREDENTIALS_FILE="$aws_role_dir/credentials"
        AWS_EC2_METADATA_DISABLED=true
        AWS_SDK_LOAD_CONFIG=1
        export AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_ROLE_CREDENTIALS_FILE \
            CPL_AWS_CREDENTIALS_FILE AWS_EC2_METADATA_DISABLED AWS_SDK_LOAD_CONFIG
        # The region of the job's config, for tools that ignore the config file.
        aws_role_region=$(sed -n 's/^region[[:space:]]*=[[:space:]]*\([a-z0-9-]\{1,64\}\)[[:space:]]*$/\1/p' "$aws_role_dir/config" | head -n 1)
        if [ -n "$aws_role_region" ]; then
            AWS_REGION=$aws_role_region
            AWS_DEFAULT_REGION=$aws_role_region
            export AWS_REGION AWS_DEFAULT_REGION
        fi
        # The node's credentials endpoint, when the prolog gave the job a URL and token
        # (core/src/delivery/endpoint.rs: 64 hex digits; a URL without quotes or spaces).
        if [ -r "$aws_role_dir/endpoint-url" ] && [ -r "$aws_role_dir/endpoint-token" ]; then
            aws_role_url=$(cat "$aws_role_dir/endpoint-url")
            aws_role_token=$(cat "$aws_role_dir/endpoint-token")
            case $aws_role_url in
                http://*[!A-Za-z0-9:/._\[\]-]*) aws_role_url= ;;
                http://*) ;;
                *) aws_role_url= ;;
            esac
            case $aws_role_token in
                *[!0-9a-f]*) aws_role_token= ;;
            esac
            if [ -n "$aws_role_url" ] && [ ${#aws_role_token} -eq 64 ]; then
                AWS_CONTAINER_CREDENTIALS_FULL_URI=$aws_role_url
                AWS_CONTAINER_AUTHORIZATION_TOKEN=$aws_role_token
                AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$aws_role_dir/endpoint-token"
                export AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
                    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
            fi
        fi
    elif [ -n "$aws_role_dir" ] && [ -r "$aws_role_dir/failure.json" ]; then
        aws_role_reason=$(sed -n '/^[[:space:]]*"reason":/{s/^[[:space:]]*"reason":[[:space:]]*"\(.*\)",[[:space:]]*$/\1/;s/\\"/"/g;p;}' "$aws_role_dir/failure.json")
        printf 'aws-role: this job has no AWS credentials: %s\n' \
            "${aws_role_reason:-the AWS role of this job could not be given}" >&2
        # Never fall back to the node's own role instead of the job's.
        AWS_EC2_METADATA_DISABLED=true
        export AWS_EC2_METADATA_DISABLED
    fi
    unset aws_role_dir aws_role_reason aws_role_region aws_role_url aws_role_token
fi
