#!/usr/bin/python3
"""`acceptbench compare --junit`: JUnit XML that a standard XML parser reads, one test case per
configuration and metric, failed exactly where compare finds a regression, and an error case
when the repetitions are too few ever to reach significance (compare's exit 2).

Fixtures (tests/fixtures, see make_compare_fixtures.py): compare8_base.json, one configuration x
8 repetitions with a 1% spread; compare8_slow5.json, conn/s 5% lower and CPU per connection 5%
higher (beyond the 3% threshold, samples fully separated: Mann-Whitney p = 2/C(16,8)), p99 from
the same distribution; compare8_noise.json, the same distribution as base. compare3_base.json /
compare3_slow.json: 3 vs 3 repetitions, 20% slower, whose smallest possible p (0.1) is above alpha.
Environment: ACCEPTBENCH_BIN (the build's bin folder), ACCEPTBENCH_FIXTURES (the fixtures folder).
"""
import json
import os
import pathlib
import shutil
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
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def compare(self, base, new):
        junit, rows = self.dir / f"{new}.xml", self.dir / f"{new}.json"
        proc = subprocess.run([HARNESS, "compare", str(FIXTURES / f"{base}.json"), str(FIXTURES / f"{new}.json"),
                               "--junit", str(junit), "--json", str(rows)], capture_output=True, text=True, timeout=60)
        return proc, ET.parse(junit).getroot(), json.loads(rows.read_text())

    def cases(self, root):
        suites = root.findall("testsuite")
        self.assertEqual(root.tag, "testsuites")
        self.assertEqual(len(suites), 1)
        return suites[0], suites[0].findall("testcase")

    def keys(self, base):
        return [c["config"]["key"] for c in json.loads((FIXTURES / f"{base}.json").read_text())["configs"]]

    def test_five_percent_slower_fails_exactly_conn_rate_and_cpu(self):
        proc, root, doc = self.compare("compare8_base", "compare8_slow5")
        rows = doc["rows"]
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIsNone(doc["cannot_decide"])
        suite, cases = self.cases(root)
        keys = self.keys("compare8_base")
        self.assertEqual(len(keys), 1)
        self.assertEqual(sorted((c.get("classname"), c.get("name")) for c in cases),
                         sorted((k, m) for k in keys for m in METRICS))
        failed = {(c.get("classname"), c.get("name")): c.find("failure") for c in cases if c.find("failure") is not None}
        # conn/s 5% lower and CPU/conn 5% higher: beyond the 3% threshold, fully separated samples.
        # p99 comes from the same distribution in both files: within the 20% latency threshold.
        expected = {(k, m) for k in keys for m in ("conn_per_s", "server_cpu_us_per_conn")}
        self.assertEqual(set(failed), expected)
        self.assertEqual([c for c in cases if c.find("error") is not None], [])
        self.assertEqual((suite.get("tests"), suite.get("failures"), suite.get("errors")),
                         (str(len(cases)), str(len(expected)), "0"))
        self.assertEqual(root.get("failures"), str(len(expected)))
        by_case = {(r["key"], r["metric"]): r for r in rows}
        self.assertEqual({c for c, r in by_case.items() if r["verdict"] == "REGRESSION"}, expected)
        for case, failure in failed.items():
            row = by_case[case]
            message = failure.get("message")
            # The numbers, the p-values and the threshold, as compare computed them.
            for text in (f"{row['base_median']:.3f}", f"{row['new_median']:.3f}", f"ratio {row['ratio']:.4f}",
                         f"threshold {100 * row['threshold']:.1f}%", f"p = {row['p_value']:.4g}",
                         f"Holm-adjusted p = {row['p_holm']:.4g}", "n=8"):
                self.assertIn(text, message, case)

    def test_noise_fixture_passes_every_case(self):
        proc, root, doc = self.compare("compare8_base", "compare8_noise")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        suite, cases = self.cases(root)
        self.assertEqual(len(cases), len(self.keys("compare8_base")) * len(METRICS))
        self.assertEqual([c for c in cases if c.find("failure") is not None or c.find("error") is not None], [])
        self.assertEqual((suite.get("failures"), suite.get("errors")), ("0", "0"))
        for c in cases:
            self.assertIn("p = ", c.find("system-out").text)

    def test_too_few_repetitions_is_an_error_case(self):
        # 3 vs 3: compare exits 2 ("cannot reach significance"); the JUnit must not look green.
        proc, root, doc = self.compare("compare3_base", "compare3_slow")
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertIn("cannot reach significance", doc["cannot_decide"])
        suite, cases = self.cases(root)
        errors = [c for c in cases if c.find("error") is not None]
        self.assertEqual([(c.get("classname"), c.get("name")) for c in errors], [("acceptbench.compare", "decision")])
        self.assertEqual(errors[0].find("error").get("message"), doc["cannot_decide"])
        self.assertEqual(errors[0].find("error").get("type"), "cannot-decide")
        self.assertEqual((suite.get("errors"), root.get("errors"), suite.get("failures")), ("1", "1", "0"))
        # Every row is still reported (20% slower, but not significant: no failure).
        self.assertEqual(len(cases), len(self.keys("compare3_base")) * len(METRICS) + 1)
        self.assertEqual([c for c in cases if c.find("failure") is not None], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
