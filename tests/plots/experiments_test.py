#!/usr/bin/python3
"""The named experiments end to end on their tiny presets (acceptbench experiment NAME --quick),
checking the analysis, not the machine: the JSON validates against results/schema.json, every
number of a finding equals what this test recomputes from the results JSON with its own code,
and a model that cannot hold the c10k background is reported as such. About 40 s."""
import itertools
import json
import math
import os
import pathlib
import statistics
import subprocess
import tempfile
import unittest

import jsonschema

SRC = pathlib.Path(os.environ.get("ACCEPTBENCH_SRC", pathlib.Path(__file__).resolve().parents[2]))
BIN = pathlib.Path(os.environ.get("ACCEPTBENCH_BIN", SRC / "build" / "bin"))
NAMES = ["herd", "skew", "stall", "c10k"]


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def perm_p(a, b):
    """Two-sided exact permutation p of the rank-sum, written independently of the plots' code."""
    pooled = a + b
    srt = sorted(pooled)

    def rank(x):
        lo = srt.index(x)
        hi = len(srt) - 1 - srt[::-1].index(x)
        return (lo + hi) / 2 + 1

    ranks = [rank(x) for x in pooled]
    mean = len(a) * (len(pooled) + 1) / 2
    obs = abs(sum(ranks[: len(a)]) - mean)
    splits = list(itertools.combinations(range(len(pooled)), len(a)))
    return sum(abs(sum(ranks[i] for i in s) - mean) >= obs - 1e-9 for s in splits) / len(splits)


def fit_slope(xs, ys):
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def window_counts(rep):
    """Each acceptor's connections in the measured window (the snapshots' difference, issue 12),
    else over the server's life (exit stats)."""
    d = rep.get("derived", {})
    if "per_acceptor_accepted" in d:
        return d["per_acceptor_accepted"]
    return [a["accepted"] for a in rep["server"]["acceptors"]]


def window_totals(rep):
    """The accept counters over the measured window (the snapshots', issue 12), else exit stats."""
    snap = rep.get("snapshot")
    return snap["totals"] if snap and "totals" in snap else rep["server"]["totals"]


def jain(xs):
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))


class ExperimentsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix=f"acceptbench-exp-{os.getpid()}-")
        root = pathlib.Path(cls.tmp.name)
        cls.docs, cls.paths = {}, []
        for name in NAMES:
            out = root / name / "results.json"
            proc = subprocess.run([str(BIN / "acceptbench"), "experiment", name, "--quick", "--no-report", "--out", str(out)],
                                  capture_output=True, text=True, timeout=240)
            assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"
            cls.docs[name] = json.loads(out.read_text())
            cls.paths.append(str(out))
        cls.out = root / "report"
        proc = subprocess.run(["/usr/bin/python3", str(SRC / "plots" / "plot.py"), *cls.paths, "--out", str(cls.out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        cls.findings = json.loads((cls.out / "findings.json").read_text())
        cls.md = (cls.out / "report.md").read_text()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ok(self, name):
        return [c for c in self.docs[name]["configs"] if c["status"] == "ok"]

    def test_results_validate_against_the_schema(self):
        schema = json.loads((SRC / "results" / "schema.json").read_text())
        for name, doc in self.docs.items():
            jsonschema.validate(doc, schema)
            self.assertEqual(doc["experiment"]["name"], name)

    def test_every_experiment_has_its_section_figure_and_environment(self):
        for name in NAMES:
            self.assertIn(f"## Experiment {name}", self.md)
            self.assertIn(f"**Finding ({name}).**", self.md)
        for fig in ["exp_herd_slow", "exp_skew", "exp_stall", "exp_c10k"]:
            self.assertTrue((self.out / f"{fig}.png").is_file(), fig)
            self.assertIn(f"({fig}.png)", self.md)
        self.assertGreaterEqual(self.md.count("Environment:"), 5)
        self.assertIn("## Which model when", self.md)
        self.assertEqual((self.out / "report.html").read_text().count("data:image/png;base64,"), 4)

    def test_herd_slopes_and_tokio_count_recomputed(self):
        got = self.findings["experiments"]["herd"]
        for model, v in got["loads"]["slow"].items():
            cs = sorted([c for c in self.ok("herd") if c["config"]["model"] == model and c["config"]["mode"] == "open"],
                        key=lambda c: c["config"]["server_threads"])
            ws = [c["config"]["server_threads"] for c in cs]
            ctx = [statistics.median(c["summary"]["ctx_switches_per_conn"]["values"]) for c in cs]
            self.assertEqual(v["workers"], ws)
            self.assertTrue(close(v["ctx_slope"], fit_slope(ws, ctx)), model)
            wasted = [statistics.median([window_totals(r)["wasted_wakeups"] / window_totals(r)["accepted"]
                                         for r in c["repetitions"] if r["status"] == "ok"]) for c in cs]
            self.assertTrue(close(v["wasted_slope"], fit_slope(ws, wasted)), model)
            self.assertIn(f"{model} (slow arrivals): {v['ctx_slope']:.3f} context switches", self.md)
        tok = got["tokio"]
        top = max(c["config"]["server_threads"] for c in self.ok("herd"))
        pick = {c["config"]["model"]: c for c in self.ok("herd") if c["config"]["server_threads"] == top}
        sh = statistics.median(pick["epoll-shared"]["summary"]["ctx_switches_per_conn"]["values"])
        ex = statistics.median(pick["epoll-exclusive"]["summary"]["ctx_switches_per_conn"]["values"])
        self.assertTrue(close(tok["ratio"], sh / ex))
        self.assertIn(f"a multiple of {sh / ex:.2f} against tokio's {top}", self.md)

    def test_skew_jain_per_repetition_recomputed(self):
        got = self.findings["experiments"]["skew"]
        for model, v in got["models"].items():
            cs = sorted([c for c in self.ok("skew") if c["config"]["model"] == model], key=lambda c: c["config"]["rate"])
            for c, med, worst in zip(cs, v["jain_median"], v["jain_worst"]):
                per_rep = [jain(window_counts(r)) for r in c["repetitions"]
                           if r["status"] == "ok"]
                self.assertTrue(close(med, statistics.median(per_rep)), model)
                self.assertTrue(close(worst, min(per_rep)), model)
            self.assertIn(f"- {model}: {v['jain_median'][0]:.3f} [{v['jain_worst'][0]:.3f}]", self.md)

    def test_stall_tails_and_their_significance_recomputed(self):
        got = self.findings["experiments"]["stall"]["variants"]
        for variant, e in got.items():
            cs = {c["config"]["model"]: c for c in self.ok("stall") if c["config"]["variant"] == variant}
            for model, row in e["models"].items():
                self.assertEqual(row["p99"], cs[model]["summary"]["latency_us"]["total"]["p99"])
                self.assertEqual(row["p999"], cs[model]["summary"]["latency_us"]["total"]["p999"])
            rp = cs["reuseport"]["summary"]["p99_total_us"]["values"]
            sh = cs["epoll-exclusive"]["summary"]["p99_total_us"]["values"]
            cmp_ = e["reuseport_vs_shared"]
            if statistics.median(sh) > 0:
                self.assertTrue(close(cmp_["ratio_p99"], statistics.median(rp) / statistics.median(sh)))
            else:  # no ratio to a zero median
                self.assertIsNone(cmp_["ratio_p99"], sh)
            self.assertTrue(close(cmp_["significance"]["p"], perm_p(rp, sh)))
            if cmp_["ratio_p99"] is not None:
                self.assertIn(f"reuseport's p99 is {cmp_['ratio_p99']:.2f}x epoll-exclusive's", self.md)
        # The stall flags did what they say, counted in the servers' stats.
        stall_variant = [c for c in self.ok("stall") if "--stall-worker" in c["config"]["server_args"]]
        self.assertTrue(stall_variant)
        for c in stall_variant:
            for r in c["repetitions"]:
                acceptors = r["server"]["acceptors"]
                # Worker 0 stalls only on requests it serves: at this low rate epoll-exclusive's LIFO
                # wake-up can hand every connection of a repetition to the other worker.
                self.assertLessEqual(acceptors[0]["stalls"], acceptors[0]["requests"])
                self.assertTrue(all(a["stalls"] == 0 for a in acceptors[1:]))
        reuseport = [r for c in stall_variant if c["config"]["model"] == "reuseport" for r in c["repetitions"]]
        self.assertTrue(reuseport)
        self.assertTrue(all(r["server"]["acceptors"][0]["stalls"] >= 1 for r in reuseport))

    def test_c10k_cannot_hold_is_reported_and_memory_recomputed(self):
        cs = self.docs["c10k"]["configs"]
        it = [c for c in cs if c["config"]["model"] == "iterative" and c["config"]["hold"] > 0]
        self.assertEqual([c["status"] for c in it], ["cannot_hold"])
        self.assertIn("held 1 of 200", it[0]["reason"])
        self.assertIsNone(it[0]["summary"])
        self.assertEqual(len(it[0]["repetitions"]), 1)  # one repetition shows it: the later rounds skip the rest
        self.assertEqual(it[0]["repetitions_skipped"], it[0]["config"]["repetitions"] - 1)
        seq = self.docs["c10k"]["execution"]["sequence"]
        self.assertEqual(sum(e["key"] == it[0]["config"]["key"] for e in seq), 1)
        self.assertEqual(len(seq), sum(len(c["repetitions"]) for c in cs))
        got = self.findings["experiments"]["c10k"]
        self.assertIn("iterative", got["cannot_hold_top"])
        self.assertIn("- iterative: **cannot hold 200**", self.md)
        rp = next(c for c in cs if c["config"]["model"] == "reuseport" and c["config"]["hold"] == 200)
        self.assertEqual(rp["status"], "ok")
        per_rep = [(r["hold"]["server_pss_after_kb"] - r["hold"]["server_pss_before_kb"]) * 1024 / r["hold"]["held"]
                   for r in rp["repetitions"]]
        self.assertTrue(close(got["held_top"]["reuseport"]["bytes_per_conn"], statistics.median(per_rep)))
        self.assertTrue(all(r["hold"]["held"] == 200 and r["hold"]["still_open_at_end"] == 200 for r in rp["repetitions"]))

    def test_which_model_when_recomputed(self):
        rows = self.findings["which_model_when"]
        skew = [c for c in self.ok("skew") if c["config"]["rate"] == min(x["config"]["rate"] for x in self.ok("skew"))]
        jains = {c["config"]["model"]: statistics.median(
            [jain(window_counts(r)) for r in c["repetitions"] if r["status"] == "ok"])
            for c in skew}
        best = max(jains, key=jains.get)
        self.assertEqual(rows["even spread"]["best"], best)
        self.assertTrue(close(rows["even spread"]["best_value"], jains[best]))
        stall = [c for c in self.ok("stall") if "--stall-worker" in c["config"]["server_args"]]
        p99 = {c["config"]["model"]: statistics.median(c["summary"]["p99_total_us"]["values"]) for c in stall}
        order = sorted(p99, key=p99.get)
        row = rows["tail under a blocking worker"]
        self.assertEqual((row["best"], row["runner_up"]), (order[0], order[1]))
        a = next(c for c in stall if c["config"]["model"] == order[0])["summary"]["p99_total_us"]["values"]
        b = next(c for c in stall if c["config"]["model"] == order[1])["summary"]["p99_total_us"]["values"]
        self.assertTrue(close(row["significance"]["p"], perm_p(a, b)))
        # Two repetitions a side cannot reach 5%: the table must say so.
        self.assertFalse(row["significance"]["significant"])
        self.assertIn("| tail under a blocking worker |", self.md)
        self.assertIn("**not significant**", self.md)
        self.assertIn("memory at 200 connections", rows)
        self.assertEqual(rows["memory at 200 connections"]["best"], "reuseport")  # iterative cannot hold
        self.assertIn("simplicity", rows)

    def test_relative_to_reuseport_in_the_same_run(self):
        for c in self.ok("skew"):
            ref = next(x for x in self.ok("skew") if x["config"]["model"] == "reuseport"
                       and x["config"]["rate"] == c["config"]["rate"])
            mine = statistics.median(c["summary"]["server_cpu_us_per_conn"]["values"])
            base = statistics.median(ref["summary"]["server_cpu_us_per_conn"]["values"])
            # /proc ticks can give 0 over a tiny window: then the ratio is n/a, never a division by zero.
            rel = f"{mine / base:.2f}x" if base > 0 else "n/a"
            self.assertIn(f"| {c['config']['model']} | {c['config']['server_threads']} | cost, "
                          f"{c['config']['rate']:.0f}/s | ok | {mine:.1f} | {rel} |", self.md)


if __name__ == "__main__":
    unittest.main(verbosity=2)
