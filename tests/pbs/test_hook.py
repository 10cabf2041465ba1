"""Unit tests of packaging/pbs/aws_role_launch_hook.py with a stand-in ``pbs`` module.

Run: python3 -m unittest discover -s tests/pbs -v   (stdlib only)
"""

import json
import os
import re
import runpy
import sys
import tempfile
import types
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOK = os.path.join(REPO, "packaging", "pbs", "aws_role_launch_hook.py")
DELIVERY = os.path.join(REPO, "core", "src", "delivery", "mod.rs")
FILES_DELIVERY = os.path.join(REPO, "core", "src", "delivery", "files.rs")
ENDPOINT_DELIVERY = os.path.join(REPO, "core", "src", "delivery", "endpoint.rs")
TOKEN = "0123456789abcdef" * 4


class Event:
    def __init__(self, type_, job_id, env):
        self.type = type_
        self.job = types.SimpleNamespace(id=job_id)
        self.env = env
        self.accepted = False
        self.rejected = None

    def accept(self):
        self.accepted = True

    def reject(self, msg=""):
        self.rejected = msg


def stand_in_pbs(event, config_file=None):
    m = types.ModuleType("pbs")
    m.EXECJOB_LAUNCH = 64
    m.EXECJOB_BEGIN = 32
    m.LOG_DEBUG = 4
    m.LOG_WARNING = 2
    m.logs = []
    m.event = lambda: event
    m.logmsg = lambda level, msg: m.logs.append((level, msg))
    m.hook_config_filename = config_file
    return m


def run_hook(event, config_file=None):
    """Runs the hook file as PBS does (top to bottom) with the stand-in module."""
    m = stand_in_pbs(event, config_file)
    saved = sys.modules.get("pbs")
    sys.modules["pbs"] = m
    try:
        g = runpy.run_path(HOOK, run_name="__main__")
    finally:
        if saved is None:
            del sys.modules["pbs"]
        else:
            sys.modules["pbs"] = saved
    return m, g


class HookTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.base = self.tmp.name
        self.config = os.path.join(self.base, "hook.json")
        with open(self.config, "w") as f:
            json.dump({"base_dir": self.base}, f)

    def tearDown(self):
        self.tmp.cleanup()

    def job(self, dir_name, files):
        d = os.path.join(self.base, dir_name)
        os.makedirs(d)
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        return d

    def launch(self, job_id, env):
        e = Event(64, job_id, env)
        m, _ = run_hook(e, self.config)
        self.assertTrue(e.accepted)
        self.assertIsNone(e.rejected)
        return e, m

    def test_job_with_role_gets_the_variables_and_loses_shadows(self):
        d = self.job("1234_5_.server", {"config": "[default]\n"})
        env = {"AWS_PROFILE": "mine", "AWS_ACCESS_KEY_ID": "AKID", "HOME": "/home/alice"}
        e, _ = self.launch("1234[5].server", env)
        self.assertEqual(env["AWS_CONFIG_FILE"], os.path.join(d, "config"))
        self.assertEqual(env["AWS_SHARED_CREDENTIALS_FILE"], "/dev/null")
        self.assertEqual(env["AWS_ROLE_CREDENTIALS_FILE"], os.path.join(d, "credentials"))
        self.assertEqual(env["AWS_EC2_METADATA_DISABLED"], "true")
        self.assertEqual(env["AWS_SDK_LOAD_CONFIG"], "1")
        self.assertNotIn("AWS_PROFILE", env)
        self.assertNotIn("AWS_ACCESS_KEY_ID", env)
        self.assertEqual(env["HOME"], "/home/alice")

    def test_job_without_files_is_untouched(self):
        env = {"AWS_PROFILE": "mine"}
        self.launch("77.server", env)
        self.assertEqual(env, {"AWS_PROFILE": "mine"})

    def test_failed_job_logs_the_reason_and_blocks_imds(self):
        self.job("78.server", {"failure.json": json.dumps({"job_id": "78.server", "reason": "STS down", "time": "t"})})
        env = {}
        _, m = self.launch("78.server", env)
        self.assertEqual(env, {"AWS_EC2_METADATA_DISABLED": "true"})
        self.assertTrue(any("STS down" in msg for _, msg in m.logs), m.logs)

    def test_a_forged_reason_is_one_escaped_bounded_line(self):
        # Before, the reason went into the MOM log (as root) raw: a record holding line
        # breaks or terminal escapes forged log lines.
        reason = "STS down\r\n\x1b[2K01/01/2027 pbs_mom;Svr;all good" + "x" * 5000
        self.job("79.server", {"failure.json": json.dumps({"job_id": "79.server", "reason": reason, "time": "t"})})
        _, m = self.launch("79.server", {})
        logged = [msg for _, msg in m.logs if "79.server" in msg]
        self.assertEqual(len(logged), 1, m.logs)
        self.assertFalse(any(c in logged[0] for c in "\r\n\x1b"), logged)
        self.assertLess(len(logged[0]), 600, len(logged[0]))
        self.assertIn("STS down\\r\\n\\x1b[2K", logged[0])

    def test_hostile_ids_are_refused(self):
        # A directory that a traversal would reach must not be used.
        self.job("x", {"config": ""})
        for bad in ["../x", "1/../../x", "", "1\n", "x1", "1[a]", "1" * 200, "1..2"]:
            env = {"AWS_PROFILE": "mine"}
            self.launch(bad, env)
            self.assertEqual(env, {"AWS_PROFILE": "mine"}, bad)

    def test_other_events_are_accepted_untouched(self):
        self.job("79", {"config": ""})
        env = {}
        e = Event(32, "79", env)
        run_hook(e, self.config)
        self.assertTrue(e.accepted)
        self.assertEqual(env, {})

    def test_default_base_dir_without_config(self):
        env = {}
        e = Event(64, "80", env)
        _, g = run_hook(e, None)
        self.assertEqual(g["configured_base_dir"](), "/run/aws-role")
        self.assertEqual(g["job_dir"]("1[2].s"), "/run/aws-role/1_2_.s")

    def test_env_without_deletion_gets_empty_values(self):
        class NoDel(dict):
            def __delitem__(self, k):
                raise TypeError("no")

        self.job("81", {"config": ""})
        env = NoDel(AWS_PROFILE="mine")
        self.launch("81", env)
        self.assertEqual(env["AWS_PROFILE"], "")

    def test_a_job_with_the_endpoint_gets_its_url_token_and_region(self):
        d = self.job("90", {"config": "[default]\nregion = eu-west-1\n", "endpoint-url": "http://127.0.0.1:941/v1/credentials/90", "endpoint-token": TOKEN})
        env = {"AWS_CONTAINER_AUTHORIZATION_TOKEN": "inherited"}
        self.launch("90", env)
        self.assertEqual(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], "http://127.0.0.1:941/v1/credentials/90")
        self.assertEqual(env["AWS_CONTAINER_AUTHORIZATION_TOKEN"], TOKEN)
        self.assertEqual(env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], os.path.join(d, "endpoint-token"))
        self.assertEqual((env["AWS_REGION"], env["AWS_DEFAULT_REGION"]), ("eu-west-1", "eu-west-1"))
        self.assertEqual(env["CPL_AWS_CREDENTIALS_FILE"], os.path.join(d, "credentials"))

    def test_a_bad_token_or_url_sets_no_endpoint_and_clears_the_inherited_one(self):
        for token, url in [(TOKEN + "\n", "http://127.0.0.1:941/v1/credentials/91"), (TOKEN, "http://x/ $(id)")]:
            with tempfile.TemporaryDirectory() as base:
                d = os.path.join(base, "91")
                os.makedirs(d)
                for name, text in {"config": "[default]\n", "endpoint-url": url, "endpoint-token": token}.items():
                    with open(os.path.join(d, name), "w") as f:
                        f.write(text)
                _, g = run_hook(Event(0, "1", {}), None)
                names = [n for n, _ in g["exports"](d)]
                self.assertNotIn("AWS_CONTAINER_CREDENTIALS_FULL_URI", names, (token, url))

    def test_lists_match_core_delivery(self):
        _, g = run_hook(Event(0, "1", {}), None)
        src = open(DELIVERY).read()
        block = src[src.index("pub const SHADOWING"):]
        block = block[: block.index("];")]
        self.assertEqual(tuple(re.findall(r'"(AWS_[A-Z0-9_]+)"', block)), g["SHADOWING"])
        # Every delivery's variables, in the order core::delivery::ALL sets them.
        names = []
        for path in (FILES_DELIVERY, ENDPOINT_DELIVERY):
            text = open(path).read()
            env_src = text[text.index("fn env("):]
            env_src = env_src[: env_src.index("\n    }\n")]
            names += re.findall(r'\(\s*"((?:AWS|CPL)_[A-Z0-9_]+)"', env_src)
        self.assertGreaterEqual(len(names), 11, names)
        d = self.job("92", {"config": "[default]\nregion = us-east-1\n", "endpoint-url": "http://127.0.0.1:941/v1/credentials/92", "endpoint-token": TOKEN})
        hook_names = [n for n, _ in g["exports"](d)]
        self.assertEqual(names, hook_names)


if __name__ == "__main__":
    unittest.main()
