#!/usr/bin/python3
"""The installed acceptbench, and its data out.

Installs the build into a temporary prefix, runs one short configuration from the installed
copy with the build and source trees hidden (a private mount namespace puts an empty tmpfs
over them), then checks `export --format csv` against results/SCHEMA.md's documented columns
and `export --format hgrm` by reading the files back with the small independent parser below.

Environment: ACCEPTBENCH_BUILD (the build folder), ACCEPTBENCH_SRC (the source tree).
"""
import csv
import io
import json
import math
import os
import pathlib
import random
import shutil
import subprocess
import tempfile
import unittest

BUILD = pathlib.Path(os.environ["ACCEPTBENCH_BUILD"])
SRC = pathlib.Path(os.environ["ACCEPTBENCH_SRC"])
KINDS = ("connect", "ttfb", "total", "total_uncorrected")
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9, "p9999": 99.99}


def read_hgrm(text):
    """HdrHistogram percentile-distribution text -> ([(value, percentile, total_count)], footer)."""
    rows, footer = [], {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#["):
            for part in line.strip("#[]").split(","):
                name, value = part.split("=")
                footer[name.strip()] = float(value)
        elif line and not line.startswith("Value"):
            fields = line.split()
            rows.append((float(fields[0]), float(fields[1]), int(fields[2])))
    return rows, footer


def value_at(rows, percentile):
    """The value at a percentile (0..100): the first line at or above it."""
    for value, p, _ in rows:
        if p >= percentile / 100 - 1e-12:
            return value
    return rows[-1][0]


def bucket_width_ns(value_ns):
    """Width of the log-linear/7/35 bucket holding a value (clients/histogram.hpp)."""
    v = int(value_ns)
    return 1 if v < 128 else 1 << (v.bit_length() - 1 - 7)


def documented_csv_columns():
    text = (SRC / "results" / "SCHEMA.md").read_text()
    section = text.split("## CSV export", 1)[1].split("\n## ", 1)[0]
    return [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]


class InstalledCopy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"acceptbench-install-{os.getpid()}-"))
        cls.prefix = cls.tmp / "prefix"
        subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(cls.prefix)], check=True,
                       capture_output=True, timeout=120)
        cls.harness = str(cls.prefix / "bin" / "acceptbench")
        cls.results = cls.tmp / "run" / "results.json"
        run = [cls.harness, "run", "--model", "reuseport", "--server-threads", "1", "--workloads", "conn",
               "--connections", "4", "--duration", "1", "--warmup", "0.2", "--repetitions", "2",
               "--out", str(cls.results)]
        # Hide the build and the source tree: nothing of them is in reach of the installed copy.
        # Where mount namespaces are not allowed (an unprivileged container) the run is not
        # hidden; test_layout still shows the installed copy defaults to its own prefix.
        hide = " && ".join(f"mount -t tmpfs none '{d}'" for d in (BUILD, SRC))
        cls.can_hide = subprocess.run(["unshare", "--mount", "sh", "-c", hide], capture_output=True,
                                      timeout=30).returncode == 0
        if not cls.can_hide:
            print("install_export_test: no mount namespace here; the run is not hidden from the build tree")
        wrap = ["unshare", "--mount", "sh", "-c", hide + ' && exec "$@"', "sh"] if cls.can_hide else []
        cls.hidden = subprocess.run(wrap + run, capture_output=True, text=True, timeout=120, cwd=cls.tmp)
        cls.doc = json.loads(cls.results.read_text()) if cls.results.exists() else None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_layout(self):
        for part in ("bin/acceptbench", "bin/loadgen", "libexec/acceptbench/reuseport", "libexec/acceptbench/cost_model",
                     "share/acceptbench/models.json", "share/acceptbench/presets/quick.json",
                     "share/acceptbench/plot.py"):
            self.assertTrue((self.prefix / part).exists(), part)
        models = json.loads((self.prefix / "share/acceptbench/models.json").read_text())["models"]
        for m in models:
            self.assertTrue((self.prefix / "libexec/acceptbench" / m["id"]).exists(), m["id"])
        help_text = subprocess.run([self.harness, "run", "--help"], capture_output=True, text=True, timeout=30).stdout
        self.assertIn(f"--bin-dir arg (={self.prefix}/libexec/acceptbench)", help_text)

    def test_run_from_the_installed_copy_with_no_build_tree(self):
        self.assertEqual(self.hidden.returncode, 0, self.hidden.stdout + self.hidden.stderr)
        self.assertEqual([c["status"] for c in self.doc["configs"]], ["ok"], self.hidden.stdout)
        # The preset comes from share/acceptbench too (quick is sweep's default).
        proc = subprocess.run([self.harness, "sweep", "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0)

    def test_csv_one_row_per_repetition_with_the_documented_columns(self):
        self.assertIsNotNone(self.doc, self.hidden.stderr)
        proc = subprocess.run([self.harness, "export", str(self.results), "--format", "csv"], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        table = list(csv.reader(io.StringIO(proc.stdout)))
        columns = documented_csv_columns()
        self.assertEqual(table[0], columns)
        rows = [dict(zip(columns, r)) for r in table[1:]]
        expected = [(c["config"]["key"], j, rep) for c in self.doc["configs"] for j, rep in enumerate(c["repetitions"])]
        self.assertEqual(len(rows), len(expected))
        for row, (key, j, rep) in zip(rows, expected):
            self.assertEqual(len(row), len(columns))
            self.assertEqual((row["key"], int(row["repetition"]), row["status"]), (key, j, rep["status"]))
            self.assertAlmostEqual(float(row["conn_per_s"]), rep["derived"]["conn_per_s"], places=6)
            self.assertEqual(int(row["client_connections"]), rep["client"]["connections"])
            self.assertEqual(row["round"], str(rep.get("round", "")))
            if rep["status"] == "ok":
                self.assertEqual(row["client_late"], "true" if rep["derived"]["client_late"] else "false")
                self.assertEqual(row["overloaded"], "true" if rep["derived"]["overloaded"] else "false")
                self.assertAlmostEqual(float(row["accepted_in_window"]), rep["derived"]["accepted_in_window"], places=6)
            if rep["client"]["latency_ns"]["total"]["count"]:
                self.assertAlmostEqual(float(row["total_p99_us"]) * 1000, rep["client"]["latency_ns"]["total"]["p99"],
                                       delta=1e-6)
            else:  # no connection completed (an overloaded machine): no latency, an empty cell
                self.assertEqual(row["total_p99_us"], "")

    def test_hgrm_percentiles_match_the_json_within_bucket_width(self):
        self.assertIsNotNone(self.doc, self.hidden.stderr)
        if self.doc["configs"][0]["summary"]["latency_us"]["total"]["count"] == 0:
            self.skipTest("the run completed no connection (an overloaded machine): see the synthetic test")
        out = self.tmp / "hgrm"
        proc = subprocess.run([self.harness, "export", str(self.results), "--format", "hgrm", "--out", str(out)],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        config = self.doc["configs"][0]
        stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in config["config"]["key"])
        self.assertEqual(sorted(p.name for p in out.iterdir()), sorted(f"{stem}.{k}.hgrm" for k in KINDS))
        for kind in KINDS:
            summary = config["summary"]["latency_us"][kind]
            rows, footer = read_hgrm((out / f"{stem}.{kind}.hgrm").read_text())
            self.assertGreater(len(rows), 10, kind)
            self.assertEqual(rows[-1][1], 1.0)
            self.assertEqual(rows[-1][2], summary["count"])
            self.assertEqual(footer["Total count"], summary["count"])
            self.assertEqual([r[1] for r in rows], sorted(r[1] for r in rows))  # percentiles ascend
            self.assertEqual([r[0] for r in rows], sorted(r[0] for r in rows))  # and so do values
            for name, p in PERCENTILES.items():
                hgrm_ns = value_at(rows, p) * 1e6  # milliseconds, as wrk2 prints them
                json_ns = summary[name] * 1000
                tolerance = bucket_width_ns(json_ns) + 2  # + the two files' 1 ns rounding
                self.assertLessEqual(abs(hgrm_ns - json_ns), tolerance, f"{kind} {name}: {hgrm_ns} vs {json_ns}")
            self.assertLessEqual(abs(footer["Max"] * 1e6 - summary["max"] * 1000), 2)
            self.assertTrue(math.isclose(footer["Mean"] * 1e6, summary["mean"] * 1000, rel_tol=1e-6, abs_tol=2))

    def test_hgrm_of_known_samples_within_bucket_width(self):
        """Samples drawn here, binned with the layout's own rule, exported: every line's value is
        within a bucket width of the true sample percentile at its level."""
        rng = random.Random(17)
        samples = {kind: sorted(int(rng.lognormvariate(11, 1.2)) + 1 for _ in range(5000)) for kind in KINDS}

        def histogram(values):
            buckets = {}
            for v in values:
                shift = max(0, v.bit_length() - 1 - 7)
                index = v if v < 128 else 128 + shift * 128 + ((v >> shift) - 128)
                buckets[index] = buckets.get(index, 0) + 1
            return {"layout": "log-linear/7/35", "count": len(values), "min": min(values), "max": max(values),
                    "sum": float(sum(values)), "mean": sum(values) / len(values), "clamped": 0,
                    "buckets": sorted([i, c] for i, c in buckets.items())}

        # Two repetitions: the export must merge them.
        reps = [{"status": "ok", "client": {"latency_ns": {k: histogram(samples[k][half::2]) for k in KINDS}}}
                for half in (0, 1)]
        doc = {"schema": "acceptbench/2", "run_id": "synthetic", "env": {},
               "configs": [{"config": {"key": "synthetic|conn", "model": "synthetic"}, "status": "ok",
                            "repetitions": reps}]}
        path = self.tmp / "synthetic.json"
        path.write_text(json.dumps(doc))
        out = self.tmp / "synthetic-hgrm"
        proc = subprocess.run([self.harness, "export", str(path), "--format", "hgrm", "--out", str(out), "--unit", "us"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for kind in KINDS:
            values = samples[kind]
            rows, footer = read_hgrm((out / f"synthetic_conn.{kind}.hgrm").read_text())
            self.assertEqual(rows[-1][2], len(values))
            for value_us, level, _ in rows:
                true_ns = values[max(1, math.ceil(round(level * len(values), 9))) - 1]
                self.assertLessEqual(abs(value_us * 1000 - true_ns), bucket_width_ns(true_ns) + 1, (kind, level))
            for p in PERCENTILES.values():
                true_ns = values[max(1, math.ceil(round(p / 100 * len(values), 9))) - 1]
                self.assertLessEqual(abs(value_at(rows, p) * 1000 - true_ns), bucket_width_ns(true_ns) + 1, (kind, p))
            self.assertEqual(footer["Max"] * 1000, values[-1])

    def test_export_bad_input_exits_2(self):
        bad = self.tmp / "bad.json"
        bad.write_text("{oops")
        for args in ([str(bad), "--format", "csv"], [str(self.results), "--format", "xml"],
                     [str(self.results), "--format", "hgrm"], ["--format", "csv"],
                     [str(self.results), "--format", "csv", "--out", "/proc/no/such.csv"],
                     [str(self.results), "--format", "hgrm", "--out", "/proc/no/such"]):
            proc = subprocess.run([self.harness, "export", *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn("error", proc.stderr, args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
