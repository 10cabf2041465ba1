"""aws-role: OpenPBS/PBS Pro ``execjob_launch`` hook.

A PBS prologue cannot set the job's environment. This hook does, for every task the MOM
launches: when aws-role-prolog left the job's AWS config on this node
(``<base_dir>/<job id with [ ] mapped to _>/config``), it points the AWS SDKs and CLI at it
and removes inherited variables that would shadow the job's role -- the same variables as
the Slurm plugin and ``/etc/profile.d/aws-role.sh`` (core/src/delivery/). When the role
could not be given (``failure.json``), it logs why and disables the instance metadata
fallback, so the job never silently runs with the node's own role.

Install (see docs/admin-guide.md, "PBS/Torque and OpenPBS")::

    qmgr -c "create hook aws_role_launch event=execjob_launch"
    qmgr -c "import hook aws_role_launch application/x-python default aws_role_launch_hook.py"

Optional hook configuration (JSON, ``{"base_dir": "/run/aws-role"}``)::

    qmgr -c "import hook aws_role_launch application/x-config default aws_role_launch.json"
"""

import json
import os
import re

import pbs

BASE_DIR = "/run/aws-role"

# core::delivery::SHADOWING
SHADOWING = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
)

# core::scheduler::pbs::parse_job_id: digits first, [A-Za-z0-9._-], one "[n]" after the sequence number.
_JOB_ID = re.compile(r"[0-9]+(\[[0-9]+\])?[A-Za-z0-9._-]*")


def job_dir(job_id, base_dir=BASE_DIR):
    """The job's directory (JobId::dir_name), or None for an id aws-role would refuse."""
    if not isinstance(job_id, str) or len(job_id) > 128 or ".." in job_id:
        return None
    if not _JOB_ID.fullmatch(job_id):
        return None
    return os.path.join(base_dir, job_id.replace("[", "_").replace("]", "_"))


# core::delivery::endpoint::is_token: 64 lowercase hex digits, nothing else.
_TOKEN = re.compile(r"[0-9a-f]{64}")
# core::delivery::files::region_of: a plain region name on the config's region line.
_REGION = re.compile(r"^region\s*=\s*([a-z0-9-]{1,64})\s*$", re.MULTILINE)


def _read(path, limit=4096):
    try:
        with open(path) as f:
            return f.read(limit)
    except (OSError, UnicodeDecodeError):
        return None


def exports(directory):
    """core::delivery::environment(dir, None, None), in order: the files delivery's
    variables (the region from the job's config), then the endpoint's when the prolog
    left its URL and token."""
    credentials = os.path.join(directory, "credentials")
    out = [
        ("AWS_CONFIG_FILE", os.path.join(directory, "config")),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_ROLE_CREDENTIALS_FILE", credentials),
        ("CPL_AWS_CREDENTIALS_FILE", credentials),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_SDK_LOAD_CONFIG", "1"),
    ]
    region = _REGION.search(_read(os.path.join(directory, "config")) or "")
    if region:
        out += [("AWS_REGION", region.group(1)), ("AWS_DEFAULT_REGION", region.group(1))]
    url = _read(os.path.join(directory, "endpoint-url"))
    token = _read(os.path.join(directory, "endpoint-token"))
    if url and token and _TOKEN.fullmatch(token) and url.startswith("http://") and url.isprintable() and " " not in url:
        out += [
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", os.path.join(directory, "endpoint-token")),
        ]
    return out


def _remove(env, name):
    if name in env:
        try:
            del env[name]
        except Exception:  # an environment object without deletion: make it empty
            env[name] = ""


def apply(env, job_id, base_dir=BASE_DIR, isfile=os.path.isfile):
    """Updates ``env`` (a mapping) for job ``job_id``; returns what was done:
    "role", "failed", "none" (no files: the job has no role) or "invalid" (bad id)."""
    directory = job_dir(job_id, base_dir)
    if directory is None:
        return "invalid"
    if isfile(os.path.join(directory, "config")):
        for name in SHADOWING:
            _remove(env, name)
        for name, value in exports(directory):
            env[name] = value
        return "role"
    if isfile(os.path.join(directory, "failure.json")):
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        return "failed"
    return "none"


# The largest failure record read (aws-role writes far less); the longest reason logged.
RECORD_MAX = 64 * 1024
REASON_MAX = 500


def one_line(text, limit=REASON_MAX):
    """Untrusted text for one log line: control characters escaped, cut at `limit`
    characters (the same rule as aws-role's own text::one_line)."""
    out = []
    for n, c in enumerate(text):
        if n >= limit:
            out.append("\u2026")
            break
        out.append(c if c.isprintable() else c.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def failure_reason(job_id, base_dir=BASE_DIR):
    directory = job_dir(job_id, base_dir)
    try:
        with open(os.path.join(directory, "failure.json")) as f:
            return one_line(str(json.loads(f.read(RECORD_MAX)).get("reason", "")))
    except Exception:
        return ""


def configured_base_dir():
    name = getattr(pbs, "hook_config_filename", None)
    if not name:
        return BASE_DIR
    try:
        with open(name) as f:
            base = json.load(f).get("base_dir", BASE_DIR)
    except Exception:
        return BASE_DIR
    return base if isinstance(base, str) and base.startswith("/") else BASE_DIR


def main():
    e = pbs.event()
    if e.type != pbs.EXECJOB_LAUNCH:
        e.accept()
        return
    job_id = str(e.job.id)
    base = configured_base_dir()
    what = apply(e.env, job_id, base)
    if what == "role":
        pbs.logmsg(pbs.LOG_DEBUG, "aws-role: job %s uses its AWS role" % job_id)
    elif what == "failed":
        reason = failure_reason(job_id, base)
        pbs.logmsg(
            pbs.LOG_WARNING,
            "aws-role: job %s has no AWS credentials: %s" % (one_line(job_id, 200), reason),
        )
    elif what == "invalid":
        pbs.logmsg(pbs.LOG_WARNING, "aws-role: job id %r refused" % job_id[:200])
    # Never reject: a job without AWS credentials still runs (like the prologue's exit 0).
    e.accept()


main()
