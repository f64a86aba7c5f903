#!/usr/bin/python3
"""End-to-end tests of the acceptbench harness binary (run by CTest).

Environment: ACCEPTBENCH_BIN (the build's bin folder), ACCEPTBENCH_SRC (the source tree).
Every load is on loopback and bounded in time.
"""
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time
import unittest

import jsonschema

BIN = pathlib.Path(os.environ["ACCEPTBENCH_BIN"])
SRC = pathlib.Path(os.environ["ACCEPTBENCH_SRC"])
HARNESS = str(BIN / "acceptbench")
SCHEMA = json.loads((SRC / "results" / "schema.json").read_text())
FIXTURES = SRC / "tests" / "fixtures"
REQUIRED_MODELS = ["iterative", "thread-per-conn", "fork-per-conn", "epoll-mutex", "reuseport"]


def children_named(parent_pid, name):
    """PIDs of the processes whose parent is parent_pid and whose command is name."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == parent_pid and comm == name[:15]:
            found.append(int(entry.name))
    return found


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class HarnessEndToEnd(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = pathlib.Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def sweep(self, out, *args, check=True):
        cmd = [HARNESS, "sweep", "--out", str(out), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if check:
            self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def test_quick_matrix_is_valid_and_every_model_measured(self):
        out = self.dir / "results.json"
        proc = self.sweep(out, "--preset", "quick", "--duration", "0.5", "--warmup", "0.2", "--repetitions", "2")
        self.assertIn("ETA", proc.stderr)  # the progress line
        doc = json.loads(out.read_text())
        jsonschema.validate(doc, SCHEMA)
        for model in REQUIRED_MODELS:
            ok = [c for c in doc["configs"] if c["config"]["model"] == model and c["status"] == "ok"]
            self.assertTrue(ok, f"{model} has no configuration with status ok")
            self.assertTrue(all(c["summary"]["conn_per_s"]["median"] > 0 for c in ok), model)
        # A clean run: what the client counted reached the server agrees with the kernel.
        for c in doc["configs"]:
            # A model that cannot hold the cost view's offered rate on this machine is overloaded: a status
            # with its numbers kept, not a failure.
            self.assertIn(c["status"], ("ok", "overloaded"), c.get("reason"))
            if c["status"] == "overloaded":
                self.assertEqual(c["config"]["mode"], "open")
            self.assertTrue(c["summary"]["crosscheck_within_1pct"],
                            (c["config"]["key"], c["summary"]["crosscheck_max_deviation"],
                             [(r["derived"]["crosscheck"], r["client"]["errors"], r["kernel"]) for r in c["repetitions"]]))
        placement = doc["env"]["placement"]
        self.assertTrue(placement["disjoint"] or os.cpu_count() == 1)
        # One host, server and in-process client: one record, read here (inside the run's namespace).
        hosts = doc["env"]["hosts"]
        self.assertEqual([(h["launcher"], h["roles"]) for h in hosts], [("local", ["server", "client"])])
        self.assertEqual(hosts[0]["sysctls"], doc["env"]["sysctls"])

    def run_and_fault(self, fault_signal):
        """A sweep of reuseport and iterative; the test sends fault_signal to the reuseport server."""
        out = self.dir / "results.json"
        proc = subprocess.Popen([HARNESS, "sweep", "--out", str(out), "--models", "reuseport,iterative",
                                 "--server-threads", "1", "--workloads", "conn", "--connections", "8",
                                 "--duration", "3", "--warmup", "0", "--repetitions", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # Repetitions run in a shuffled order: reuseport may come after iterative's 3 s.
            server = wait_for(lambda: children_named(proc.pid, "reuseport"), 30, "the reuseport server")[0]
            time.sleep(0.5)
            os.kill(server, fault_signal)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if fault_signal == signal.SIGSTOP:
                subprocess.run(["pkill", "-CONT", "-f", str(BIN / "reuseport")], check=False)
        self.assertEqual(proc.returncode, 0, stderr)
        doc = json.loads(out.read_text())
        jsonschema.validate(doc, SCHEMA)
        by_model = {c["config"]["model"]: c for c in doc["configs"]}
        self.assertEqual(by_model["reuseport"]["status"], "failed")
        self.assertEqual(by_model["iterative"]["status"], "ok", "the sweep did not go on after the failure")
        return by_model["reuseport"]["reason"]

    def test_crashed_server_is_recorded_and_the_sweep_goes_on(self):
        reason = self.run_and_fault(signal.SIGSEGV)
        self.assertIn("SIGSEGV", reason)

    def test_hung_server_is_killed_recorded_and_the_sweep_goes_on(self):
        reason = self.run_and_fault(signal.SIGSTOP)
        self.assertIn("hung", reason)

    def test_sweep_interleaves_repetitions_in_a_recorded_order(self):
        out = self.dir / "results.json"
        self.sweep(out, "--models", "reuseport,iterative,epoll-mutex", "--server-threads", "1", "--workloads", "conn",
                   "--connections", "4", "--duration", "0.2", "--warmup", "0", "--repetitions", "3", "--seed", "12345")
        doc = json.loads(out.read_text())
        jsonschema.validate(doc, SCHEMA)
        ex = doc["execution"]
        self.assertEqual(ex["seed"], 12345)
        keys = {c["config"]["key"] for c in doc["configs"]}
        rounds = [step["round"] for step in ex["sequence"]]
        # Round 1 of every configuration, then round 2 of every configuration, then round 3.
        self.assertEqual(rounds, sorted(rounds))
        self.assertEqual(len(ex["sequence"]), 9)
        for r in (1, 2, 3):
            self.assertEqual(sorted(s["key"] for s in ex["sequence"] if s["round"] == r), sorted(keys))
        for c in doc["configs"]:
            self.assertEqual(c["status"], "ok", c.get("reason"))
            self.assertEqual([rep["round"] for rep in c["repetitions"]], [1, 2, 3])
            positions = [rep["sequence_index"] for rep in c["repetitions"]]
            self.assertEqual([ex["sequence"][i]["key"] for i in positions], [c["config"]["key"]] * 3)

    def run_with_host_traffic(self, netns):
        """One repetition of reuseport while this test makes TCP connections on the host's loopback; returns
        (the repetition, connections this test made during it)."""
        import socket
        import threading
        out = self.dir / f"netns-{netns}.json"
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(512)
        port = listener.getsockname()[1]
        stop = threading.Event()
        made = [0]

        def accept_all():
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    listener.accept()[0].close()
                except OSError:
                    pass
        acceptor = threading.Thread(target=accept_all)
        acceptor.start()
        proc = subprocess.Popen([HARNESS, "run", "--out", str(out), "--model", "reuseport", "--server-threads", "1",
                                 "--workloads", "conn", "--connections", "2", "--duration", "1.5", "--warmup", "0",
                                 "--repetitions", "1", "--netns", netns],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline and made[0] < 50000:
                try:  # on a busy machine a connect can time out (the accepting thread is slow): go on
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    continue
                made[0] += 1
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            stop.set()
            acceptor.join()
            listener.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, stderr)
        doc = json.loads(out.read_text())
        jsonschema.validate(doc, SCHEMA)
        return doc, made[0]

    def test_kernel_counters_come_from_a_private_namespace(self):
        doc, made = self.run_with_host_traffic("private")
        if doc["env"]["network_namespace"]["mode"] != "private":
            self.skipTest("no private network namespace here: " + doc["env"]["network_namespace"].get("reason", ""))
        self.assertGreater(made, 100, "the test made too little traffic on the host to tell")
        rep = doc["configs"][0]["repetitions"][0]
        started = rep["client"]["started"]
        # Every active open in the namespace is one of the run's own connects: none of the host's.
        self.assertLessEqual(rep["kernel"]["Tcp.ActiveOpens"], started)
        self.assertGreaterEqual(rep["kernel"]["Tcp.ActiveOpens"], started - rep["client"]["errors"]["total"])
        # The same with --netns off: the host's traffic shows (the test can tell the difference).
        doc, made = self.run_with_host_traffic("off")
        self.assertEqual(doc["env"]["network_namespace"]["mode"], "host")
        rep = doc["configs"][0]["repetitions"][0]
        self.assertGreater(rep["kernel"]["Tcp.ActiveOpens"], rep["client"]["started"] + made // 2)

    def test_killed_harness_keeps_finished_configs_and_resume_completes(self):
        out = self.dir / "results.json"
        args = ["--models", "reuseport,epoll-mutex,iterative", "--server-threads", "1", "--workloads", "conn",
                "--connections", "4", "--duration", "1", "--warmup", "0", "--repetitions", "1"]
        proc = subprocess.Popen([HARNESS, "sweep", "--out", str(out), *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def finished():
            try:
                return len(json.loads(out.read_text())["configs"]) >= 1
            except (OSError, ValueError):
                return False
        wait_for(finished, 30, "the first configuration on disk")
        servers = wait_for(lambda: children_named(proc.pid, "epoll-mutex") + children_named(proc.pid, "iterative")
                           + children_named(proc.pid, "reuseport"), 10, "the next server")
        proc.kill()
        proc.wait()
        doc = json.loads(out.read_text())  # still valid JSON
        done = {c["config"]["key"] for c in doc["configs"]}
        self.assertGreaterEqual(len(done), 1)
        self.assertLess(len(done), 3)
        # The killed harness's server does not linger (PR_SET_PDEATHSIG: SIGTERM, then its grace period).
        wait_for(lambda: not any(pathlib.Path(f"/proc/{pid}").exists() for pid in servers), 10,
                 "the orphaned server to exit")
        resumed = self.sweep(out, "--resume", *args)
        self.assertIn("skipped", resumed.stderr)
        doc = json.loads(out.read_text())
        jsonschema.validate(doc, SCHEMA)
        self.assertEqual(len(doc["configs"]), 3)
        self.assertTrue(done <= {c["config"]["key"] for c in doc["configs"]})
        self.assertTrue(all(c["status"] == "ok" for c in doc["configs"]))

    def test_resume_keeps_an_overloaded_configuration(self):
        # fork-per-conn cannot hold 20000/s here: overloaded is a measured outcome (kept, not ranked), so
        # --resume must keep it instead of measuring it again as if it had failed.
        out = self.dir / "overloaded.json"
        args = ("--models", "fork-per-conn", "--server-threads", "1", "--workloads", "cost", "--rates", "20000",
                "--duration", "0.5", "--warmup", "0", "--repetitions", "1", "--drain-ms", "300")
        first = self.sweep(out, *args)
        doc = json.loads(out.read_text())
        jsonschema.validate(doc, SCHEMA)
        config = doc["configs"][0]
        if config["status"] != "overloaded":
            self.skipTest(f"fork-per-conn held 20000/s here ({config['status']}): nothing to resume")
        self.assertIn("OVERLOADED", first.stderr)
        resumed = self.sweep(out, "--resume", *args)
        self.assertIn("skipped", resumed.stderr)
        again = json.loads(out.read_text())["configs"][0]
        self.assertEqual(again["status"], "overloaded")
        self.assertEqual(again["repetitions"], config["repetitions"], "the saved repetition was measured again")

    def test_compare_exit_codes(self):
        def compare(*files, extra=()):
            return subprocess.run([HARNESS, "compare", *map(str, files), *extra],
                                  capture_output=True, text=True, timeout=60)
        md = self.dir / "summary.md"
        slow = compare(FIXTURES / "compare_base.json", FIXTURES / "compare_slow.json", extra=("--markdown", str(md)))
        self.assertEqual(slow.returncode, 1, slow.stdout + slow.stderr)
        self.assertIn("REGRESSION", slow.stdout)
        self.assertIn("REGRESSION", md.read_text())
        noise = compare(FIXTURES / "compare_base.json", FIXTURES / "compare_noise.json")
        self.assertEqual(noise.returncode, 0, noise.stdout + noise.stderr)
        garbage = self.dir / "garbage.json"
        garbage.write_text("{oops")
        bad = compare(FIXTURES / "compare_base.json", garbage)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("not valid JSON", bad.stderr)
        other = self.dir / "other.json"
        doc = json.loads((FIXTURES / "compare_base.json").read_text())
        doc["configs"] = [dict(doc["configs"][0], config=dict(doc["configs"][0]["config"], model="something-else"))]
        other.write_text(json.dumps(doc))
        mismatched = compare(FIXTURES / "compare_base.json", other)
        self.assertEqual(mismatched.returncode, 2)
        self.assertIn("no configuration", mismatched.stderr)
        broken = self.dir / "broken.json"
        doc = json.loads((FIXTURES / "quick_results.json").read_text())
        doc["configs"][0]["summary"]["conn_per_s"]["median"] = "fast"
        broken.write_text(json.dumps(doc))
        malformed = compare(FIXTURES / "quick_results.json", broken)
        self.assertEqual(malformed.returncode, 2, malformed.stdout + malformed.stderr)
        self.assertIn("NEW: configs[0]", malformed.stderr)
        self.assertIn("summary.conn_per_s.median", malformed.stderr)
        self.assertEqual(compare(FIXTURES / "compare_base.json").returncode, 2)
        # 3 vs 3 repetitions, 20% slower: the exact test can never reach p < 0.05 (smallest p 0.1).
        few = compare(FIXTURES / "compare3_base.json", FIXTURES / "compare3_slow.json")
        self.assertEqual(few.returncode, 2, few.stdout + few.stderr)
        self.assertIn("cannot reach significance at alpha=0.05", few.stderr)
        slow8 = compare(FIXTURES / "compare8_base.json", FIXTURES / "compare8_slow5.json")
        self.assertEqual(slow8.returncode, 1, slow8.stdout + slow8.stderr)
        noise8 = compare(FIXTURES / "compare8_base.json", FIXTURES / "compare8_noise.json")
        self.assertEqual(noise8.returncode, 0, noise8.stdout + noise8.stderr)
        holm = compare(FIXTURES / "compare20_base.json", FIXTURES / "compare20_noise.json")
        self.assertEqual(holm.returncode, 0, holm.stdout + holm.stderr)

    def test_ab_runs_both_sides_interleaved_and_compares(self):
        out = self.dir / "ab"
        binary = str(BIN / "reuseport")
        proc = subprocess.run([HARNESS, "ab", "--a", binary, "--b", binary, "--workloads", "cost", "--rates", "2000",
                               "--server-threads", "1", "--rounds", "3", "--duration", "0.4", "--warmup", "0.1",
                               "--out", str(out)], capture_output=True, text=True, timeout=300)
        # Three rounds cannot reach p < 0.05 (the smallest exact p is 0.1): exit 2 with the reason, the
        # measured sides kept.
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertIn("cannot reach significance", proc.stderr)
        for side in ("A", "B"):
            doc = json.loads((out / f"{side}.json").read_text())
            jsonschema.validate(doc, SCHEMA)
            self.assertEqual(doc["configs"][0]["status"], "ok")
            self.assertEqual(len(doc["configs"][0]["repetitions"]), 3)
        self.assertIn("ratio", (out / "compare.md").read_text())
        self.assertRegex(proc.stderr, r"round 1/3 side [AB]")  # progress names the round and side

    def test_bad_flags_exit_2(self):
        for args in (["sweep", "--models", "nope"], ["sweep", "--duration", "x"], ["frobnicate"],
                     ["run", "--models", "iterative,reuseport"], ["sweep", "--resume"],
                     ["sweep", "--server-cpus", "99", "--client-cpus", "0"]):
            proc = subprocess.run([HARNESS, *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn("error", proc.stderr, args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
