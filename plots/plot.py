#!/usr/bin/python3
"""acceptbench plots: figures (PNG + SVG) and a report (Markdown + self-contained HTML).

Usage:
  plots/plot.py RESULTS.json [--out DIR]            figures and report for one run
  plots/plot.py BASE.json NEW.json [--out DIR]      also the before/after comparison figure
  plots/plot.py EXP.json [EXP.json ...] [--out DIR] experiments (acceptbench experiment NAME): a section
                                                    each (plots/experiments.py), "Which model when"

Reads results JSON of schema acceptbench/2 (results/SCHEMA.md; acceptbench/1 files still draw, without
the fields /2 added). Writes into DIR (default:
the folder of the last RESULTS file). Run with Debian's /usr/bin/python3 and python3-matplotlib.
Exit 2 with a message on missing or malformed input.
"""
import argparse
import base64
import html
import json
import pathlib
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import experiments  # noqa: E402

PERCENTILES = [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("p9999", 99.99)]
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


class InputError(Exception):
    pass


def load(path):
    p = pathlib.Path(path)
    if not p.is_file():
        raise InputError(f"no such results file: {path}")
    try:
        doc = json.loads(p.read_text())
    except ValueError as e:
        raise InputError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") not in ("acceptbench/1", "acceptbench/2"):
        raise InputError(f"{path} is not an acceptbench/2 (or /1) results file (schema field)")
    if not isinstance(doc.get("configs"), list) or not isinstance(doc.get("env"), dict):
        raise InputError(f"{path} has no configs or env")
    for c in doc["configs"]:
        if "config" not in c or "status" not in c:
            raise InputError(f"{path}: a configuration lacks config or status")
    return doc


def model_order(doc):
    order = []
    for c in doc["configs"]:
        m = c["config"]["model"]
        if m not in order:
            order.append(m)
    return order


def ok_configs(doc):
    """Configurations that can be ranked: measured, and not overloaded."""
    return [c for c in doc["configs"] if c["status"] != "overloaded" and (c["status"] == "ok" or c.get("summary"))]


def overloaded_configs(doc):
    """Did not hold their offered rate: their numbers are kept, drawn and tabled apart, never ranked."""
    return [c for c in doc["configs"] if c["status"] == "overloaded" and c.get("summary")]


def load_label(cfg):
    if cfg["mode"] == "open":
        return f"open loop {cfg['rate']:.0f} conn/s offered"
    return f"closed loop, {cfg['connections']} connections, {cfg['requests_per_conn']} req/conn"


def env_caption(doc):
    e = doc["env"]
    p = e.get("placement", {})
    sysctls = e.get("sysctls", {})
    return (f"{e.get('cpu_model', '?')}, {e.get('cores', '?')} cores, {e.get('kernel', '?').split(' #')[0]}; "
            f"server on CPUs {p.get('server_cpus')}, client on CPUs {p.get('client_cpus')}; "
            f"somaxconn {sysctls.get('net.core.somaxconn')}, tcp_tw_reuse {sysctls.get('net.ipv4.tcp_tw_reuse')}; "
            f"{e.get('build_type', '?')} build, git {str(e.get('git_revision', '?'))[:12]}; run {doc.get('run_id', '?')}")


def coverage_label(cfgs):
    """The actual coverage of the intervals of the median shown (it depends on the repetitions)."""
    cov = sorted({round(100 * x["summary"]["conn_per_s"]["ci_coverage"], 1)
                  for x in cfgs if x.get("summary") and "ci_coverage" in x["summary"].get("conn_per_s", {})})
    return "/".join(f"{c:g}%" for c in cov) if cov else "?"


def config_caption(cfgs):
    c = cfgs[0]["config"]
    reps = sorted({x["config"]["repetitions"] for x in cfgs})
    return (f"{c['workload']} workload: {load_label(c)}; close={c['close']}; work {c['work_us']} us, sleep "
            f"{c['sleep_us']} us, {c['response_bytes']} B responses; {c['duration_s']} s measured after "
            f"{c['warmup_s']} s warm-up; {'/'.join(map(str, reps))} repetitions; medians, bars = interval of the "
            f"median (order statistics) with actual coverage {coverage_label(cfgs)}")


def model_ticks(ax, labels, fontsize=9):
    """Model names under bars, slanted when there are many so that they never overlap."""
    many = len(labels) > 6
    ax.set_xticks(range(len(labels)), labels, fontsize=fontsize if not many else fontsize - 1,
                  rotation=35 if many else 0, ha="right" if many else "center")


def save(fig, out, name, figures, caption):
    experiments.save(fig, out, name, figures, caption, dpi=130)


def groups_by_load(doc):
    """(workload, load label) -> configs, in file order."""
    groups = {}
    for c in ok_configs(doc):
        key = (c["config"]["workload"], load_label(c["config"]))
        groups.setdefault(key, []).append(c)
    return groups


def fig_conn_rate(doc, out, figures):
    groups = [(k, v) for k, v in groups_by_load(doc).items() if v[0]["config"]["mode"] == "closed"]
    if not groups:
        return
    models = model_order(doc)
    fig, axes = plt.subplots(len(groups), 1, figsize=(max(10, 0.95 * len(models)), 3.6 * len(groups)), squeeze=False)
    for ax, ((workload, label), cfgs) in zip(axes[:, 0], groups):
        # Keep-alive runs many requests per connection: requests per second is what they measure.
        metric = "req_per_s" if cfgs[0]["config"]["requests_per_conn"] > 1 else "conn_per_s"
        threads = sorted({c["config"]["server_threads"] for c in cfgs})
        width = 0.8 / len(threads)
        for ti, t in enumerate(threads):
            xs, ys, lo, hi, sat = [], [], [], [], []
            for mi, m in enumerate(models):
                for c in cfgs:
                    if c["config"]["model"] == m and c["config"]["server_threads"] == t:
                        s = c["summary"][metric]
                        xs.append(mi + (ti - (len(threads) - 1) / 2) * width)
                        ys.append(s["median"])
                        lo.append(s["median"] - s["ci_low"])
                        hi.append(s["ci_high"] - s["median"])
                        sat.append(c["summary"]["client_saturated"])
            bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=f"{t} server thread{'s' if t > 1 else ''}",
                          color=COLORS[ti % len(COLORS)])
            for b, s in zip(bars, sat):
                if s:
                    b.set_hatch("//")
        model_ticks(ax, models)
        ax.set_ylabel("requests / s" if metric == "req_per_s" else "connections / s")
        ax.set_title(f"{'Request' if metric == 'req_per_s' else 'Connection'} rate: {workload}, {label}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, title="hatched: client saturated", title_fontsize=7)
    save(fig, out, "conn_rate", figures,
         "Connections per second (requests per second for keep-alive) by model and server threads (median and the "
         "interval of the median, coverage below). Hatched bars: the load client's "
         "CPUs were busy (incl. softirq and steal) above 90% of the window, so the bar is the client's limit, not the "
         "server's. "
         + config_caption([c for _, v in groups for c in v]))


def pick_per_model(doc, prefer_workload="cost"):
    """One configuration per model for per-model figures: the preferred workload at its lowest load,
    the most server threads available."""
    chosen = {}
    for c in ok_configs(doc):
        cfg = c["config"]
        score = (cfg["workload"] == prefer_workload, -(cfg.get("rate") or 0), -(cfg.get("connections") or 0),
                 cfg["server_threads"])
        m = cfg["model"]
        if m not in chosen or score > chosen[m][0]:
            chosen[m] = (score, c)
    return [chosen[m][1] for m in model_order(doc) if m in chosen]


def fig_latency(doc, out, figures):
    picks = pick_per_model(doc)
    if not picks:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    for ax, (kind, title) in zip(axes, [("connect", "connect"), ("ttfb", "time to first byte"),
                                        ("total", "total (from scheduled start)")]):
        for i, c in enumerate(picks):
            lat = c["summary"]["latency_us"][kind]
            ys = [max(lat[k], 0.1) for k, _ in PERCENTILES]
            ax.plot(range(len(PERCENTILES)), ys, marker="o", color=COLORS[i % len(COLORS)],
                    label=f"{c['config']['model']} ({c['config']['server_threads']}t)")
        ax.set_yscale("log")
        ax.set_xticks(range(len(PERCENTILES)), [n.replace("p999", "p99.9").replace("p99.99", "p99.99")
                                                 if n != "p9999" else "p99.99" for n, _ in PERCENTILES])
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("latency (us, log scale)")
    axes[2].legend(fontsize=8)
    save(fig, out, "latency_spectrum", figures,
         "Latency percentile spectrum per model, histograms of all repetitions merged. " + config_caption(picks))


def fig_fairness(doc, out, figures):
    picks = []
    for m in model_order(doc):
        cands = [c for c in ok_configs(doc) if c["config"]["model"] == m and c["config"]["server_threads"] > 1]
        if cands:
            picks.append(max(cands, key=lambda c: (c["config"]["workload"] == "conn", c["config"]["server_threads"],
                                                   c["config"].get("connections") or 0)))
    if not picks:
        return
    cols = min(5, len(picks))
    rows = (len(picks) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(picks):]:
        ax.set_visible(False)
    for ax, c in zip(axes.flat, picks):
        f = c["summary"]["fairness"]
        counts = f["per_acceptor_accepted"]
        total = sum(counts) or 1
        ax.bar(range(len(counts)), [100 * x / total for x in counts], color=COLORS[0])
        ax.axhline(100 / len(counts), color="grey", linestyle="--", linewidth=1, label="even share")
        ax.set_xticks(range(len(counts)))
        ax.set_xlabel("acceptor (worker thread)")
        ax.set_ylabel("% of accepted connections")
        worst = f" (worst {f['jain_worst']:.3f})" if "jain_worst" in f else ""
        ax.set_title(f"{c['config']['model']} ({c['config']['server_threads']}t)\nJain {f['jain_index']:.3f}{worst}",
                     fontsize=10)
        ax.legend(fontsize=7)
    save(fig, out, "fairness", figures,
         "How the accepted connections spread over the acceptors of each multi-acceptor model (the measured windows "
         "of all repetitions, from the server's snapshots). Jain's index: 1 = even, 1/n = one acceptor takes all; "
         "the median of each repetition's own index (worst in brackets), never over summed counts. "
         + config_caption(picks))


def fig_cost(doc, out, figures):
    picks = pick_per_model(doc)
    if any(c["config"]["workload"] == "cost" for c in picks):
        picks = [c for c in picks if c["config"]["workload"] == "cost"]  # one view: never mix workloads
    # Overloaded cost configurations are drawn apart (right of a gap, grey, hatched), never ranked.
    over = [c for c in overloaded_configs(doc) if c["config"]["workload"] == "cost"]
    if not picks and not over:
        return
    shown = picks + over
    xs = list(range(len(picks))) + [len(picks) + 1 + i for i in range(len(over))]
    names = [f"{c['config']['model']} ({c['config']['server_threads']}t)" for c in picks]
    names += [f"{c['config']['model']} ({c['config']['server_threads']}t)\noverloaded {c['config']['rate']:.0f}/s"
              for c in over]
    colors = lambda base: [base] * len(picks) + ["lightgrey"] * len(over)  # noqa: E731

    def bars(ax, key, color, ylabel, title):
        series = [c["summary"].get(key) for c in shown]
        drawn = ax.bar(xs, [s["median"] for s in series],
                       yerr=[[s["median"] - s["ci_low"] for s in series], [s["ci_high"] - s["median"] for s in series]],
                       capsize=3, color=colors(color))
        for b in drawn[len(picks):]:
            b.set_hatch("//")
        ax.set_xticks(xs, names, fontsize=7, rotation=35 if len(xs) > 3 else 0, ha="right" if len(xs) > 3 else "center")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)

    machine_cpu = all("machine_cpu_us_per_conn" in c["summary"] for c in shown)  # not in acceptbench/1 files
    fig, axes = plt.subplots(1, 4 if machine_cpu else 3, figsize=(max(17 if machine_cpu else 13, 1.5 * len(shown)), 5))
    a1, a2, a3 = axes[0], axes[-2], axes[-1]
    bars(a1, "server_cpu_us_per_conn", COLORS[1], "server CPU us per accepted connection", "Server CPU per connection")
    if machine_cpu:
        bars(axes[1], "machine_cpu_us_per_conn", COLORS[4], "busy CPU us (all CPUs) per accepted connection",
             "Machine CPU per connection")
    wasted = [c["summary"]["accept"]["wasted_wakeups_per_accept"] for c in shown]
    wbars = a2.bar(xs, wasted, color=colors(COLORS[3]))
    a2.set_ylim(0, max(max(wasted) * 1.25, 0.05))
    for b, w in zip(wbars, wasted):
        if w > 0:
            a2.annotate(f"{w:.3f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    a2.set_xticks(xs, names, fontsize=7, rotation=35 if len(xs) > 3 else 0, ha="right" if len(xs) > 3 else "center")
    a2.set_ylabel("wasted wakeups per accepted connection")
    a2.set_title("Reported wakeups that found nothing")
    a2.grid(axis="y", alpha=0.3)
    bars(a3, "ctx_switches_per_conn", COLORS[2], "server context switches per connection",
         "Context switches (where the herd shows)")
    coarse = [c["config"]["model"] for c in shown if c["summary"].get("server_cpu_coarse", True)]
    sources = sorted({x for c in shown for x in c["summary"].get("server_cpu_source", [])})
    machine = sorted({x for c in shown for x in c["summary"].get("machine_cpu_source", [])})
    save(fig, out, "cost", figures,
         "Per connection the server accepted in the measured window (the difference of two snapshots the server "
         "printed at the window's edges): server CPU in microseconds (median and the interval of the median, coverage below) from the server's own cgroup "
         f"(source: {', '.join(sources) or 'unknown'}; every thread and child process, exited ones included)"
         + (f"; COARSE for {', '.join(coarse)}: /proc ticks of 10 ms, not comparable" if coarse else "")
         + "; machine CPU: busy time of every CPU (source: " + (", ".join(machine) or "unknown") + "), which also "
         "holds the kernel's listen-path softirq work on the sending CPU and the load client; listen-fd wakeups that "
         "epoll reported but whose accept found nothing; and server context switches (voluntary + involuntary, from "
         "getrusage of the server and its reaped children plus its live children, so exited threads and processes "
         "count). Most of a thundering herd stays inside the kernel (epoll_wait re-checks the fd and sleeps again), so "
         "it shows in the context switches, not in the reported wakeups. Blocking-accept models have no epoll "
         "wakeups. Grey hatched bars, right: overloaded configurations (completed in the window < 98% of the offered with a backlog over 50 ms, "
         "connections unfinished after the drain, or a drain over 200 ms): shown, not ranked. " + config_caption(shown))


def fig_timeseries(doc, out, figures):
    picks = pick_per_model(doc)
    rows = []
    for c in picks:
        reps = [r for r in c["repetitions"] if r.get("status") == "ok"]
        if reps:
            ts = reps[0]["client"]["timeseries"]
            rows.append((c, ts["interval_ms"], ts["completions"]))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(10, 4))
    for i, (c, interval, comp) in enumerate(rows):
        xs = [k * interval / 1000 for k in range(len(comp))]
        ax.plot(xs, [n * 1000 / interval for n in comp], label=f"{c['config']['model']} ({c['config']['server_threads']}t)",
                color=COLORS[i % len(COLORS)])
    ax.set_xlabel("seconds into the measured window")
    ax.set_ylabel("completed connections / s (per 100 ms)")
    ax.set_title("Is the rate stable over the run? (first repetition)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, out, "timeseries", figures,
         "Completions per 100 ms interval over the measured window, first repetition of each configuration. The last "
         "interval is partial. " + config_caption([r[0] for r in rows]))


def fig_compare(base, new, out, figures):
    rows = []
    new_by_key = {c["config"]["key"]: c for c in ok_configs(new)}
    for c in ok_configs(base):
        n = new_by_key.get(c["config"]["key"])
        if n:
            b, a = c["summary"]["conn_per_s"], n["summary"]["conn_per_s"]
            bv = sorted(b["values"])
            av = sorted(a["values"])
            # Marked a regression when the new median is >5% lower and every new repetition is below
            # every base repetition (the harness's compare applies the Mann-Whitney test).
            regressed = a["median"] < 0.95 * b["median"] and av[-1] < bv[0]
            rows.append((c["config"]["key"], b, a, regressed))
    if not rows:
        raise InputError("the two results share no configuration with status ok: nothing to compare")
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(rows)), 4.5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r[1]["median"] for r in rows], 0.4, label=base.get("run_id", "base"), color=COLORS[0])
    bars = ax.bar([x + 0.2 for x in xs], [r[2]["median"] for r in rows], 0.4, label=new.get("run_id", "new"),
                  color=COLORS[1])
    for b, r in zip(bars, rows):
        if r[3]:
            b.set_color("crimson")
            ax.annotate("regression", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=7, color="crimson")
    ax.set_xticks(list(xs), ["\n".join(r[0].split("|")[:4]) for r in rows], fontsize=7)
    ax.set_ylabel("connections / s (median)")
    ax.set_title("Before / after")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save(fig, out, "compare", figures,
         "Median conn/s per configuration, before and after; red: >5% slower with no overlap between repetitions. "
         f"Before: {env_caption(base)}. After: {env_caption(new)}.")


def summary_rows(doc, configs=None):
    rows = []
    for c in doc["configs"] if configs is None else configs:
        cfg = c["config"]
        s = c.get("summary")
        if not s:
            rows.append([cfg["model"], cfg["workload"], cfg["server_threads"], load_label(cfg), "", "", "", "", "", "", "", "",
                         "", f"{c['status']}: {c.get('reason', '')[:80]}"])
            continue
        status = c["status"] + (" (client saturated)" if s["client_saturated"] else "")
        if s.get("client_late"):
            status += f" (client late: start lateness p99 {s['start_lateness_us']['p99']:.0f} us)"
        if s.get("server_cpu_coarse"):
            status += " (CPU coarse)"
        if s.get("disturbed_repetitions"):
            status += f" ({s['disturbed_repetitions']} reps disturbed)"
        machine = s.get("machine_cpu_us_per_conn")
        cov = s["conn_per_s"].get("ci_coverage")
        rows.append([cfg["model"], cfg["workload"], cfg["server_threads"], load_label(cfg),
                     f"{s['conn_per_s']['median']:.0f} [{s['conn_per_s']['ci_low']:.0f}, {s['conn_per_s']['ci_high']:.0f}]"
                     + (f" {100 * cov:.1f}%" if cov is not None else ""),
                     f"{s['latency_us']['total']['p50']:.0f}", f"{s['latency_us']['total']['p99']:.0f}",
                     f"{s['server_cpu_us_per_conn']['median']:.1f}",
                     f"{machine['median']:.1f}" if machine else "n/a", f"{s['ctx_switches_per_conn']['median']:.2f}",
                     f"{s['accept']['wasted_wakeups_per_accept']:.3f}",
                     f"{s['fairness']['jain_index']:.3f}", relative_cell(c, doc), status])
    return rows


def benchmark_times(doc):
    """cost_model benchmark name -> (time, unit), iterations only (no aggregates)."""
    out = {}
    for b in doc.get("cost_model", {}).get("benchmarks", []):
        if b.get("run_type", "iteration") == "iteration" and "error_occurred" not in b:
            out[b["name"]] = (b["real_time"], b.get("time_unit", "ns"), b.get("cpu_time", b["real_time"]))
    return out


def lookup(times, prefix):
    """The benchmark named prefix, or prefix/<variant> (Google Benchmark appends /real_time etc.)."""
    if prefix in times:
        return prefix
    return next((n for n in times if n.startswith(prefix + "/")), None)


def to_us(value, unit, _cpu=None):
    return value * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}.get(unit, 1e-3)


def cpu_us(t):
    return to_us(t[2], t[1])


def cost_model_markdown(doc):
    """The primitives' costs, and beside each model's measured CPU per connection the primitives it pays."""
    cm = doc.get("cost_model")
    if not cm:
        return []
    times = benchmark_times(doc)
    md = ["", "## Cost model: what the primitives cost here (Google Benchmark)", "",
          "| primitive | wall time per operation (us) | CPU time of the timing thread (us) |", "|---|---:|---:|"]
    md += [f"| {name} | {to_us(*t):.3f} | {cpu_us(t):.3f} |" for name, t in times.items()]
    md += ["", cm.get("note", ""), "", "### Each model's measured CPU per connection beside the primitives it pays", "",
           "| model | server CPU us/conn (cost workload, median) | primitives paid per connection (us each) |",
           "|---|---:|---|"]
    picks = {c["config"]["model"]: c for c in pick_per_model(doc)}
    for model, prims in cm.get("per_model", {}).items():
        c = picks.get(model)
        cpu = f"{c['summary']['server_cpu_us_per_conn']['median']:.1f}" if c else "n/a"
        paid = ", ".join(f"{name} {to_us(*times[name]):.2f}" for name in (lookup(times, p) for p in prims) if name)
        md.append(f"| {model} | {cpu} | {paid} |")
    md += ["", "The model figure is the server's side only; a primitive such as connect+accept+close includes the "
           "client's share, and round trips include two wake-ups: read them as orders of magnitude, not a sum."]
    return md


HEADER = ["model", "workload", "threads", "load", "conn/s [interval of median, coverage]", "p50 us", "p99 us",
          "CPU us/conn", "machine CPU us/conn", "ctx sw/conn", "wasted/accept", "Jain", "CPU vs reuseport", "status"]


def relative_cell(c, doc):
    """CPU per connection over reuseport's under the same conditions in the same run."""
    r = experiments.relative_cpu(c, doc["configs"])
    return f"{r:.2f}x" if r is not None else ""


def write_report(docs, out, figures, extra_md=()):
    doc = docs[-1]
    shown = docs if extra_md else [doc]  # experiments: every experiment's rows
    rows = [r for d in shown for r in summary_rows(d, [c for c in d["configs"] if c not in overloaded_configs(d)])]
    over_rows = [r for d in shown for r in summary_rows(d, overloaded_configs(d))]
    md = [f"# acceptbench report: run {doc.get('run_id', '?')}", "", f"Environment: {env_caption(doc)}", ""]
    for note in doc.get("notes", []):
        md.append(f"- {note}")
    md += ["", "## Results", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    if over_rows:
        md += ["", "## Overloaded (not ranked)", "",
               "These did not hold their offered rate (completed in the window < 98% of the offered with a backlog over 50 ms, connections unfinished after the drain, or a drain over 200 ms); "
               "their numbers are kept for the record but are not comparable with the ones above.", "",
               "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        md += ["| " + " | ".join(str(x) for x in r) + " |" for r in over_rows]
    md += cost_model_markdown(doc)
    md += list(extra_md)
    md += ["", "## Figures", ""]
    for name, caption in figures:
        md += [f"![{name}]({name}.png)", "", f"*{caption}*", "", f"Environment: {env_caption(doc)}", ""]
    (out / "report.md").write_text("\n".join(md) + "\n")

    h = ["<!doctype html><html><head><meta charset='utf-8'><title>acceptbench report</title>",
         "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
         "img{max-width:100%}.cap{color:#444;font-size:13px}</style></head><body>",
         f"<h1>acceptbench report: run {html.escape(str(doc.get('run_id', '?')))}</h1>",
         f"<p class='cap'>Environment: {html.escape(env_caption(doc))}</p><ul>"]
    h += [f"<li>{html.escape(n)}</li>" for n in doc.get("notes", [])]
    h += ["</ul><h2>Results</h2><table><tr>" + "".join(f"<th>{html.escape(x)}</th>" for x in HEADER) + "</tr>"]
    h += ["<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows]
    if over_rows:
        h += ["</table><h2>Overloaded (not ranked)</h2><table><tr>"
              + "".join(f"<th>{html.escape(x)}</th>" for x in HEADER) + "</tr>"]
        h += ["<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in over_rows]
    h += ["</table>"]
    if extra_md:
        h += [markdown_to_html(extra_md, out)]
    h += ["<h2>Figures</h2>"]
    for name, caption in figures:
        data = base64.b64encode((out / f"{name}.png").read_bytes()).decode()
        h += [f"<figure><img alt='{name}' src='data:image/png;base64,{data}'>",
              f"<figcaption class='cap'>{html.escape(caption)}<br>Environment: {html.escape(env_caption(doc))}"
              "</figcaption></figure>"]
    h += ["</body></html>"]
    (out / "report.html").write_text("\n".join(h))


def markdown_to_html(lines, out):
    """The experiments' Markdown (headings, paragraphs, lists, tables, images) as HTML, images inlined."""
    h, in_list, in_table = [], False, False
    for line in lines:
        if in_list and not line.startswith("- "):
            h.append("</ul>")
            in_list = False
        if in_table and not line.startswith("|"):
            h.append("</table>")
            in_table = False
        text = html.escape(line)
        text = __import__("re").sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        if line.startswith("## "):
            h.append(f"<h2>{text[3:]}</h2>")
        elif line.startswith("!["):
            name = line[line.index("(") + 1:line.index(")")]
            data = base64.b64encode((out / name).read_bytes()).decode()
            h.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
        elif line.startswith("- "):
            if not in_list:
                h.append("<ul>")
                in_list = True
            h.append(f"<li>{text[2:]}</li>")
        elif line.startswith("|"):
            cells = [x.strip() for x in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-:"):
                continue
            if not in_table:
                h.append("<table>")
                in_table = True
                h.append("<tr>" + "".join(f"<th>{html.escape(x)}</th>" for x in cells) + "</tr>")
            else:
                h.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
        elif line.strip():
            h.append(f"<p class='cap'>{text}</p>" if line.startswith("*") else f"<p>{text}</p>")
    h.append("</ul>" if in_list else "")
    h.append("</table>" if in_table else "")
    return "\n".join(h)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="RESULTS.json, or BASE.json NEW.json")
    ap.add_argument("--out", help="output folder (default: the folder of the last results file)")
    args = ap.parse_args(argv)
    try:
        docs = [load(p) for p in args.results]
        exp_docs = [d for d in docs if d.get("experiment")]
        if len(docs) > 2 and len(exp_docs) != len(docs):
            ap.error("give one results file, two (BASE NEW), or experiments' results files")
        out = pathlib.Path(args.out) if args.out else pathlib.Path(args.results[-1]).resolve().parent
        out.mkdir(parents=True, exist_ok=True)
        figures = []
        doc = docs[-1]
        if exp_docs and len(exp_docs) == len(docs):
            src = pathlib.Path(__file__).resolve().parent.parent
            extra = experiments.sections(docs, out, figures, env_caption, src)
            write_report(docs, out, [], extra)
            print(f"report: {out / 'report.html'} (and report.md, findings.json, {len(figures)} figures)")
            return 0
        if not ok_configs(doc):
            raise InputError(f"{args.results[-1]} has no configuration with results to plot")
        fig_conn_rate(doc, out, figures)
        fig_latency(doc, out, figures)
        fig_fairness(doc, out, figures)
        fig_cost(doc, out, figures)
        fig_timeseries(doc, out, figures)
        if len(docs) == 2:
            fig_compare(docs[0], docs[1], out, figures)
        write_report(docs, out, figures)
    except InputError as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, ValueError) as e:
        print(f"plot.py: error: malformed results ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    print(f"report: {out / 'report.html'} (and report.md, {len(figures)} figures as PNG and SVG)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
