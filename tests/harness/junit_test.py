#!/usr/bin/python3
"""`acceptbench compare --junit`: JUnit XML that a standard XML parser reads, one test case per
configuration and metric, failed exactly where compare finds a regression.

Fixtures (see their generator): compare_slow.json is compare_base.json with conn/s lower and
CPU per connection higher (p99 unchanged); compare_noise.json is the same distribution as base.
Environment: ACCEPTBENCH_BIN (the build's bin folder), ACCEPTBENCH_FIXTURES (the fixtures folder).
"""
import json
import os
import pathlib
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

HARNESS = str(pathlib.Path(os.environ["ACCEPTBENCH_BIN"]) / "acceptbench")
FIXTURES = pathlib.Path(os.environ["ACCEPTBENCH_FIXTURES"])
METRICS = ("conn_per_s", "server_cpu_us_per_conn", "p99_total_us")


class CompareJunit(unittest.TestCase):
    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"acceptbench-junit-{os.getpid()}-"))

    def compare(self, new):
        junit, rows = self.dir / f"{new}.xml", self.dir / f"{new}.json"
        proc = subprocess.run([HARNESS, "compare", str(FIXTURES / "compare_base.json"), str(FIXTURES / f"{new}.json"),
                               "--junit", str(junit), "--json", str(rows)], capture_output=True, text=True, timeout=60)
        return proc, ET.parse(junit).getroot(), json.loads(rows.read_text())["rows"]

    def cases(self, root):
        suites = root.findall("testsuite")
        self.assertEqual(root.tag, "testsuites")
        self.assertEqual(len(suites), 1)
        return suites[0], suites[0].findall("testcase")

    def keys(self):
        return [c["config"]["key"] for c in json.loads((FIXTURES / "compare_base.json").read_text())["configs"]]

    def test_slower_fixture_fails_exactly_the_regressed_metrics(self):
        proc, root, rows = self.compare("compare_slow")
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        suite, cases = self.cases(root)
        self.assertEqual(sorted((c.get("classname"), c.get("name")) for c in cases),
                         sorted((k, m) for k in self.keys() for m in METRICS))
        failed = {(c.get("classname"), c.get("name")): c.find("failure") for c in cases if c.find("failure") is not None}
        expected = {(k, m) for k in self.keys() for m in ("conn_per_s", "server_cpu_us_per_conn")}
        self.assertEqual(set(failed), expected)
        self.assertEqual((suite.get("tests"), suite.get("failures")), (str(len(cases)), str(len(expected))))
        self.assertEqual(root.get("failures"), str(len(expected)))
        by_case = {(r["key"], r["metric"]): r for r in rows}
        for case, failure in failed.items():
            row = by_case[case]
            message = failure.get("message")
            # The numbers, the p-value and the threshold, as compare computed them.
            for text in (f"{row['base_median']:.3f}", f"{row['new_median']:.3f}", f"ratio {row['ratio']:.4f}",
                         f"threshold {100 * row['threshold']:.1f}%", f"p = {row['p_value']:.4g}"):
                self.assertIn(text, message, case)

    def test_noise_fixture_passes_every_case(self):
        proc, root, _ = self.compare("compare_noise")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        suite, cases = self.cases(root)
        self.assertEqual(len(cases), len(self.keys()) * len(METRICS))
        self.assertEqual([c for c in cases if c.find("failure") is not None or c.find("error") is not None], [])
        self.assertEqual(suite.get("failures"), "0")
        for c in cases:
            self.assertIn("p = ", c.find("system-out").text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
