#!/usr/bin/env python3
"""Measurement helper of bench/run.sh (run.sh sets everything up; this only measures).

    bench.py latency   CONFIG.json   section 1: one prolog vs the floor vs bash + AWS CLI
    bench.py burst     CONFIG.json   section 2: N prologs at once through the fault proxy
    bench.py footprint CONFIG.json   section 3: peak RSS (plugin size is done by run.sh)
    bench.py cluster   CONFIG.json   section 4: srun/sbatch on the test cluster, with and without the plugin
    bench.py lifetime  CONFIG.json   section 5a: STS calls per job over its life (--plan)
    bench.py refresher CONFIG.json   section 5b: the refresher daemon with N live jobs
    bench.py endpoint  CONFIG.json   section 6: the credentials endpoint beside credential_process

Every program is started the way slurmd starts a Prolog: posix_spawn from this process
with an explicit environment (the same as `env -i VAR=... prog`: nothing inherited), cwd
/, stdin /dev/null, stdout/stderr to files. A time is wall clock from just before the
spawn to the moment wait4() returns the exit status: process creation, exec, dynamic
loading, the program's work and its exit are all inside it.

Prints the section's report on stdout; progress and diagnostics go to stderr. Exits 1 on
an error (a prolog that should have succeeded did not, a server that did not answer, ...),
never because the numbers are bad.
"""
import datetime
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

DEVNULL_IN = (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def spawn(argv, env, out="/dev/null", err="/dev/null"):
    """Starts argv[0] (an absolute path) like slurmd would; returns (pid, start_ns)."""
    actions = [
        DEVNULL_IN,
        (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    return pid, t0


def run(argv, env, out="/dev/null", err="/dev/null"):
    """Runs one program to its end; returns (wall seconds, exit code, ru_maxrss KiB)."""
    pid, t0 = spawn(argv, env, out, err)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e9, os.waitstatus_to_exitcode(status), ru.ru_maxrss


def pct(values, q):
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def ms(seconds):
    return f"{seconds * 1000:8.1f} ms"


def verdict(ok):
    return "met" if ok else "MISSED"


class Ctx:
    def __init__(self, path):
        with open(path) as f:
            self.c = json.load(f)
        self.work = self.c["work"]

    def __getitem__(self, k):
        return self.c[k]

    def job_env(self, job_id, role="demo"):
        """The Prolog environment of tests/integration/prolog.sh (a 90-minute job)."""
        return {
            "SLURM_JOB_ID": str(job_id),
            "SLURM_JOB_UID": str(self["uid"]),
            "SLURM_JOB_GID": str(self["gid"]),
            "SLURM_JOB_USER": self["user"],
            "SLURM_JOB_PARTITION": "debug",
            "SLURM_CLUSTER_NAME": "lab",
            "SLURM_JOB_RESTART_COUNT": "0",
            "SLURM_JOB_END_TIME": str(int(time.time()) + 5400),
            "SPANK_AWS_ROLE": role,
        }

    def prolog_argv(self, map_path):
        return [self["bin"] + "/aws-role-prolog", "--config", map_path]

    def epilog_argv(self, map_path):
        return [self["bin"] + "/aws-role-epilog", "--config", map_path]

    def err_file(self, tag):
        return os.path.join(self.work, f"err.{tag}")


def tail(path, n=600):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError as e:
        return f"({e})"


def job_outcome(base, job_id):
    """'ok' (credentials written), 'failed' (failure.json) or 'missing' (neither)."""
    d = os.path.join(base, str(job_id))
    if os.path.isfile(os.path.join(d, "credentials.json")) and not os.path.exists(
        os.path.join(d, "failure.json")
    ):
        return "ok"
    if os.path.isfile(os.path.join(d, "failure.json")):
        return "failed"
    return "missing"


def failure_reason(base, job_id):
    try:
        with open(os.path.join(base, str(job_id), "failure.json")) as f:
            return json.load(f).get("reason", "?")
    except (OSError, ValueError) as e:
        return f"(unreadable failure.json: {e})"


# ------------------------------------------------------------------------ section 1


def latency(ctx):
    runs = int(ctx["runs"])
    base, alt_base, port = ctx["base"], ctx["alt_base"], ctx["sts_port"]
    arn = "arn:aws:iam::123456789012:role/demo"
    job0 = int(ctx["job_base"])
    curl = shutil.which("curl", path="/usr/bin:/bin")
    py = ctx["venv"] + "/bin/python3"
    body = (
        f"Action=AssumeRole&Version=2011-06-15&RoleArn={arn}"
        "&RoleSessionName=slurm-{id}-0&DurationSeconds=3600"
    )
    auth = (
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDNODE000000000000/20260101/"
        "us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    py_client = (
        "import http.client,sys\n"
        "c=http.client.HTTPConnection('127.0.0.1',int(sys.argv[1]),timeout=30)\n"
        "c.request('POST','/',sys.argv[2],{'Content-Type':'application/x-www-form-urlencoded',"
        "'X-Amz-Date':'20260101T000000Z','Authorization':sys.argv[3].split(': ',1)[1]})\n"
        "r=c.getresponse();b=r.read()\n"
        "sys.exit(0 if r.status==200 and b'<AccessKeyId>' in b else 1)\n"
    )

    def prolog_check(b):
        def check(j):
            if job_outcome(b, j) != "ok":
                raise BenchError(
                    f"prolog for job {j} did not write credentials: "
                    f"{failure_reason(b, j)}; stderr: {tail(ctx.err_file(j))}"
                )
        return check

    def alt_check(j):
        if not os.path.isfile(os.path.join(alt_base, str(j), "credentials")):
            raise BenchError(f"hand-written prolog wrote no credentials for job {j}: {tail(ctx.err_file(f'alt.{j}'))}")
        shutil.rmtree(os.path.join(alt_base, str(j)))

    # name -> (argv, environment, check after the run, stderr file), each a function of the job id
    cmds = {
        "prolog": (
            lambda j: ctx.prolog_argv(ctx["map"]),
            ctx.job_env,
            prolog_check(base),
            ctx.err_file,
        ),
        "floor": (
            lambda j: [ctx["floor"], str(port), arn, f"slurm-{j}-0"],
            lambda j: {},
            None,
            lambda j: ctx.err_file(f"floor.{j}"),
        ),
        "python": (
            lambda j: [py, "-c", py_client, str(port), body.format(id=j), auth],
            lambda j: {},
            None,
            lambda j: ctx.err_file(f"python.{j}"),
        ),
        "handwritten": (
            lambda j: ["/bin/bash", ctx["handwritten"], ctx["handwritten_settings"]],
            ctx.job_env,
            alt_check,
            lambda j: ctx.err_file(f"alt.{j}"),
        ),
    }
    if ctx["disk_map"]:
        cmds["prolog_disk"] = (
            lambda j: ctx.prolog_argv(ctx["disk_map"]),
            ctx.job_env,
            prolog_check(ctx["disk_base"]),
            ctx.err_file,
        )
    # Diagnostics, not how slurmd runs the prolog. Start-up: the binary alone (exec, dynamic
    # linking, argument parsing, exit), no work.
    cmds["startup"] = (
        lambda j: [ctx["bin"] + "/aws-role-prolog", "--version"],
        lambda j: {},
        None,
        lambda j: ctx.err_file(f"startup.{j}"),
    )
    # Groups: a role with allow_groups, so the prolog asks NSS for the user's groups (it does
    # not when no role names a group, as in the bench's own map).
    cmds["prolog_groups"] = (
        lambda j: ctx.prolog_argv(ctx["groups_map"]),
        ctx.job_env,
        prolog_check(base),
        ctx.err_file,
    )
    if ctx["one_cert"]:
        # The same prolog with the OS CA store cut down to one certificate
        # (rustls-native-certs honours SSL_CERT_FILE/SSL_CERT_DIR). The prolog loads no CA
        # certificate for an http:// endpoint, so this must match the prolog row; a gap
        # means the CA store is loaded again.
        cmds["prolog_onecert"] = (
            lambda j: ctx.prolog_argv(ctx["map"]),
            lambda j: {**ctx.job_env(j), "SSL_CERT_FILE": ctx["one_cert"], "SSL_CERT_DIR": "/nonexistent"},
            prolog_check(base),
            ctx.err_file,
        )
    if curl:
        cmds["curl"] = (
            lambda j: [curl, "-sS", "-f", "-o", "/dev/null", "-H", auth, "-H",
                       "X-Amz-Date: 20260101T000000Z", "--data", body.format(id=j),
                       f"http://127.0.0.1:{port}/"],
            lambda j: {},
            None,
            lambda j: ctx.err_file(f"curl.{j}"),
        )
    # Each prolog is followed by its epilog (timed too), as a job's end follows its start.
    epilogs = {"prolog": ("epilog", ctx["map"], base),
               "prolog_disk": ("epilog_disk", ctx["disk_map"], ctx["disk_base"]),
               "prolog_onecert": ("epilog_onecert", ctx["map"], base),
               "prolog_groups": ("epilog_groups", ctx["groups_map"], base)}
    times = {k: [] for k in cmds}
    times.update({e: [] for k, (e, _, _) in epilogs.items() if k in cmds})
    rng = random.Random(42)
    log(f"section 1: 1 warm-up round + {runs} rounds of {len(cmds)} programs, order shuffled per round")
    for rnd in range(runs + 1):
        j = job0 + rnd
        order = list(cmds)
        rng.shuffle(order)
        for name in order:
            argv, env, check, err = cmds[name]
            dt, rc, _ = run(argv(j), env(j), err=err(j))
            if rc != 0:
                raise BenchError(f"{name} (job {j}) exited {rc}: {tail(err(j))}")
            if check:
                check(j)
            if rnd > 0:
                times[name].append(dt)
            if name in epilogs:
                ename, emap, ebase = epilogs[name]
                dt, rc, _ = run(ctx.epilog_argv(emap), {"SLURM_JOB_ID": str(j)}, err=ctx.err_file(f"epi.{j}"))
                if rc != 0:
                    raise BenchError(f"epilog (job {j}) exited {rc}: {tail(ctx.err_file(f'epi.{j}'))}")
                if os.path.exists(os.path.join(ebase, str(j))):
                    raise BenchError(f"epilog for job {j} left {ebase}/{j} behind")
                if rnd > 0:
                    times[ename].append(dt)

    med = {k: statistics.median(v) for k, v in times.items()}
    fs = ctx["base_fs"]
    rows = [
        (f"aws-role-prolog, base_dir on {fs}", "prolog"),
        ("aws-role-epilog, right after it", "epilog"),
        (f"aws-role-prolog, base_dir on {ctx['disk_fs']} (this VM's /run)", "prolog_disk"),
        ("aws-role-epilog, right after it", "epilog_disk"),
        (f"diag: prolog ({fs}), CA store cut to 1 cert (= prolog)", "prolog_onecert"),
        (f"diag: prolog ({fs}), map with allow_groups (NSS lookup)", "prolog_groups"),
        ("diag: aws-role-prolog --version (start-up only)", "startup"),
        ("(a) floor: C client, one unsigned POST", "floor"),
        ("    ref: curl, same POST", "curl"),
        ("    ref: python3 http.client, same POST", "python"),
        ("(b) hand-written: bash + aws sts assume-role", "handwritten"),
    ]
    print(f"1. Prolog latency against moto: {runs} runs each after 1 warm-up round, wall time per process")
    print(f"   {'what':<58} {'median':>11} {'p90':>11} {'min':>11}")
    for label, k in rows:
        if times.get(k):
            v = times[k]
            print(f"   {label:<58} {ms(med[k])} {ms(pct(v, 0.9))} {ms(min(v))}")
    variants = [(k, w) for k, w in (("prolog", fs), ("prolog_disk", ctx["disk_fs"])) if k in med]
    for k, where in variants:
        r = med[k] / med["floor"]
        print(f"   {f'prolog ({where}) / floor':<34} = {r:6.2f}x   target <= 1.3x   {verdict(r <= 1.3):<6}"
              f"   (prolog - floor = {(med[k] - med['floor']) * 1000:+.1f} ms)")
    for k, where in variants:
        r = med["handwritten"] / med[k]
        print(f"   {f'hand-written / prolog ({where})':<34} = {r:6.1f}x   target >= 20x    {verdict(r >= 20)}")
    print("   every row: one process per run, root, started like slurmd starts a Prolog (empty environment +")
    print("   Prolog variables), timed from spawn to exit. floor = exec of a tiny C program + TCP connect +")
    print("   one AssumeRole POST + reading the answer: no signing, no config, no parsing, no files.")
    if "curl" in med:
        print(f"   (for reference: prolog / curl = {med['prolog'] / med['curl']:.2f}x, "
              f"prolog / python http.client = {med['prolog'] / med['python']:.2f}x)")


# ------------------------------------------------------------------------ section 2


def proxy_stats(url):
    with urllib.request.urlopen(url + "/stats", timeout=10) as r:
        return json.load(r)


def listen_overflows():
    """The kernel's count of connections dropped because a listen queue was full
    (TcpExt ListenOverflows: for this network namespace, not only the bench's servers)."""
    lines = open("/proc/net/netstat").read().split("\n")
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            return int(dict(zip(head.split()[1:], vals.split()[1:]))["ListenOverflows"])
    return 0


def exec_child(argv, env, err, gate=None):
    """In a forked child: stdin and stdout /dev/null, stderr to `err`, with a `gate` pipe
    (read end, write end) wait for its EOF, then exec argv; never returns (exit 127 if
    anything failed)."""
    try:
        if gate is not None:
            os.close(gate[1])
        os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
        os.dup2(os.open("/dev/null", os.O_WRONLY), 1)
        os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
        if gate is not None:
            os.read(gate[0], 1)  # EOF when the parent closes its write end
        os.execve(argv[0], argv, env)
    finally:
        os._exit(127)


def release_together(procs):
    """Runs every (argv, env, stderr file) at the same instant: all are forked first and
    block on a pipe; closing its write end releases them together and each execs its
    program (spawning 200 one by one would take ~1 s here). Returns, per index, (seconds
    from the release to its exit, exit code, CPU seconds user+sys), and the total wall."""
    sys.stdout.flush()
    sys.stderr.flush()
    gate_r, gate_w = os.pipe()
    started = {}
    for i, (argv, env, err) in enumerate(procs):
        pid = os.fork()
        if pid == 0:  # child: only open/dup2/read/execve, then _exit if anything failed
            exec_child(argv, env, err, gate=(gate_r, gate_w))
        started[pid] = i
    os.close(gate_r)
    t0 = time.perf_counter_ns()
    os.close(gate_w)
    res = {}
    while len(res) < len(procs):
        pid, status, ru = os.wait4(-1, 0)
        t1 = time.perf_counter_ns()
        if pid in started:
            res[started[pid]] = ((t1 - t0) / 1e9, os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime)
    total = (time.perf_counter_ns() - t0) / 1e9
    return [res[i] for i in range(len(procs))], total


def burst(ctx):
    n = int(ctx["burst"])
    base = ctx["base"]
    mode = ctx["burst_mode"]
    job0 = int(ctx["job_base"]) + 100000
    mode_key = mode.split("/")[0]
    arn = "arn:aws:iam::123456789012:role/demo"
    frac = float(mode.split("/")[1]) if mode_key == "throttle" and "/" in mode else 0.0

    # Baseline at the same instant: N floor clients (one POST each, no retry) straight to
    # moto, no faults: what the emulator alone needs to serve N calls at once here. (Not
    # through the proxy: see the note on listen queues printed below.)
    log(f"section 2: {n} floor clients at once to moto, then {n} prologs through the proxy ({mode})")
    o0 = listen_overflows()
    fres, ftotal = release_together(
        [([ctx["floor"], str(ctx["sts_port"]), arn, f"slurm-{job0 + i}-0"], {}, ctx.err_file(f"bfloor.{i}"))
         for i in range(n)])
    fbad = sum(1 for _, rc, _ in fres if rc != 0)
    o1 = listen_overflows()

    before = proxy_stats(ctx["proxy_url"])
    jobs = [job0 + i for i in range(n)]
    res, total = release_together(
        [(ctx.prolog_argv(ctx["burst_map"]), ctx.job_env(j), ctx.err_file(j)) for j in jobs])
    after = proxy_stats(ctx["proxy_url"])
    o2 = listen_overflows()

    outcomes = {j: job_outcome(base, j) for j in jobs}
    bad_rc = [j for j, (_, rc, _) in zip(jobs, res) if rc != 0]
    missing = [j for j, o in outcomes.items() if o == "missing"]
    if bad_rc or missing:
        j = (bad_rc + missing)[0]
        raise BenchError(
            f"{len(bad_rc)} prologs exited non-zero and {len(missing)} wrote neither credentials "
            f"nor failure.json (e.g. job {j}: {tail(ctx.err_file(j))})"
        )
    ok = sum(1 for o in outcomes.values() if o == "ok")
    reasons = {}
    for j, o in outcomes.items():
        if o == "failed":
            r = failure_reason(base, j)
            reasons[r] = reasons.get(r, 0) + 1
    calls = after["calls"].get(mode_key, 0) - before["calls"].get(mode_key, 0)
    faulted = after["faulted"] - before["faulted"]
    w = [t for t, _, _ in res]
    fw = [t for t, _, _ in fres]
    cpu = statistics.median(c for _, _, c in res)

    # The epilogs of the burst, also all at once (a job array ending).
    eres, etotal = release_together(
        [(ctx.epilog_argv(ctx["burst_map"]), {"SLURM_JOB_ID": str(j)}, ctx.err_file(f"epi.{j}")) for j in jobs])
    if any(rc != 0 for _, rc, _ in eres):
        raise BenchError("an epilog of the burst exited non-zero")
    left = [j for j in jobs if os.path.exists(os.path.join(base, str(j)))]
    if left:
        raise BenchError(f"{len(left)} job dirs left after the burst's epilogs (e.g. {left[0]})")

    def dist(v):
        return (f"p50 {ms(pct(v, 0.5)).strip():>9}, p99 {ms(pct(v, 0.99)).strip():>9}, "
                f"last {ms(max(v)).strip():>9}")

    print(f"2. Burst: {n} prologs released at the same instant, against the fault proxy in {mode} mode")
    print(f"   map [sts]: timeout = \"{ctx['burst_timeout']}\" (deadline for all attempts), "
          f"max_attempts = {ctx['burst_attempts']}; base_dir on {ctx['base_fs']}")
    chance = ""
    if 0 < frac < 1:
        att = int(ctx["burst_attempts"])
        chance = f" (expected by chance: {n} x {frac:g}^{att} = {n * frac ** att:.2f} jobs throttled {att} times in a row)"
    print(f"   success               {ok}/{n} ({100 * ok / n:.1f}%) wrote credentials; {n - ok} wrote failure.json{chance}")
    for r, c in sorted(reasons.items(), key=lambda x: -x[1]):
        print(f"     {c:4d} x {r[:150]}")
    print("   wall time of each process from the common release to its exit; 'last' = the burst's total")
    print(f"   prolog, release->exit {dist(w)}   listen-queue drops {o2 - o1}")
    print(f"   baseline: floor x{n:<5} {dist(fw)}   listen-queue drops {o1 - o0}   ({fbad} failed)")
    print(f"     (the floor client, {n} at once straight to moto: no proxy, no faults, no retries)")
    print(f"   burst / baseline      {max(w) / max(fw):.1f}x (last exit), {pct(w, 0.5) / pct(fw, 0.5):.1f}x (p50)")
    exp = f"; {n / (1 - frac):.0f} expected for {frac:.0%} throttling with no job giving up" if 0 < frac < 1 else ""
    print(f"   STS calls (proxy)     {calls} for {n} jobs = {calls / n:.2f} per job, {faulted} throttled{exp}")
    print(f"   CPU per prolog        {cpu * 1000:.1f} ms (median, user+sys)")
    print(f"   {n} epilogs at once    total wall {ms(etotal).strip()}; no job dir left")
    if o2 - o1 or o1 - o0:
        print("   note: listen-queue drops (kernel TcpExt ListenOverflows, whole machine) are connection")
        print("   attempts refused because a server's accept queue was full; the client's SYN is resent")
        print("   after 1 s, then 3 s, ... The fault proxy and moto listen with a backlog of 128, and")
        print("   both are single Python processes: a burst's tail is partly that.")


# ------------------------------------------------------------------------ section 3


def footprint(ctx):
    runs = int(ctx["footprint_runs"])
    base, alt_base = ctx["base"], ctx["alt_base"]
    tbin = ctx["time_bin"]
    job0 = int(ctx["job_base"]) + 200000

    def maxrss(argv, env, tag):
        out = os.path.join(ctx.work, f"rss.{tag}")
        _, rc, _ = run([tbin, "-f", "%M", "-o", out, *argv], env, err=ctx.err_file(f"rss.{tag}"))
        if rc != 0:
            raise BenchError(f"{argv[0]} ({tag}) exited {rc}: {tail(ctx.err_file(f'rss.{tag}'))}")
        with open(out) as f:
            return int(f.read().split()[-1])  # KiB

    rss = {k: [] for k in ("true", "credentials", "prolog", "epilog", "handwritten")}
    log(f"section 3: peak RSS, {runs} runs each (via {tbin})")
    for i in range(runs):
        j = job0 + i
        rss["true"].append(maxrss(["/bin/true"], {}, f"true.{j}"))
        rss["prolog"].append(maxrss(ctx.prolog_argv(ctx["map"]), ctx.job_env(j), f"prolog.{j}"))
        if job_outcome(base, j) != "ok":
            raise BenchError(f"prolog for job {j} wrote no credentials: {failure_reason(base, j)}")
        # The credential_process as SDKs run it (here as root: same code path, same memory).
        rss["credentials"].append(
            maxrss([ctx["bin"] + "/aws-role-credentials", os.path.join(base, str(j))], {}, f"cred.{j}"))
        rss["epilog"].append(maxrss(ctx.epilog_argv(ctx["map"]), {"SLURM_JOB_ID": str(j)}, f"epilog.{j}"))
        rss["handwritten"].append(
            maxrss(["/bin/bash", ctx["handwritten"], ctx["handwritten_settings"]], ctx.job_env(j), f"alt.{j}"))
        shutil.rmtree(os.path.join(alt_base, str(j)), ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rss.items()}
    mib = lambda kib: f"{kib / 1024:6.1f} MiB"  # noqa: E731
    print(f"3. Footprint: peak RSS (ru_maxrss via {tbin} -f %M), median and max of {runs} runs")
    rows = [
        (f"aws-role-prolog (one job, base_dir on {ctx['base_fs']})", "prolog", "< 16 MiB"),
        ("aws-role-epilog", "epilog", "< 16 MiB"),
        ("baseline: /bin/true", "true", ""),
        ("baseline: aws-role-credentials (credential_process)", "credentials", ""),
        ("(b) hand-written: bash + aws CLI (largest process)", "handwritten", ""),
    ]
    print(f"   {'what':<52} {'median':>10} {'max':>10}   target")
    for label, k, target in rows:
        line = f"   {label:<52} {mib(med[k])} {mib(max(rss[k]))}"
        if target:
            line += f"   {target:<9} {verdict(max(rss[k]) < 16 * 1024)}"
        print(line)
    print(f"   prolog / /bin/true = {med['prolog'] / med['true']:.1f}x, prolog / credential helper = "
          f"{med['prolog'] / med['credentials']:.1f}x, epilog / /bin/true = {med['epilog'] / med['true']:.1f}x, "
          f"hand-written / prolog = {med['handwritten'] / med['prolog']:.1f}x")


# ------------------------------------------------------------------------ section 5a

PLAN_RE = re.compile(
    r"\((\d+) s\), session cap (.+?), lead (.+?) \+ jitter up to (.+?), margin (.+?): "
    r"(\d+) AssumeRole calls \(1 \+ (\d+) refreshes\)")
UNITS = {"s": 1, "m": 60, "h": 3600, "day": 86400, "days": 86400, "d": 86400}


def human_secs(text):
    """Seconds of a humantime duration as --plan prints it ("1h", "20m", "11h 40m", "1day")."""
    parts = re.findall(r"(\d+)\s*([a-z]+)", text)
    if not parts or any(u not in UNITS for _, u in parts):
        raise BenchError(f"cannot read the duration {text!r}")
    return sum(int(n) * UNITS[u] for n, u in parts)


def plan(ctx, limit, role):
    """aws-role-refresher --plan: (job length s, calls, cap s, lead s, jitter s, margin s)."""
    argv = [ctx["bin"] + "/aws-role-refresher", "--plan", limit]
    if role:
        argv += ["--role", role]
    argv += ["--config", ctx["plan_map"]]
    p = subprocess.run(argv, capture_output=True, text=True, env={}, cwd="/", timeout=60)
    m = PLAN_RE.search(p.stdout)
    if p.returncode != 0 or not m:
        raise BenchError(f"{' '.join(argv)} exited {p.returncode}: {p.stdout.strip()} {p.stderr.strip()}")
    length, calls, refreshes = int(m[1]), int(m[6]), int(m[7])
    if calls != 1 + refreshes:
        raise BenchError(f"--plan says {calls} calls but 1 + {refreshes} refreshes")
    return length, calls, human_secs(m[2]), human_secs(m[3]), human_secs(m[4]), human_secs(m[5])


def closed_form(length, cap, lead, margin, jitter=0):
    """1 + ceil((walltime + margin - cap) / (cap - lead - jitter)) if walltime + margin > cap, else 1."""
    over = length + margin - cap
    return 1 if over <= 0 else 1 + math.ceil(over / (cap - lead - jitter))


def lifetime(ctx):
    limits = [("1:00:00", "1 h"), ("1-00:00:00", "1 d"), ("7-00:00:00", "7 d"), ("UNLIMITED", "365 d")]
    roles = [(None, "default cap"), ("long", "role 'long'")]
    samples = int(ctx["plan_samples"])
    log(f"section 5a: aws-role-refresher --plan, {len(limits) * len(roles)} cases x {samples} samples")
    got = {}
    for i in range(samples):
        if i:
            time.sleep(1.1)  # the jitter is a hash of the job and the second the session starts
        for limit, _ in limits:
            for role, _ in roles:
                length, calls, cap, lead, jitter, margin = plan(ctx, limit, role)
                got.setdefault((limit, role), []).append(calls)
                got[(limit, role, "t")] = (length, cap, lead, jitter, margin)
    t = {role: got[(limits[0][0], role, "t")][1:] for role, _ in roles}
    _, lead, jitter, margin = t[None]
    caps = {role: t[role][0] for role, _ in roles}
    dur = lambda s: f"{s // 3600}h" if s % 3600 == 0 else f"{s // 60}m"  # noqa: E731
    print(f"5a. STS calls per job over its life: aws-role-refresher --plan TIME_LIMIT [--role long], "
          f"{samples} samples each, 1 s apart")
    print(f"   map: default timing (lead {dur(lead)} + jitter up to {dur(jitter)}, margin {dur(margin)}); "
          f"session cap {dur(caps[None])} (the default, role chaining) and {dur(caps['long'])} "
          f"(a role with max_session = \"12h\")")
    print("   formula = no jitter: 1 + ceil((walltime + margin - cap) / (cap - lead)) when walltime + margin > cap, else 1")
    print("   ~jitter = the same with cap - lead - jitter/2 (a refresh every 37.5 min on average instead of 40)")
    head = "".join(f"   {'--plan':>11} {'formula':>8} {'~jitter':>8}" for _ in roles)
    print(f"   {'':<22}" + "".join(f"   {f'cap {dur(caps[r])} ({n})':>29}" for r, n in roles))
    print(f"   {'time limit':<22}{head}")
    for limit, name in limits:
        row = f"   {f'{limit} ({name})':<22}"
        for role, _ in roles:
            calls = got[(limit, role)]
            length, cap = got[(limit, role, "t")][:2]
            shown = f"{min(calls)}" if min(calls) == max(calls) else f"{min(calls)}-{max(calls)}"
            row += (f"   {shown:>11} {closed_form(length, cap, lead, margin):>8}"
                    f" {closed_form(length, cap, lead, margin, jitter / 2):>8}")
        print(row)
    year = got[("UNLIMITED", None, "t")][0]
    per_day = {r: max(got[("UNLIMITED", r)]) / (year / 86400) for r, _ in roles}
    print(f"   --plan is slightly higher than the formula: every refresh comes lead + 0..{dur(jitter)} of jitter")
    print(f"   ({dur(lead)}-{dur(lead + jitter)}) before expiry, up to {dur(jitter)} earlier than without jitter,"
          f" so refreshes are {dur(caps[None] - lead - jitter)}-{dur(caps[None] - lead)} apart at a"
          f" {dur(caps[None])} cap instead of {dur(caps[None] - lead)}.")
    print("   The jitter is a hash of the job and the second its session starts, so --plan moves by a call or")
    print("   a few from one second to the next (ranges). UNLIMITED = followed for a year, as the refresher")
    print(f"   treats it: ~{per_day[None]:.1f} calls a day at the {dur(caps[None])} cap, "
          f"~{per_day['long']:.1f} at {dur(caps['long'])}.")


# ------------------------------------------------------------------------ section 5b


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_ms(pid):
    """utime + stime of a live process (all its threads, dead ones included), in ms."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def rfc3339_ts(text):
    """Seconds since the epoch of an RFC 3339 UTC time like 2026-11-21T22:10:00Z (or .123456Z)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def count_lines(path, start, needle):
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    return data.count(needle)


REFRESHED_RE = re.compile(r"^(\S+)\s.*job\{id=(\S+?)\}.*credentials refreshed: (\d+) s, expire (\S+)")


def peak_per_second(path, start):
    """The most STS calls moto logged in one second (its lines carry a time to the second)
    from byte offset `start` on."""
    per = {}
    with open(path, "rb") as f:
        f.seek(start)
        for line in f:
            m = re.search(rb'\[([^\]]+)\] "POST / ', line)
            if m:
                per[m.group(1)] = per.get(m.group(1), 0) + 1
    return max(per.values(), default=0)


def refresher(ctx):
    n = int(ctx["refresh_jobs"])
    window = float(ctx["refresh_window"])
    batch = max(1, int(ctx["refresh_batch"]))
    if n < 1 or window < 1:
        raise BenchError("section 5b needs AWS_ROLE_BENCH_REFRESH_JOBS >= 1 and AWS_ROLE_BENCH_REFRESH_WINDOW >= 1")
    base, idle_base, rmap = ctx["refresh_base"], ctx["refresh_idle_base"], ctx["refresh_map"]
    session, lead, jitter = (int(ctx[k]) for k in ("refresh_session", "refresh_lead", "refresh_jitter"))
    # plan(): refresh lead + jitter before expiry, but never earlier than half-way through the
    # session: with lead >= session / 2, a refresh every session / 2 whatever the jitter.
    if lead < session / 2:
        raise BenchError("section 5b assumes [refresh] lead >= half the session (jitter then has no effect)")
    every = session / 2
    job0 = int(ctx["job_base"]) + 300000
    jobs = [job0 + i for i in range(n)]
    rbin = ctx["bin"] + "/aws-role-refresher"
    moto = int(ctx["moto_pid"])
    os.makedirs(idle_base, exist_ok=True)

    # 1. N live jobs, made by the real prolog as slurmd runs it, `batch` at a time.
    log(f"section 5b: {n} prologs in batches of {batch}")
    t0 = time.monotonic()
    for i in range(0, n, batch):
        part = jobs[i:i + batch]
        res, _ = release_together([(ctx.prolog_argv(rmap), ctx.job_env(j), ctx.err_file(j)) for j in part])
        bad = [j for j, (_, rc, _) in zip(part, res) if rc != 0 or job_outcome(base, j) != "ok"]
        if bad:
            j = bad[0]
            raise BenchError(f"{len(bad)} prologs of the refresher's jobs failed (no faults are injected here), "
                             f"e.g. job {j}: {failure_reason(base, j)}; stderr: {tail(ctx.err_file(j))}")
    made = time.monotonic() - t0
    issued, exp0 = {}, {}
    for j in jobs:
        with open(os.path.join(base, str(j), "state.json")) as f:
            issued[j] = rfc3339_ts(json.load(f)["issued"])
        with open(os.path.join(base, str(j), "credentials.json")) as f:
            c = json.load(f)
        exp0[str(j)] = rfc3339_ts(c["Expiration"])
        if not session / 2 < exp0[str(j)] - issued[j] <= session + 15:  # issued: the prolog's start
            raise BenchError(f"job {j}: the prolog's session is not ~{session} s: issued {issued[j]}, {c}")

    # 2. The cost of one pass with nothing due (process start, map, reading every state.json).
    def once(bdir, tag):
        out = ctx.err_file(f"once.{tag}")
        pid, _ = spawn([rbin, "--once", "--config", rmap, "--base-dir", bdir], {}, out=out, err=out)
        _, status, ru = os.wait4(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        if rc != 0:
            raise BenchError(f"aws-role-refresher --once ({tag}) exited {rc}: {tail(out)}")
        return (ru.ru_utime + ru.ru_stime) * 1000, tail(out).strip().splitlines()[-1]
    once_runs = {"jobs": [], "idle": []}
    for i in range(3):
        for tag, bdir in (("jobs", base), ("idle", idle_base)):
            cpu, line = once(bdir, tag)
            once_runs[tag].append(cpu)
            once_runs[tag + ".line"] = line

    # 3. The daemon for `window` seconds, next to the same daemon on an empty base_dir.
    log(f"section 5b: aws-role-refresher with {n} jobs and with 0 jobs, side by side for {window:g} s")
    logs = {"jobs": ctx.err_file("refresher.jobs"), "idle": ctx.err_file("refresher.idle")}
    moto_log = ctx["moto_log"]
    moto_off = os.path.getsize(moto_log)
    moto_cpu0 = proc_cpu_ms(moto)
    pids = {}
    pids["jobs"], _ = spawn([rbin, "--config", rmap], {}, out=logs["jobs"], err=logs["jobs"])
    pids["idle"], _ = spawn([rbin, "--config", rmap, "--base-dir", idle_base], {}, out=logs["idle"], err=logs["idle"])
    with open(os.path.join(ctx.work, "refresher.pids"), "w") as f:  # for run.sh's clean-up
        f.write(f"{pids['jobs']}\n{pids['idle']}\n")
    t_start = time.time()
    stats = {}
    try:
        while (rest := t_start + window - time.time()) > 0:
            time.sleep(min(1.0, rest))
            for tag, pid in pids.items():
                if os.waitpid(pid, os.WNOHANG)[0]:
                    del pids[tag]
                    raise BenchError(f"the refresher ({tag}) exited during the window: {tail(logs[tag])}")
        t_end = time.time()
        for tag, pid in pids.items():
            stats[tag] = {"cpu": proc_cpu_ms(pid), "hwm": proc_status_kib(pid, "VmHWM"),
                          "rss": proc_status_kib(pid, "VmRSS")}
        moto_cpu = proc_cpu_ms(moto) - moto_cpu0
        moto_calls = count_lines(moto_log, moto_off, b'"POST / HTTP/1.1" 200')
        moto_all = count_lines(moto_log, moto_off, b'"POST / ')
        moto_peak = peak_per_second(moto_log, moto_off)
    finally:
        for tag, pid in list(pids.items()):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for tag, pid in list(pids.items()):
            for _ in range(100):
                got, status, ru = os.wait4(pid, os.WNOHANG)
                if got:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
                _, status, ru = os.wait4(pid, 0)
            if tag in stats:
                stats[tag]["rc"] = os.waitstatus_to_exitcode(status)
                stats[tag]["ru_cpu"] = (ru.ru_utime + ru.ru_stime) * 1000
    for tag in stats:
        if stats[tag]["rc"] != 0:
            raise BenchError(f"the refresher ({tag}) exited {stats[tag]['rc']} on SIGTERM: {tail(logs[tag])}")

    # 4. What it did: its log, the jobs' state records and credentials.
    with open(logs["jobs"], errors="replace") as f:
        lines = f.read().splitlines()
    refreshed = [m for m in map(REFRESHED_RE.match, lines) if m]
    failed = sum("refresh failed" in ln for ln in lines)
    stopped = sum("refresh stopped" in ln for ln in lines)
    warn = sum(" WARN " in ln or " ERROR " in ln for ln in lines)
    with open(logs["idle"], errors="replace") as f:
        idle_warn = sum(" WARN " in ln or " ERROR " in ln for ln in f)
    # Headroom: how long the credentials being replaced still had when the new ones were
    # written (the log line's time); nominal = what plan() leaves (half a session here);
    # below 0 = the job had expired credentials for a while.
    nominal = session - every
    prev_exp = dict(exp0)
    headroom = []
    for m in refreshed:
        at, job, exp = rfc3339_ts(m[1]), m[2], rfc3339_ts(m[4])
        if job in prev_exp:
            headroom.append(prev_exp[job] - at)
            prev_exp[job] = exp
    late = [nominal - h for h in headroom if h < nominal - 1]
    now = time.time()
    left, per_job = [], []
    for j in jobs:
        d = os.path.join(base, str(j))
        with open(os.path.join(d, "credentials.json")) as f:
            left.append(rfc3339_ts(json.load(f)["Expiration"]) - now)
        with open(os.path.join(d, "state.json")) as f:
            per_job.append(int(json.load(f).get("refreshes", 0)))
    expired = sum(1 for x in left if x <= 0)
    # Due in the window if every refresh came on time: a job's first at its prolog's
    # expiry - half its session (plan() caps lead + jitter there), then every `every` s.
    due = 0
    for j in jobs:
        first = exp0[str(j)] - min(lead, (exp0[str(j)] - issued[j]) / 2)
        if first <= t_end:
            due += 1 + math.floor((t_end - first) / every)

    # 5. The jobs' end: their epilogs, `batch` at a time.
    t0 = time.monotonic()
    for i in range(0, n, batch):
        part = jobs[i:i + batch]
        res, _ = release_together(
            [(ctx.epilog_argv(rmap), {"SLURM_JOB_ID": str(j)}, ctx.err_file(f"epi.{j}")) for j in part])
        if any(rc != 0 for _, rc, _ in res):
            raise BenchError("an epilog of the refresher's jobs exited non-zero")
    ended = time.monotonic() - t0
    left_dirs = os.listdir(base)
    if left_dirs:
        raise BenchError(f"{len(left_dirs)} job dirs left after the epilogs (e.g. {left_dirs[0]})")

    J, I = stats["jobs"], stats["idle"]
    done = len(refreshed)
    per_refresh = (J["cpu"] - I["cpu"]) / done if done else float("nan")
    per_refresh_ru = (J["ru_cpu"] - I["ru_cpu"]) / done if done else float("nan")
    once_j, once_i = statistics.median(once_runs["jobs"]), statistics.median(once_runs["idle"])
    pct_core = lambda v: 100 * v / 1000 / (t_end - t_start)  # noqa: E731
    ratio = lambda a, b: f"{a / b:.1f}x" if b else "n/a (idle below one tick)"  # noqa: E731
    mib = lambda kib: f"{kib / 1024:.1f} MiB"  # noqa: E731
    print(f"5b. Refresher with {n} live jobs on one node, {t_end - t_start:.0f} s window, side by side with the "
          "same refresher on an empty base_dir")
    print(f"   map: [sts] min_session = \"20s\", role max_session = \"{session}s\", [refresh] lead = \"{lead}s\", "
          f"jitter = \"{jitter}s\", scan_interval = \"{ctx['refresh_scan']}s\",")
    print(f"   concurrency {ctx['refresh_concurrency']} (default); endpoint: moto directly; each job refreshed "
          f"every {every:g} s (lead + jitter is capped at half a {session}-s session, so jitter has no effect)")
    print(f"   {n} job dirs made by aws-role-prolog ({min(batch, n)} at a time, as slurmd runs it): {made:.1f} s;"
          f" {n} epilogs at the end: {ended:.1f} s, no dir left")
    print(f"   {'':<44} {f'{n} jobs':>12} {'0 jobs':>12}   ratio")
    print(f"   {'CPU user+sys (/proc/PID/stat, end of window)':<44} {J['cpu']:>9.0f} ms {I['cpu']:>9.0f} ms"
          f"   {ratio(J['cpu'], I['cpu'])}")
    print(f"   {'  as % of one core over the window':<44} {pct_core(J['cpu']):>10.2f} % {pct_core(I['cpu']):>10.3f} %")
    print(f"   {'  CPU from wait4() after SIGTERM (us res.)':<44} {J['ru_cpu']:>9.1f} ms {I['ru_cpu']:>9.1f} ms"
          f"   {ratio(J['ru_cpu'], I['ru_cpu'])}")
    print(f"   {'peak RSS (VmHWM)':<44} {mib(J['hwm']):>12} {mib(I['hwm']):>12}   {ratio(J['hwm'], I['hwm'])}")
    print(f"   {'RSS at the end (VmRSS)':<44} {mib(J['rss']):>12} {mib(I['rss']):>12}")
    print(f"   {'one pass, nothing due (--once, median of 3)':<44} {once_j:>9.1f} ms {once_i:>9.1f} ms"
          f"   = {(once_j - once_i) / n * 1000:.0f} us CPU per job per scan")
    print(f"     (--once said: \"{once_runs['jobs.line']}\" and \"{once_runs['idle.line']}\")")
    print(f"   refreshes done       {done} (log \"credentials refreshed\") of {due} due in the window if all came on"
          f" time ({100 * done / max(due, 1):.1f}%; ~{n} x {window:g} s / {every:g} s = {n * window / every:.0f})")
    print(f"   per job              {min(per_job)}-{max(per_job)} refreshes (state.json), sum {sum(per_job)}")
    print(f"   STS calls at moto    {moto_all} during the window, {moto_calls} answered 200; peak {moto_peak} in one"
          f" second (moto's log){'; [sts] node_rate = ' + ctx['refresh_node_rate'] if ctx['refresh_node_rate'] else ''}")
    print(f"   failed refreshes     {failed} (log \"refresh failed\"), {stopped} stopped, {warn} WARN/ERROR lines"
          f" ({idle_warn} for the idle refresher)")
    print(f"   CPU per refresh      {per_refresh:.2f} ms = (CPU with {n} jobs - idle CPU) / refreshes, scans included"
          f" ({per_refresh_ru:.2f} ms from wait4)")
    if headroom:
        hs = sorted(headroom)
        print(f"   headroom at refresh  the old credentials had min {hs[0]:.1f} s, p50 {pct(hs, 0.5):.1f} s, "
              f"max {hs[-1]:.1f} s left when the new ones were written (nominal {nominal:g} s)")
        print(f"   late refreshes       {len(late)} of {done} came over 1 s after they were due"
              + (f" (by {min(late):.1f}-{max(late):.1f} s)" if late else ""))
    print(f"   expired at the end   {expired}/{n} jobs' credentials.json past Expiration"
          f" (least time left {min(left):.0f} s, most {max(left):.0f} s)")
    moto_pct = pct_core(moto_cpu)
    print(f"   moto_server          {moto_cpu:.0f} ms CPU in the window = {moto_pct:.0f}% of one core"
          f" ({moto_cpu / max(moto_all, 1):.1f} ms per call); load average at the end {os.getloadavg()[0]:.2f}")
    scan = float(ctx["refresh_scan"])
    if late and max(late) > scan - 1.5:
        print(f"   NOTE: late by up to {max(late):.1f} s, about one scan_interval ({scan:g} s): jobs that fell due while")
        print("   a pass was refreshing others waited for the next scan, not for their due time (bench/README.md).")
    elif late:
        print(f"   NOTE: {len(late)} refreshes came late while moto used {moto_pct:.0f}% of a core.")
    if moto_pct > 70:
        print(f"   NOTE: moto (Python) used {moto_pct:.0f}% of a core on this 2-core machine: the emulator, not the")
        print("   refresher, limits how fast refreshes can go here.")
    if expired or failed:
        print(f"   NOTE: {expired} jobs had expired credentials at the end and {failed} refreshes failed: see above.")
    # ms of CPU per second -> % of a core: idle + refreshes + one scan of n jobs every 30 s.
    prod = (I["cpu"] / (t_end - t_start) + n / 2250 * per_refresh + (once_j - once_i) / 30) / 10
    print(f"   At production timing (1 h cap: a refresh per job every ~37.5 min, a scan every 30 s), {n} jobs")
    print(f"   would cost at most ~{prod:.3f}% of a core (idle + per-refresh CPU above + one --once scan per 30 s).")


# ------------------------------------------------------------------------ section 4

PLUGSTACK_FRAGMENT = "/etc/slurm/plugstack.conf.d/aws-role.conf"
# Not matched by plugstack.conf's `include plugstack.conf.d/*.conf`: the plugin is gone.
PLUGSTACK_OFF = PLUGSTACK_FRAGMENT + ".bench-off"
# The empty C plugin's fragment (bench/spank-min.c), present only in configuration "cmin".
PLUGSTACK_MIN = "/etc/slurm/plugstack.conf.d/aws-role-bench-min.conf"


def as_user(ctx, argv, timeout=300):
    """Runs argv as the job user, as a researcher would (runuser, no login shell)."""
    return subprocess.run(["runuser", "-u", ctx["user"], "--"] + argv, capture_output=True,
                          text=True, timeout=timeout, cwd="/tmp")


def wait_no_jobs(ctx, timeout=120):
    """Waits until the user has no job left, epilogs included (squeue lists COMPLETING)."""
    deadline = time.time() + timeout
    while True:
        q = subprocess.run(["squeue", "-h", "-o", "%i", "-u", ctx["user"]], capture_output=True,
                           text=True, timeout=30)
        if q.returncode == 0 and not q.stdout.strip():
            return
        if time.time() > deadline:
            raise BenchError(f"{ctx['user']} still has jobs after {timeout} s: {q.stdout[:200]}")
        time.sleep(0.05)


def set_plugin(ctx, conf):
    """Puts plugstack configuration `conf` in place ("none": no plugin; "cmin": the empty C
    plugin; "ours": aws_role.so) and restarts slurmd: slurmd decides at start whether jobs
    get a `slurmstepd spank prolog|epilog` (it keeps using the plugstack it loaded at start). First every job must
    be over: a job whose epilog ran after the switch would keep its files until the
    refresher removed them as an orphan."""
    wait_no_jobs(ctx)
    ours = os.path.exists(PLUGSTACK_FRAGMENT)
    if conf == "ours" and not ours:
        os.rename(PLUGSTACK_OFF, PLUGSTACK_FRAGMENT)
    elif conf != "ours" and ours:
        os.rename(PLUGSTACK_FRAGMENT, PLUGSTACK_OFF)
    if conf == "cmin":
        with open(PLUGSTACK_MIN, "w") as f:
            f.write(f"required {ctx['spank_min']}\n")
    elif os.path.exists(PLUGSTACK_MIN):
        os.unlink(PLUGSTACK_MIN)
    r = subprocess.run(["bash", ctx["cluster_sh"], "restart-slurmd"], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"restart-slurmd failed: {r.stderr[-400:]}")


def srun_times(ctx, n, extra):
    """n sequential `srun -Q [extra] true` as the job user, each timed from spawn to exit
    (allocation, prolog on the node, the step, its end). The loop runs as the user in one
    python process, so no runuser/PAM cost sits inside a sample."""
    code = ("import subprocess,sys,time\n"
            "n=int(sys.argv[1]); argv=['srun','-Q']+sys.argv[2:]+['true']\n"
            "for _ in range(n):\n"
            "    t=time.perf_counter(); r=subprocess.run(argv)\n"
            "    print(time.perf_counter()-t, r.returncode, flush=True)\n")
    r = as_user(ctx, ["/usr/bin/python3", "-c", code, str(n)] + extra, timeout=60 + 30 * n)
    out = [line.split() for line in r.stdout.splitlines()]
    bad = [rc for _, rc in out if rc != "0"]
    if r.returncode != 0 or len(out) != n or bad:
        raise BenchError(f"srun {' '.join(extra)} true: {len(bad)} failed of {len(out)}: {r.stderr[-400:]}")
    return [float(t) for t, _ in out]


def sbatch_burst(ctx, n, extra):
    """Submits n `sbatch --wrap true` jobs back to back and waits until every one has left
    the queue (its epilog done). Returns the wall time from the first submission."""
    t0 = time.perf_counter()
    code = ("import subprocess,sys\n"
            "n=int(sys.argv[1])\n"
            "for _ in range(n):\n"
            "    r=subprocess.run(['sbatch','--parsable','-o','/dev/null']+sys.argv[2:]+['--wrap','true'],"
            "capture_output=True,text=True)\n"
            "    print(r.stdout.strip() if r.returncode==0 else 'ERR '+r.stderr.strip(), flush=True)\n")
    r = as_user(ctx, ["/usr/bin/python3", "-c", code, str(n)] + extra)
    ids = [line.split(";")[0] for line in r.stdout.splitlines()]
    if r.returncode != 0 or len(ids) != n or any(not i.isdigit() for i in ids):
        raise BenchError(f"sbatch {' '.join(extra)}: {r.stdout[-300:]} {r.stderr[-300:]}")
    deadline = time.time() + 120 + 2 * n
    while True:
        q = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True,
                           text=True, timeout=30)
        if q.returncode == 0 and not q.stdout.strip():
            return time.perf_counter() - t0, ids
        if time.time() > deadline:
            raise BenchError(f"sbatch burst: jobs still queued after {deadline - t0:.0f} s: {q.stdout[:200]}")
        time.sleep(0.05)


def node_state():
    r = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return r.stdout.split()[0] if r.stdout.split() else "?"


def cluster(ctx):
    rounds, n, burst_n = ctx["cluster_rounds"], ctx["cluster_sruns"], ctx["cluster_burst"]
    base = ctx["cluster_base"]
    kinds = ("none", "cmin", "plugin", "role")
    srun = {k: [] for k in kinds}
    batch = {k: [] for k in kinds}
    role = ["--aws-role=demo"]
    try:
        # The role path must really work before its time means anything.
        set_plugin(ctx, "ours")
        r = as_user(ctx, ["srun", "-Q"] + role + ["printenv", "AWS_ROLE_SESSION_NAME"])
        if r.returncode != 0 or not r.stdout.startswith("slurm-"):
            raise BenchError(f"srun --aws-role=demo gets no role: {r.stdout!r} {r.stderr[-400:]!r}")
        for rnd in range(rounds):
            order = ["none", "cmin", "ours"]
            random.shuffle(order)
            for conf in order:
                set_plugin(ctx, conf)
                srun_times(ctx, 2, [])  # warm-up: the fresh slurmd's first jobs
                log(f"cluster: round {rnd + 1}/{rounds}, plugstack: {conf}")
                if conf != "ours":
                    srun[conf] += srun_times(ctx, n, [])
                    batch[conf].append(sbatch_burst(ctx, burst_n, [])[0])
                    continue
                # Alternate jobs without and with a role, in small blocks.
                for _ in range(0, n, 5):
                    srun["plugin"] += srun_times(ctx, 5, [])
                    srun["role"] += srun_times(ctx, 5, role)
                both = [("plugin", []), ("role", role)]
                random.shuffle(both)
                for k, extra in both:
                    batch[k].append(sbatch_burst(ctx, burst_n, extra)[0])
    finally:
        set_plugin(ctx, "ours")
    leftover = sorted(os.listdir(base)) if os.path.isdir(base) else []
    state = node_state()
    if leftover:
        raise BenchError(f"job directories left in {base}: {leftover[:10]}")
    if state not in ("idle", "idle~"):
        raise BenchError(f"node is {state} after the cluster section")

    med = {k: statistics.median(v) for k, v in srun.items()}
    bmed = {k: statistics.median(v) for k, v in batch.items()}
    labels = {"none": "no plugin",
              "cmin": "empty C plugin with job_prolog/epilog",
              "plugin": "aws_role.so, job without a role",
              "role": "aws_role.so, --aws-role=demo"}
    targets = {"plugin": 1.15, "role": 1.30}
    print(f"4. Job start overhead on the test cluster (Slurm {ctx['slurm_version']}, 1 node): "
          f"{rounds} rounds; in each, the 3 plugstack configurations in random order, slurmd restarted at each switch")
    print(f"   a. srun -Q true, sequential, {len(srun['none'])} per configuration; wall time per srun")
    print(f"   {'configuration':<40} {'median':>11} {'p90':>11} {'min':>11} {'/none':>7} {'/empty':>7}   target")
    for k in kinds:
        v = srun[k]
        ratio = med[k] / med["none"]
        t = f"<= {targets[k]}x {verdict(ratio <= targets[k])}" if k in targets else ""
        print(f"   {labels[k]:<40} {ms(med[k])} {ms(pct(v, 0.9))} {ms(min(v))} {ratio:6.2f}x "
              f"{med[k] / med['cmin']:6.2f}x   {t}")
    print(f"   b. {burst_n} x sbatch --wrap true submitted back to back, until all left the queue "
          f"(epilogs done); median of {rounds} bursts")
    print(f"   {'configuration':<40} {'wall':>11} {'jobs/s':>8} {'bursts (s)':>16} {'/none':>7} {'/empty':>7}   target")
    for k in kinds:
        ratio = bmed[k] / bmed["none"]
        t = f"<= {targets[k]}x {verdict(ratio <= targets[k])}" if k in targets else ""
        spread = f"{min(batch[k]):.1f}-{max(batch[k]):.1f}"
        print(f"   {labels[k]:<40} {ms(bmed[k])} {burst_n / bmed[k]:8.1f} {spread:>16} {ratio:6.2f}x "
              f"{bmed[k] / bmed['cmin']:6.2f}x   {t}")
    print("   A burst's time is set by slurmctld's scheduling passes (seconds apart), not by the prologs")
    print("   (tens of ms): compare the spread of identical bursts before reading a ratio.")
    print(f"   /empty = against the empty C plugin (bench/spank-min.c): what Slurm charges any plugin that")
    print(f"   exports job_prolog/job_epilog, i.e. aws-role's own share. Afterwards: node {state}, {base} empty.")


# ------------------------------------------------------------------------ section 6

def endpoint(ctx):
    """The credentials endpoint beside credential_process: botocore's first credentials and
    its forced refreshes through each, then the daemon's throughput and memory with N jobs
    on the node against the helper's rate with the same concurrency, all in this run."""
    n_jobs, runs, secs, k = (int(ctx[x]) for x in ("endpoint_jobs", "endpoint_runs", "endpoint_secs", "endpoint_workers"))
    base, emap = ctx["base"], ctx["endpoint_map"]
    job0 = int(ctx["job_base"]) + 300000
    jobs = [job0 + i for i in range(n_jobs)]
    log(f"section 6: provisioning {n_jobs} jobs with an endpoint token")
    for j in jobs:
        _, rc, _ = run(ctx.prolog_argv(emap), ctx.job_env(j), err=ctx.err_file(f"ep.{j}"))
        if rc != 0 or job_outcome(base, j) != "ok":
            raise BenchError(f"prolog for job {j}: {failure_reason(base, j)} {tail(ctx.err_file(f'ep.{j}'))}")
    pid, _ = spawn([ctx["bin"] + "/aws-role-endpoint", "--config", emap], {}, err=ctx.err_file("endpoint"))
    try:
        for _ in range(100):
            if "listening on" in tail(ctx.err_file("endpoint")):
                break
            time.sleep(0.05)
        else:
            raise BenchError(f"aws-role-endpoint did not start: {tail(ctx.err_file('endpoint'))}")
        rss_start = proc_status_kib(pid, "VmRSS")

        def client(*args, timeout=900):
            argv = ["/usr/sbin/runuser", "-u", ctx["user"], "--", ctx["venv"] + "/bin/python3",
                    ctx["endpoint_client"], *map(str, args)]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                               env={"PATH": "/usr/bin:/bin", "AWS_ROLE_BENCH_HELPER": ctx["bin"] + "/aws-role-credentials"})
            if p.returncode != 0:
                raise BenchError(f"endpoint client {args[0]}: {p.stderr.strip()[-400:]}")
            return json.loads(p.stdout)

        one = os.path.join(base, str(jobs[0]))
        log(f"section 6: first credentials, {max(runs // 5, 10)} fresh processes per mechanism")
        first = client("first", one, max(runs // 5, 10))
        log(f"section 6: {runs} forced refreshes per mechanism")
        refresh = client("refresh", one, runs)
        rss_one = proc_status_kib(pid, "VmHWM")
        log(f"section 6: {k} workers for {secs} s over {n_jobs} jobs, per mechanism")
        load = client("load", base, ",".join(map(str, jobs)), secs, k)
        rss_all = proc_status_kib(pid, "VmHWM")
        rss_end = proc_status_kib(pid, "VmRSS")
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        for j in jobs:
            run(ctx.epilog_argv(emap), {"SLURM_JOB_ID": str(j)})

    print(f"6. The credentials endpoint beside credential_process (botocore {runs} refreshes, "
          f"{n_jobs} jobs on the node)")
    print(f"   {'what':<52} {'credential_process':>18} {'endpoint':>10} {'ratio':>7}")
    for label, data in (("first credentials (fresh process), median", first),
                        ("first credentials, p95", first),
                        ("refreshing fetch, median", refresh),
                        ("refreshing fetch, p95", refresh)):
        q = 0.95 if "p95" in label else 0.5
        a, b = pct(data["process"], q), pct(data["endpoint"], q)
        print(f"   {label:<52} {a:15.2f} ms {b:7.2f} ms {b / a:6.2f}x")
    lp, le = load["process"], load["endpoint"]
    rp, re_ = lp["requests"] / lp["secs"], le["requests"] / le["secs"]
    print(f"   {'throughput, ' + str(k) + ' concurrent clients (fetches/s)':<52} {rp:18.0f} {re_:10.0f} {re_ / rp:6.2f}x")
    print(f"   {'failed fetches':<52} {lp['errors']:18d} {le['errors']:10d}")
    print(f"   endpoint daemon memory: RSS {rss_start} KiB at start, peak {rss_one} KiB serving 1 job, "
          f"peak {rss_all} KiB serving {n_jobs} jobs ({rss_all / rss_one:.2f}x), RSS {rss_end} KiB after")
    ok = le["errors"] == 0 and lp["errors"] == 0
    print(f"   every fetch answered: {verdict(ok)}; endpoint refresh no slower than the helper: "
          f"{verdict(pct(refresh['endpoint'], 0.5) <= pct(refresh['process'], 0.5))}; "
          f"memory with {n_jobs} jobs < 2x one job: {verdict(rss_all < 2 * rss_one)}")


# ------------------------------------------------------------------------ section 7


def release_capped(procs, cap):
    """Runs every (argv, env, stderr file), at most `cap` at once, the first `cap` at the
    same instant and each further one as soon as one has exited (5,000 prologs alive at
    once would not fit in this machine's memory). Returns, per index, seconds from the
    common start to its exit and its exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.perf_counter_ns()
    running, res, nxt = {}, {}, 0

    def start(i):
        argv, env, err = procs[i]
        pid = os.fork()
        if pid == 0:
            exec_child(argv, env, err)
        running[pid] = i

    while nxt < len(procs) and len(running) < cap:
        start(nxt)
        nxt += 1
    while running:
        pid, status = os.wait()
        t1 = time.perf_counter_ns()
        if pid in running:
            res[running.pop(pid)] = ((t1 - t0) / 1e9, os.waitstatus_to_exitcode(status))
            if nxt < len(procs):
                start(nxt)
                nxt += 1
    return [res[i] for i in range(len(procs))]


def scale(ctx):
    """Bursts of N prologs against an account-wide STS rate R (the fault proxy's token
    bucket, burst R: one second's worth), for every (N, R) of the settings."""
    base = ctx["base"]
    ns = [int(x) for x in str(ctx["scale_n"]).split(",")]
    rs = [int(x) for x in str(ctx["scale_r"]).split(",")]
    cap = int(ctx["scale_cap"])
    template = open(ctx["burst_map"]).read()
    timeout_s = human_secs(ctx["burst_timeout"])
    rows = []
    job0 = int(ctx["job_base"]) + 300000
    schedule = base.rstrip("/") + ".sts-rate"
    for n, r, paced in [(n, r, p) for n in ns for r in rs for p in (False, True)]:
        tag = f"scale-{n}-{r}-{int(paced)}-{os.getpid()}-{int(time.time())}"
        path = f"rate/{r}/{r}/{tag}"
        m = os.path.join(ctx.work, f"{tag}.toml")
        text = re.sub(r'(?m)^endpoint = .*$', f'endpoint = "{ctx["proxy_url"]}/{path}"', template)
        if paced:
            # Before: no node rate. After: the node paces itself a tenth under the
            # account's rate (the node is the account's whole load here; at exactly the
            # rate, the calls' jitter on the way meets an empty bucket now and then).
            text = re.sub(r'(?m)^(max_attempts = .*)$', rf"\1\nnode_rate = {max(1, r * 9 // 10)}", text)
        if os.path.exists(schedule):
            os.unlink(schedule)
        with open(m, "w") as f:
            f.write(text)
        jobs = [job0 + i for i in range(n)]
        job0 += n
        log(f"section 7: {n} prologs (at most {cap} at once) against {r} calls/s, "
            f"{'node_rate = %d' % max(1, r * 9 // 10) if paced else 'no node_rate'}")
        res = release_capped([(ctx.prolog_argv(m), ctx.job_env(j), ctx.err_file(j)) for j in jobs], cap)
        st = proxy_stats(ctx["proxy_url"])["paths"].get(path, {})
        sessions = st.get("sessions", {})
        outcomes = [job_outcome(base, j) for j in jobs]
        ok = [t for (t, _), o in zip(res, outcomes) if o == "ok"]
        reasons = {}
        for j, o in zip(jobs, outcomes):
            if o == "failed":
                rr = failure_reason(base, j)
                reasons[rr[:90]] = reasons.get(rr[:90], 0) + 1
        calls = sum(v["calls"] for v in sessions.values())
        throttled = sum(v["throttled"] for v in sessions.values())
        eres = release_capped([(ctx.epilog_argv(m), {"SLURM_JOB_ID": str(j)}, ctx.err_file(f"epi.{j}"))
                               for j in jobs], cap)
        if any(rc != 0 for _, rc in eres):
            raise BenchError("an epilog of the scale burst exited non-zero")
        rows.append((n, r, paced, len(ok), calls, throttled, ok, reasons))
    print("7. Scale: N prologs at once (at most %d processes alive) against an account-wide STS" % cap)
    print("   rate R (token bucket, burst R); map [sts] timeout = \"%s\", max_attempts = %s" %
          (ctx["burst_timeout"], ctx["burst_attempts"]))
    print("   targets: 100%% success when N/R < timeout (%g s); calls/job <= 1.2; last <= 1.3 x N/R" % timeout_s)
    print("   before: no node_rate; after: node_rate = 0.9 R (this one node is the account's whole load)")
    print("      N     R  N/R s  node_rate   success  calls/job  throttled   p50 s   p99 s  last s  last/(N/R)")
    for n, r, paced, good, calls, throttled, ok, reasons in rows:
        phys = n / r
        last = max(ok) if ok else float("nan")
        p50 = pct(ok, 0.5) if ok else float("nan")
        p99 = pct(ok, 0.99) if ok else float("nan")
        succ_target = phys >= timeout_s or good == n
        print(f"  {n:5d} {r:5d} {phys:6.1f} {('0.9 R' if paced else 'none'):>10} {100 * good / n:8.1f}% {calls / n:10.2f} {throttled:10d} "
              f"{p50:7.2f} {p99:7.2f} {last:7.2f} {last / phys:11.2f}  "
              f"{verdict(succ_target and calls / n <= 1.2 and (not ok or last <= 1.3 * phys))}")
        for why, c in sorted(reasons.items(), key=lambda x: -x[1])[:2]:
            print(f"        {c:5d} x {why}")


def main():
    cmds = {"latency": latency, "burst": burst, "footprint": footprint, "cluster": cluster,
            "lifetime": lifetime, "refresher": refresher, "endpoint": endpoint, "scale": scale}
    if len(sys.argv) != 3 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    ctx = Ctx(sys.argv[2])
    os.chdir("/")
    try:
        cmds[sys.argv[1]](ctx)
    except BenchError as e:
        log(f"ERROR: {e}")
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
