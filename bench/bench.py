#!/usr/bin/env python3
"""Measurement helper of bench/run.sh (run.sh sets everything up; this only measures).

    bench.py latency   CONFIG.json   section 1: one prolog vs the floor vs bash + AWS CLI
    bench.py burst     CONFIG.json   section 2: N prologs at once through the fault proxy
    bench.py footprint CONFIG.json   section 3: peak RSS (plugin size is done by run.sh)

Every program is started the way slurmd starts a Prolog: posix_spawn from this process
with an explicit environment (the same as `env -i VAR=... prog`: nothing inherited), cwd
/, stdin /dev/null, stdout/stderr to files. A time is wall clock from just before the
spawn to the moment wait4() returns the exit status: process creation, exec, dynamic
loading, the program's work and its exit are all inside it.

Prints the section's report on stdout; progress and diagnostics go to stderr. Exits 1 on
an error (a prolog that should have succeeded did not, a server that did not answer, ...),
never because the numbers are bad.
"""
import json
import math
import os
import random
import shutil
import statistics
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
    if ctx["one_cert"]:
        # Diagnostic, not how slurmd runs it: the same prolog with the OS CA store cut down
        # to one certificate (rustls-native-certs honours SSL_CERT_FILE/SSL_CERT_DIR), to
        # show what loading the CA store costs even for an http:// endpoint.
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
               "prolog_onecert": ("epilog_onecert", ctx["map"], base)}
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
        (f"diag: prolog ({fs}), CA store cut to 1 cert", "prolog_onecert"),
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
            try:
                os.close(gate_w)
                os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
                os.dup2(os.open("/dev/null", os.O_WRONLY), 1)
                os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
                os.read(gate_r, 1)  # EOF when the parent closes gate_w
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
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
        print("   after 1 s, then 3 s, ... The fault proxy listens with Python's default backlog of 5")
        print("   (socketserver request_queue_size), moto with 128: a burst's tail is partly that.")


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


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("latency", "burst", "footprint"):
        print(__doc__, file=sys.stderr)
        return 2
    ctx = Ctx(sys.argv[2])
    os.chdir("/")
    try:
        {"latency": latency, "burst": burst, "footprint": footprint}[sys.argv[1]](ctx)
    except BenchError as e:
        log(f"ERROR: {e}")
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
