#!/usr/bin/python3
"""Renders every figure from the committed fixture and checks that each is a real image."""
import json
import os
import pathlib
import struct
import subprocess
import tempfile
import unittest

SRC = pathlib.Path(os.environ.get("ACCEPTBENCH_SRC", pathlib.Path(__file__).resolve().parents[2]))
PLOT = str(SRC / "plots" / "plot.py")
FIXTURE = SRC / "tests" / "fixtures" / "quick_results.json"
FIGURES = ["conn_rate", "latency_spectrum", "fairness", "cost", "timeseries"]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def run(*args):
    return subprocess.run(["/usr/bin/python3", PLOT, *map(str, args)], capture_output=True, text=True, timeout=300)


class PlotTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = pathlib.Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def check_figure(self, name):
        png, svg = self.out / f"{name}.png", self.out / f"{name}.svg"
        self.assertTrue(png.is_file(), name)
        w, h = png_size(png)
        self.assertGreater(w, 500, name)
        self.assertGreater(h, 300, name)
        self.assertGreater(png.stat().st_size, 15_000, f"{name}.png is suspiciously small")
        self.assertIn("<svg", svg.read_text()[:2000])

    def test_every_figure_and_the_report(self):
        proc = run(FIXTURE, "--out", self.out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for name in FIGURES:
            self.check_figure(name)
        md = (self.out / "report.md").read_text()
        for name in FIGURES:
            self.assertIn(f"({name}.png)", md)
        self.assertIn("Environment:", md)
        # The fixture has 2 repetitions: the interval of the median is [min, max] at 50%, and
        # every label says so (never "95% CI").
        self.assertNotIn("95% CI", md)
        self.assertIn("actual coverage 50%", md)
        self.assertIn("50.0%", md)  # in the results table
        page = (self.out / "report.html").read_text()
        self.assertEqual(page.count("data:image/png;base64,"), len(FIGURES))  # self-contained
        self.assertIn("reuseport", page)

    def test_overloaded_is_tabled_apart_and_not_ranked(self):
        doc = json.loads(FIXTURE.read_text())
        over = next(c for c in doc["configs"] if c["config"]["model"] == "fork-per-conn" and c["config"]["workload"] == "cost")
        over["status"], over["reason"] = "overloaded", "achieved 32% of the offered rate"
        path = self.out / "overloaded.json"
        path.write_text(json.dumps(doc))
        proc = run(path, "--out", self.out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.check_figure("cost")
        md = (self.out / "report.md").read_text()
        ranked, _, apart = md.partition("## Overloaded (not ranked)")
        self.assertTrue(apart, "no table of overloaded configurations")
        self.assertIn("| fork-per-conn | cost |", apart)
        self.assertNotIn("| fork-per-conn | cost |", ranked)
        cost_caption = next(line for line in md.splitlines() if line.startswith("*Per connection the server accepted"))
        self.assertIn("not ranked", cost_caption)

    def test_comparison_figure(self):
        proc = run(FIXTURE, FIXTURE, "--out", self.out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.check_figure("compare")

    def test_bad_input_is_a_clear_error(self):
        missing = run(self.out / "nope.json", "--out", self.out)
        self.assertEqual(missing.returncode, 2)
        self.assertIn("no such results file", missing.stderr)
        garbage = self.out / "garbage.json"
        garbage.write_text("{nope")
        self.assertIn("not valid JSON", run(garbage, "--out", self.out).stderr)
        other = self.out / "other.json"
        other.write_text(json.dumps({"schema": "x"}))
        self.assertEqual(run(other, "--out", self.out).returncode, 2)
        broken = json.loads(FIXTURE.read_text())
        del broken["configs"][0]["summary"]["latency_us"]
        bad = self.out / "broken.json"
        bad.write_text(json.dumps(broken))
        proc = run(bad, "--out", self.out)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("malformed", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
