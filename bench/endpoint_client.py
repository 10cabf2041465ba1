#!/usr/bin/env python3
"""Section 6's client (bench.py endpoint), run as the jobs' user with the bench venv's
python: prints one JSON object of measurements on stdout.

    endpoint_client.py first   JOB_DIR RUNS      fresh processes: botocore's first credentials
    endpoint_client.py refresh JOB_DIR RUNS      one process: botocore's forced refreshes
    endpoint_client.py load    BASE JOBS SECS K  K workers for SECS: fetches over JOBS jobs
                                                 (endpoint) and helper runs (credential_process)

Each mechanism is measured with only its own variables: credential_process through the
job's AWS config (the helper), the endpoint through AWS_CONTAINER_CREDENTIALS_FULL_URI and
the token (no config file). Times are wall clock around botocore's own call (first,
refresh) or one whole fetch (load).
"""
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import time
import urllib.parse

HELPER = os.environ.get("AWS_ROLE_BENCH_HELPER", "/usr/libexec/aws-role/aws-role-credentials")


def env_for(mech, job_dir):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_DEFAULT_REGION": "us-east-1"}
    if mech == "process":
        env["AWS_CONFIG_FILE"] = os.path.join(job_dir, "config")
    else:
        env["AWS_CONFIG_FILE"] = "/dev/null"
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = read(job_dir, "endpoint-url")
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = read(job_dir, "endpoint-token")
    return env


def read(job_dir, name):
    with open(os.path.join(job_dir, name)) as f:
        return f.read().strip()


FIRST = """
import sys, time, botocore.session
s = botocore.session.get_session()
t0 = time.perf_counter()
c = s.get_credentials().get_frozen_credentials()
t1 = time.perf_counter()
assert c.access_key, "no credentials"
print((t1 - t0) * 1000)
"""

REFRESH = """
import json, sys, time, botocore.session
s = botocore.session.get_session()
c = s.get_credentials()
c.get_frozen_credentials()
out = []
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    c._protected_refresh(is_mandatory=True)
    out.append((time.perf_counter() - t0) * 1000)
    assert c.get_frozen_credentials().access_key
print(json.dumps(out))
"""


def first(job_dir, runs):
    res = {}
    for mech in ("process", "endpoint"):
        times = []
        for _ in range(runs):
            p = subprocess.run([sys.executable, "-c", FIRST], env=env_for(mech, job_dir),
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                raise SystemExit(f"{mech}: {p.stderr.strip()[-300:]}")
            times.append(float(p.stdout))
        res[mech] = times
    return res


def refresh(job_dir, runs):
    res = {}
    for mech in ("process", "endpoint"):
        p = subprocess.run([sys.executable, "-c", REFRESH, str(runs)], env=env_for(mech, job_dir),
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise SystemExit(f"{mech}: {p.stderr.strip()[-300:]}")
        res[mech] = json.loads(p.stdout)
    return res


def fetch_worker(args):
    jobs, secs, mech = args
    n, errors, t_end = 0, 0, time.monotonic() + secs
    while time.monotonic() < t_end:
        url, token, job_dir = jobs[n % len(jobs)]
        if mech == "endpoint":
            u = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            try:
                conn.request("GET", u.path, headers={"Authorization": token})
                r = conn.getresponse()
                ok = r.status == 200 and b"AccessKeyId" in r.read()
            except OSError:
                ok = False
            finally:
                conn.close()
        else:
            p = subprocess.run([HELPER, job_dir], capture_output=True, timeout=10)
            ok = p.returncode == 0 and b"AccessKeyId" in p.stdout
        n += 1
        errors += 0 if ok else 1
    return n, errors


def load(base, job_ids, secs, k):
    jobs = []
    for j in job_ids:
        d = os.path.join(base, j)
        jobs.append((read(d, "endpoint-url"), read(d, "endpoint-token"), d))
    res = {}
    for mech in ("process", "endpoint"):
        # Each worker starts at another job, so the K of them spread over all of them.
        shares = [(jobs[i * len(jobs) // k:] + jobs[: i * len(jobs) // k], secs, mech) for i in range(k)]
        t0 = time.monotonic()
        with multiprocessing.Pool(k) as pool:
            counts = pool.map(fetch_worker, shares)
        wall = time.monotonic() - t0
        res[mech] = {"requests": sum(c[0] for c in counts), "errors": sum(c[1] for c in counts), "secs": wall}
    return res


def main():
    mode = sys.argv[1]
    if mode == "first":
        out = first(sys.argv[2], int(sys.argv[3]))
    elif mode == "refresh":
        out = refresh(sys.argv[2], int(sys.argv[3]))
    else:
        out = load(sys.argv[2], sys.argv[3].split(","), float(sys.argv[4]), int(sys.argv[5]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
