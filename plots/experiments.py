"""The named experiments' analysis (acceptbench experiment NAME): one report section each, with
figures and a finding whose every number is computed here from the results, and the closing
"Which model when" table.

plots/plot.py calls sections(docs, out, figures, env_caption) for the results files that carry an
"experiment" field. The findings' numbers are also written to findings.json beside the report,
so that a test can recompute them from the results JSON and compare.

Every read of a results field goes through the accessors below (class R): when a field of the
results JSON is renamed, the change is one line there.
"""
import itertools
import json
import math
import pathlib
import re
import statistics

import matplotlib.pyplot as plt

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
ALPHA = 0.05  # two-sided significance level of the rank tests
REFERENCE = "reuseport"  # every model's cost is also shown relative to it, from the same run


# --- The one place that reads the results JSON ----------------------------------------------
class R:
    """Accessors of one configuration result `c` (an element of configs[]) and its repetitions."""

    @staticmethod
    def cfg(c):
        return c["config"]

    @staticmethod
    def model(c):
        return c["config"]["model"]

    @staticmethod
    def threads(c):
        return c["config"]["server_threads"]

    @staticmethod
    def workload(c):
        return c["config"]["workload"]

    @staticmethod
    def rate(c):
        return c["config"].get("rate") or 0

    @staticmethod
    def variant(c):
        return c["config"].get("variant", "")

    @staticmethod
    def server_args(c):
        return c["config"].get("server_args", [])

    @staticmethod
    def hold(c):
        return c["config"].get("hold", 0)

    @staticmethod
    def status(c):
        return c["status"]

    @staticmethod
    def reason(c):
        return c.get("reason", "")

    @staticmethod
    def rankable(c):
        """Only `ok` configurations are ranked (overloaded, failed and cannot_hold are not)."""
        return c["status"] == "ok" and bool(c.get("summary"))

    @staticmethod
    def ok_reps(c):
        return [r for r in c.get("repetitions", []) if r.get("status") == "ok"]

    @staticmethod
    def cpu_us_per_conn(c):
        return list(c["summary"]["server_cpu_us_per_conn"]["values"])

    @staticmethod
    def ctx_per_conn(c):
        return list(c["summary"]["ctx_switches_per_conn"]["values"])

    @staticmethod
    def p99_us(c):
        """Per repetition: p99 of total latency (from the scheduled start in open loop)."""
        return list(c["summary"]["p99_total_us"]["values"])

    @staticmethod
    def latency_us(c, pct):
        """All repetitions merged: pct in p50, p90, p99, p999, p9999, max."""
        return c["summary"]["latency_us"]["total"][pct]

    @staticmethod
    def rep_totals(rep):
        """A repetition's accept counters over its window when the server sent snapshots, else
        its exit stats (warm-up included)."""
        snap = rep.get("snapshot")
        return snap["totals"] if snap and "totals" in snap else rep["server"]["totals"]

    @staticmethod
    def per_rep(c, numerator, denominator="accepted"):
        out = []
        for rep in R.ok_reps(c):
            t = R.rep_totals(rep)
            if t.get(denominator):
                out.append(t.get(numerator, 0) / t[denominator])
        return out

    @staticmethod
    def rep_acceptor_counts(rep):
        d = rep.get("derived", {})
        if "per_acceptor_accepted" in d:
            return d["per_acceptor_accepted"]
        return [a["accepted"] for a in rep["server"]["acceptors"]]

    @staticmethod
    def jain_per_rep(c):
        """Jain's index of each repetition (the harness's own when it has it)."""
        f = c["summary"]["fairness"]
        if "jain_per_repetition" in f:
            return list(f["jain_per_repetition"])
        return [jain(R.rep_acceptor_counts(rep)) for rep in R.ok_reps(c)]

    @staticmethod
    def fairness_source(c):
        return c["summary"]["fairness"].get("source", "exit-stats (warm-up included)")

    @staticmethod
    def acceptor_share(c):
        """Each acceptor's share of the connections, all repetitions summed."""
        counts = c["summary"]["fairness"]["per_acceptor_accepted"]
        total = sum(counts) or 1
        return [x / total for x in counts]

    @staticmethod
    def hold_bytes_per_conn(c):
        h = c["summary"].get("hold") or {}
        s = h.get("server_bytes_per_conn")
        return list(s["values"]) if s else []

    @staticmethod
    def hold_threads(c):
        return (c["summary"].get("hold") or {}).get("server_threads_max")

    @staticmethod
    def hold_processes(c):
        return (c["summary"].get("hold") or {}).get("server_processes_max")

    @staticmethod
    def stalls(c):
        return sum(R.rep_totals_exit(rep).get("stalls", 0) for rep in R.ok_reps(c))

    @staticmethod
    def slept(c):
        return sum(R.rep_totals_exit(rep).get("slept", 0) for rep in R.ok_reps(c))

    @staticmethod
    def rep_totals_exit(rep):
        return rep["server"]["totals"]


# --- Statistics ---------------------------------------------------------------------------
def jain(xs):
    s, q = sum(xs), sum(x * x for x in xs)
    return (s * s) / (len(xs) * q) if xs and q > 0 else 1.0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def mann_whitney_p(a, b):
    """Two-sided p of the Mann-Whitney U test: exact (all splits of the pooled values, ties by
    mid-rank) up to 20000 splits, else the normal approximation. 1.0 when a side is empty."""
    if not a or not b:
        return 1.0
    pooled = list(a) + list(b)
    order = sorted(range(len(pooled)), key=lambda i: pooled[i])
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and pooled[order[j + 1]] == pooled[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    n1, n2 = len(a), len(b)
    mean_r = n1 * (n1 + n2 + 1) / 2
    observed = abs(sum(ranks[:n1]) - mean_r)
    if math.comb(n1 + n2, n1) <= 20000:
        hits = total = 0
        for pick in itertools.combinations(range(n1 + n2), n1):
            total += 1
            hits += abs(sum(ranks[k] for k in pick) - mean_r) >= observed - 1e-9
        return hits / total
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return math.erfc(observed / sd / math.sqrt(2)) if sd > 0 else 1.0


def min_p(n1, n2):
    """The smallest two-sided p an exact rank test can give with these sample sizes."""
    return 2 / math.comb(n1 + n2, n1) if n1 and n2 else 1.0


def significance(a, b):
    p = mann_whitney_p(a, b)
    text = f"p = {p:.3f}" + ("" if p < ALPHA else " (not significant")
    if p >= ALPHA:
        floor = min_p(len(a), len(b))
        text += f"; {len(a)} vs {len(b)} repetitions cannot go below p = {floor:.3f})" if floor >= ALPHA else ")"
    return {"p": p, "significant": p < ALPHA, "text": text}


def slope(xs, ys):
    """Least-squares slope of ys over xs (per worker)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def fmt(x, digits=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


# --- Shared pieces ------------------------------------------------------------------------
def configs(doc):
    return doc["configs"]


def model_order(cs):
    out = []
    for c in cs:
        if R.model(c) not in out:
            out.append(R.model(c))
    return out


def same_conditions(c):
    """What must match for two models to be compared in one run (workers aside)."""
    cfg = R.cfg(c)
    return (cfg["workload"], cfg.get("rate"), cfg.get("connections"), tuple(R.server_args(c)), R.hold(c))


def reference_for(c, cs):
    """The reuseport configuration measured under the same conditions in the same run (same
    workload, load, variant, background; same workers, or the most there are when `c` has one
    acceptor)."""
    cands = [x for x in cs if R.model(x) == REFERENCE and R.rankable(x)
             and same_conditions(x) == same_conditions(c)]
    same = [x for x in cands if R.threads(x) == R.threads(c)]
    if same:
        return same[0]
    return max(cands, key=R.threads) if cands else None


def relative_cpu(c, cs):
    ref = reference_for(c, cs)
    if not ref or not R.rankable(c):
        return None
    base = median(R.cpu_us_per_conn(ref))
    return median(R.cpu_us_per_conn(c)) / base if base > 0 else None


def caption(doc, cs, what):
    c = cs[0]["config"]
    reps = sorted({x["config"]["repetitions"] for x in cs})
    load = f"open loop {c['rate']:.0f} conn/s offered" if c["mode"] == "open" else f"closed loop, {c['connections']} connections"
    exp = doc.get("experiment", {})
    return (f"{what} Experiment {exp.get('name', '?')} (preset {exp.get('preset', '?')}): {load}; close={c['close']}; "
            f"{c['duration_s']} s measured after {c['warmup_s']} s warm-up; {'/'.join(map(str, reps))} repetitions; "
            f"medians over repetitions.")


def save(fig, out, name, figures, text, dpi=120):
    """Writes the figure as PNG and SVG into out and lists it (name, text) in figures."""
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out / f"{name}.{ext}", dpi=dpi)
    plt.close(fig)
    figures.append((name, text))


def cost_table(cs):
    """Markdown rows: each configuration's CPU per connection, also relative to reuseport."""
    head = ["model", "workers", "condition", "status", "CPU us/conn", "vs reuseport"]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cs:
        cond = ", ".join(x for x in [R.workload(c), f"{R.rate(c):.0f}/s" if R.rate(c) else "", R.variant(c),
                                     f"hold {R.hold(c)}" if R.hold(c) else ""] if x)
        if R.rankable(c):
            rel = relative_cpu(c, cs)
            cells = [R.model(c), R.threads(c), cond, "ok", fmt(median(R.cpu_us_per_conn(c)), 1),
                     fmt(rel) + "x" if rel is not None else "n/a"]
        else:
            cells = [R.model(c), R.threads(c), cond, f"{R.status(c)}: {R.reason(c)[:90]}", "", ""]
        md.append("| " + " | ".join(str(x) for x in cells) + " |")
    return md


# --- herd ---------------------------------------------------------------------------------
def analyze_herd(doc):
    cs = configs(doc)
    loads = {"slow": [c for c in cs if R.cfg(c)["mode"] == "open"], "load": [c for c in cs if R.cfg(c)["mode"] == "closed"]}
    result = {"loads": {}}
    for name, group in loads.items():
        if not group:
            continue
        per_model = {}
        for m in model_order(group):
            mc = sorted([c for c in group if R.model(c) == m and R.rankable(c)], key=R.threads)
            if not mc:
                continue
            ws = [R.threads(c) for c in mc]
            ctx = [median(R.ctx_per_conn(c)) for c in mc]
            cpu = [median(R.cpu_us_per_conn(c)) for c in mc]
            wasted = [median(R.per_rep(c, "wasted_wakeups")) for c in mc]
            listen = [median(R.per_rep(c, "listen_wakeups")) for c in mc]
            per_model[m] = {
                "workers": ws, "ctx_per_conn": ctx, "cpu_us_per_conn": cpu, "wasted_per_accept": wasted,
                "listen_wakeups_per_accept": listen,
                "ctx_slope": slope(ws, ctx), "cpu_slope": slope(ws, cpu), "wasted_slope": slope(ws, wasted),
                "ctx_most_vs_fewest": significance(R.ctx_per_conn(mc[-1]), R.ctx_per_conn(mc[0])) if len(mc) > 1 else None,
            }
        result["loads"][name] = per_model
    # tokio: 8 threads x 32 connections gave ~256 wake-ups without EPOLLEXCLUSIVE and ~32 with it,
    # i.e. one wake-up per worker per connection against one per connection.
    slow = [c for c in loads["slow"] if R.rankable(c)]
    tok = None
    if slow:
        top = max(R.threads(c) for c in slow)
        pick = {R.model(c): c for c in slow if R.threads(c) == top}
        if "epoll-shared" in pick and "epoll-exclusive" in pick:
            sh, ex = pick["epoll-shared"], pick["epoll-exclusive"]
            ctx_sh, ctx_ex = median(R.ctx_per_conn(sh)), median(R.ctx_per_conn(ex))
            ratio = ctx_sh / ctx_ex if ctx_ex > 0 else float("inf")
            sig = significance(R.ctx_per_conn(sh), R.ctx_per_conn(ex))
            tok = {"workers": top, "shared_ctx_per_conn": ctx_sh, "exclusive_ctx_per_conn": ctx_ex, "ratio": ratio,
                   "shared_listen_wakeups_per_accept": median(R.per_rep(sh, "listen_wakeups")),
                   "exclusive_listen_wakeups_per_accept": median(R.per_rep(ex, "listen_wakeups")),
                   "tokio_ratio": top,
                   # Reproduced: without the flag at least half of tokio's one-per-worker multiple, and significant.
                   "reproduced": ratio >= top / 2 and sig["significant"], "significance": sig}
    result["tokio"] = tok
    return result


def section_herd(doc, out, figures):
    a = analyze_herd(doc)
    cs = configs(doc)
    md = ["## Experiment herd: how the thundering herd grows with workers", ""]
    metrics = [("ctx_per_conn", "context switches / conn"), ("wasted_per_accept", "wasted wake-ups / accept"),
               ("cpu_us_per_conn", "server CPU us / conn")]
    for name, per_model in a["loads"].items():
        if not per_model:
            continue
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        for ax, (key, label) in zip(axes, metrics):
            for i, (m, v) in enumerate(per_model.items()):
                ax.plot(v["workers"], v[key], marker="o", label=m, color=COLORS[i % len(COLORS)])
            ax.set_xlabel("workers")
            ax.set_ylabel(label)
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        group = [c for c in cs if (R.cfg(c)["mode"] == "open") == (name == "slow")]
        fig.suptitle(f"herd: {'slow arrivals' if name == 'slow' else 'under load'}")
        save(fig, out, f"exp_herd_{name}", figures,
             caption(doc, group, f"Per accepted connection against workers ({'slow arrivals' if name == 'slow' else 'under load'}): "
                                 "context switches (all threads and children), listen-fd wake-ups whose accept found nothing, "
                                 "server CPU."))
        md += [f"![exp_herd_{name}](exp_herd_{name}.png)", "", f"*{figures[-1][1]}*", ""]
    lines = []
    for name, per_model in a["loads"].items():
        label = "slow arrivals" if name == "slow" else "under load"
        for m, v in per_model.items():
            sig = v["ctx_most_vs_fewest"]
            lines.append(f"{m} ({label}): {fmt(v['ctx_slope'], 3)} context switches, {fmt(v['wasted_slope'], 3)} wasted "
                         f"wake-ups and {fmt(v['cpu_slope'], 1)} us CPU per connection more per added worker "
                         f"({v['workers'][0]} to {v['workers'][-1]} workers: {fmt(v['ctx_per_conn'][0])} to "
                         f"{fmt(v['ctx_per_conn'][-1])} switches/conn, {sig['text'] if sig else 'one point'})")
    tok = a["tokio"]
    md += ["**Finding (herd).** The herd's slope, least squares over the workers measured:", ""]
    md += [f"- {x}" for x in lines]
    if tok:
        md += ["", f"tokio's EPOLLEXCLUSIVE count (8 threads x 32 connections: ~256 wake-ups without the flag, ~32 with "
                   f"it, a multiple of 8): here at {tok['workers']} workers under slow arrivals epoll-shared pays "
                   f"{fmt(tok['shared_ctx_per_conn'])} context switches per connection and epoll-exclusive "
                   f"{fmt(tok['exclusive_ctx_per_conn'])}, a multiple of {fmt(tok['ratio'])} against tokio's {tok['tokio_ratio']} "
                   f"({tok['significance']['text']}); reported listen wake-ups per accept {fmt(tok['shared_listen_wakeups_per_accept'])} "
                   f"vs {fmt(tok['exclusive_listen_wakeups_per_accept'])}. Reproduced (at least half of tokio's multiple, "
                   f"significant): **{'yes' if tok['reproduced'] else 'no'}**."]
    md += ["", "CPU per connection relative to reuseport with the same workers and load, same run:", ""]
    md += cost_table(cs)
    return md, a


# --- skew ---------------------------------------------------------------------------------
def analyze_skew(doc):
    cs = [c for c in configs(doc) if R.rankable(c)]
    rates = sorted({R.rate(c) for c in cs})
    per_model = {}
    for m in model_order(cs):
        rows = sorted([c for c in cs if R.model(c) == m], key=R.rate)
        per_model[m] = {"rates": [R.rate(c) for c in rows],
                        "jain_median": [median(R.jain_per_rep(c)) for c in rows],
                        "jain_worst": [min(R.jain_per_rep(c)) if R.jain_per_rep(c) else float("nan") for c in rows],
                        "top_share": [max(R.acceptor_share(c)) for c in rows]}
        even = [r for r, j in zip(per_model[m]["rates"], per_model[m]["jain_median"]) if j >= 0.9]
        per_model[m]["evens_out_at"] = even[0] if even else None
    lowest = rates[0] if rates else None
    by_low = {R.model(c): c for c in cs if R.rate(c) == lowest}
    comparisons = {}
    if REFERENCE in by_low:
        for m, c in by_low.items():
            if m != REFERENCE:
                comparisons[m] = significance(R.jain_per_rep(c), R.jain_per_rep(by_low[REFERENCE]))
    return {"rates": rates, "models": per_model, "lowest_rate": lowest, "vs_reuseport_at_lowest": comparisons,
            "concentrated_at_lowest": [m for m, v in per_model.items() if v["jain_median"] and v["jain_median"][0] < 0.9]}


def section_skew(doc, out, figures):
    a = analyze_skew(doc)
    cs = configs(doc)
    ok = [c for c in cs if R.rankable(c)]
    md = ["## Experiment skew: where LIFO wake-up concentrates work", ""]
    if not ok:
        return md + ["No configuration succeeded."], a
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.2))
    for i, (m, v) in enumerate(a["models"].items()):
        a1.plot(v["rates"], v["jain_median"], marker="o", color=COLORS[i % len(COLORS)], label=m)
        a1.fill_between(v["rates"], v["jain_worst"], v["jain_median"], color=COLORS[i % len(COLORS)], alpha=0.15)
        a2.plot(v["rates"], [100 * s for s in v["top_share"]], marker="s", color=COLORS[i % len(COLORS)], label=m)
    workers = R.threads(ok[0])
    a1.set_xscale("log")
    a1.set_xlabel("offered conn/s")
    a1.set_ylabel("Jain's index (median of repetitions; band down to the worst)")
    a1.set_ylim(0, 1.05)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=8)
    a2.axhline(100 / workers, color="grey", linestyle="--", linewidth=1, label="even share")
    a2.set_xscale("log")
    a2.set_xlabel("offered conn/s")
    a2.set_ylabel("busiest worker's % of connections")
    a2.grid(alpha=0.3)
    a2.legend(fontsize=8)
    save(fig, out, "exp_skew", figures,
         caption(doc, ok, f"Fairness against load, {workers} workers: Jain's index per repetition (1 = even, "
                          f"1/{workers} = one worker takes all; counts from {R.fairness_source(ok[0])}), and the busiest "
                          "worker's share."))
    md += ["![exp_skew](exp_skew.png)", "", f"*{figures[-1][1]}*", ""]
    md += ["**Finding (skew).** Jain's index (median of repetitions, worst in brackets) from the lowest to the highest "
           "offered rate:", ""]
    for m, v in a["models"].items():
        sig = a["vs_reuseport_at_lowest"].get(m)
        md.append(f"- {m}: {fmt(v['jain_median'][0], 3)} [{fmt(v['jain_worst'][0], 3)}] at {v['rates'][0]:.0f}/s to "
                  f"{fmt(v['jain_median'][-1], 3)} [{fmt(v['jain_worst'][-1], 3)}] at {v['rates'][-1]:.0f}/s; busiest worker "
                  f"{100 * v['top_share'][0]:.0f}% to {100 * v['top_share'][-1]:.0f}%; "
                  + (f"even (Jain >= 0.9) from {v['evens_out_at']:.0f}/s" if v["evens_out_at"] is not None else "never even (Jain < 0.9)")
                  + (f"; vs reuseport at {a['lowest_rate']:.0f}/s: {sig['text']}" if sig else ""))
    conc = a["concentrated_at_lowest"]
    md += ["", ("Concentrated at the lowest rate (Jain < 0.9): " + ", ".join(conc) + ".") if conc
           else "No model concentrated the work at the lowest rate (every Jain >= 0.9)."]
    md += ["", "CPU per connection relative to reuseport at the same rate, same run:", ""] + cost_table(cs)
    return md, a


# --- stall --------------------------------------------------------------------------------
def is_worker_stall(c):
    return "--stall-worker" in R.server_args(c)


def analyze_stall(doc):
    cs = [c for c in configs(doc) if R.rankable(c)]
    variants = []
    for c in cs:
        if R.variant(c) not in variants:
            variants.append(R.variant(c))
    out = {"variants": {}}
    for v in variants:
        vc = {R.model(c): c for c in cs if R.variant(c) == v}
        rows = {m: {"p50": R.latency_us(c, "p50"), "p99": R.latency_us(c, "p99"), "p999": R.latency_us(c, "p999"),
                    "p99_median_of_reps": median(R.p99_us(c)),
                    "spread_p99_over_p50": R.latency_us(c, "p99") / R.latency_us(c, "p50") if R.latency_us(c, "p50") > 0 else None,
                    "stalls": R.stalls(c), "slept": R.slept(c)} for m, c in vc.items()}
        entry = {"models": rows, "worker_stall": any(is_worker_stall(c) for c in vc.values())}
        # NGINX: reuseport narrows the spread against a shared socket; Cloudflare: with a blocking
        # worker reuseport's tail grows (its queue waits) while epoll's LIFO wake-up routes around it.
        shared = next((m for m in ("epoll-exclusive", "epoll-mutex") if m in vc), None)
        if REFERENCE in vc and shared:
            rp, sh = R.p99_us(vc[REFERENCE]), R.p99_us(vc[shared])
            sig = significance(rp, sh)
            ratio = median(rp) / median(sh) if median(sh) > 0 else None
            entry["reuseport_vs_shared"] = {"shared_model": shared, "ratio_p99": ratio, "significance": sig,
                                            "nginx_holds": bool(sig["significant"] and ratio is not None and ratio < 1),
                                            "cloudflare_holds": bool(sig["significant"] and ratio is not None and ratio > 1)}
        best = min(rows, key=lambda m: rows[m]["p99_median_of_reps"]) if rows else None
        entry["best_tail"] = best
        out["variants"][v] = entry
    return out


def section_stall(doc, out, figures):
    a = analyze_stall(doc)
    cs = [c for c in configs(doc) if R.rankable(c)]
    md = ["## Experiment stall: a worker that sometimes blocks", ""]
    if not cs:
        return md + ["No configuration succeeded."], a
    variants = list(a["variants"])
    models = model_order(cs)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharey=True)
    width = 0.8 / max(1, len(models))
    for ax, pct, title in zip(axes, ("p50", "p99", "p999"), ("p50", "p99", "p99.9")):
        for i, m in enumerate(models):
            ys = [a["variants"][v]["models"].get(m, {}).get(pct, 0) for v in variants]
            ax.bar([k + (i - (len(models) - 1) / 2) * width for k in range(len(variants))], [max(y, 1) for y in ys], width,
                   label=m, color=COLORS[i % len(COLORS)])
        ax.set_yscale("log")
        ax.set_xticks(range(len(variants)), [v or "(none)" for v in variants], fontsize=8)
        ax.set_title(f"total latency {title}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("us (log scale), all repetitions merged")
    axes[0].legend(fontsize=8)
    save(fig, out, "exp_stall", figures,
         caption(doc, cs, f"Latency of new connections (from the scheduled start: coordinated omission corrected) under "
                          f"each service-time shape, {R.threads(cs[0])} workers."))
    md += ["![exp_stall](exp_stall.png)", "", f"*{figures[-1][1]}*", ""]
    md += ["**Finding (stall).** p99 of total latency (median of the repetitions' p99), reuseport against a shared "
           "listen socket, per service-time shape:", ""]
    for v, e in a["variants"].items():
        rows = e["models"]
        line = f"- {v or '(none)'}: " + ", ".join(
            f"{m} p50 {fmt(r['p50'], 0)} / p99 {fmt(r['p99'], 0)} / p99.9 {fmt(r['p999'], 0)} us (spread p99/p50 "
            f"{fmt(r['spread_p99_over_p50'], 1)})" for m, r in rows.items())
        cmp_ = e.get("reuseport_vs_shared")
        if cmp_:
            verdict = ("NGINX's conclusion holds (reuseport's tail is lower)" if cmp_["nginx_holds"] else
                       "Cloudflare's conclusion holds (reuseport's tail is higher)" if cmp_["cloudflare_holds"] else
                       "neither conclusion is shown (not significant)")
            line += (f". reuseport's p99 is {fmt(cmp_['ratio_p99'])}x {cmp_['shared_model']}'s "
                     f"({cmp_['significance']['text']}): {verdict}")
        line += f". Lowest tail: {e['best_tail']}."
        md.append(line)
    md += ["", "CPU per connection relative to reuseport under the same shape, same run:", ""] + cost_table(configs(doc))
    return md, a


# --- c10k ---------------------------------------------------------------------------------
def analyze_c10k(doc):
    cs = configs(doc)
    holds = sorted({R.hold(c) for c in cs})
    top = holds[-1] if holds else 0
    per_model = {}
    for m in model_order(cs):
        rows = {}
        for c in (x for x in cs if R.model(x) == m):
            h = R.hold(c)
            if not R.rankable(c):
                rows[h] = {"status": R.status(c), "reason": R.reason(c)}
                continue
            rows[h] = {"status": "ok", "bytes_per_conn": median(R.hold_bytes_per_conn(c)) if R.hold_bytes_per_conn(c) else None,
                       "threads": R.hold_threads(c), "processes": R.hold_processes(c),
                       "cpu_us_per_conn": median(R.cpu_us_per_conn(c)), "p99_us": median(R.p99_us(c))}
        per_model[m] = rows
    cannot = {m: r[h]["reason"] for m, r in per_model.items() for h in r if r[h]["status"] == "cannot_hold" and h == top}
    held = {m: r[top] for m, r in per_model.items() if top in r and r[top]["status"] == "ok"}
    price = {}
    for m, r in per_model.items():
        if top in r and 0 in r and r[top]["status"] == "ok" and r[0]["status"] == "ok" and r[0]["p99_us"] > 0:
            price[m] = r[top]["p99_us"] / r[0]["p99_us"]
    return {"holds": holds, "top": top, "models": per_model, "cannot_hold_top": cannot, "held_top": held,
            "p99_ratio_top_vs_none": price}


def section_c10k(doc, out, figures):
    a = analyze_c10k(doc)
    cs = configs(doc)
    md = ["## Experiment c10k: the memory and latency price of idle connections", ""]
    top = a["top"]
    held = a["held_top"]
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.4))
    models = list(a["models"])
    ys = [held[m]["bytes_per_conn"] or 0 if m in held else 0 for m in models]
    bars = a1.bar(range(len(models)), [y / 1024 for y in ys], color=COLORS[0])
    for b, m in zip(bars, models):
        if m not in held:
            a1.annotate("cannot hold", (b.get_x() + b.get_width() / 2, 0), rotation=90, ha="center", va="bottom", fontsize=8,
                        color="crimson")
    a1.set_xticks(range(len(models)), models, rotation=35, ha="right", fontsize=8)
    a1.set_ylabel(f"server KiB per held connection (Pss delta, {top} held)")
    a1.grid(axis="y", alpha=0.3)
    for i, m in enumerate(models):
        r = a["models"][m]
        hs = [h for h in a["holds"] if h in r and r[h]["status"] == "ok"]
        a2.plot(hs, [r[h]["p99_us"] for h in hs], marker="o", color=COLORS[i % len(COLORS)], label=m)
        a3.plot(hs, [r[h]["cpu_us_per_conn"] for h in hs], marker="o", color=COLORS[i % len(COLORS)], label=m)
    a2.set_xlabel("idle connections held")
    a2.set_ylabel("p99 latency of new connections (us)")
    a2.set_yscale("log")
    a2.grid(alpha=0.3)
    a3.set_xlabel("idle connections held")
    a3.set_ylabel("server CPU us per new connection")
    a3.grid(alpha=0.3)
    a3.legend(fontsize=7)
    ok = [c for c in cs if R.rankable(c)] or cs
    save(fig, out, "exp_c10k", figures,
         caption(doc, ok, f"A background of idle keep-alive connections ({', '.join(map(str, a['holds']))} held, each "
                          "answered once) while new connections arrive. Memory: the server process tree's proportional "
                          "set size after opening the background minus before, over the connections held (kernel socket "
                          "memory not included). Blocking models wake every 100 ms per connection to notice a stop."))
    md += ["![exp_c10k](exp_c10k.png)", "", f"*{figures[-1][1]}*", ""]
    md += [f"**Finding (c10k).** With {top} idle connections held:", ""]
    ranked = sorted((m for m in held if held[m]["bytes_per_conn"] is not None), key=lambda m: held[m]["bytes_per_conn"])
    for m in ranked:
        h = held[m]
        ratio = a["p99_ratio_top_vs_none"].get(m)
        md.append(f"- {m}: {fmt(h['bytes_per_conn'] / 1024, 1)} KiB per held connection, {int(h['threads'] or 0)} threads in "
                  f"{int(h['processes'] or 0)} process(es), {fmt(h['cpu_us_per_conn'], 1)} us CPU per new connection, p99 "
                  f"{fmt(h['p99_us'], 0)} us" + (f" ({fmt(ratio)}x its p99 with no background)" if ratio else ""))
    for m, why in a["cannot_hold_top"].items():
        md.append(f"- {m}: **cannot hold {top}**: {why}")
    md += ["", "CPU per new connection relative to reuseport with the same background, same run:", ""] + cost_table(cs)
    return md, a


# --- Which model when ---------------------------------------------------------------------
def model_file_lines(src_root):
    """Non-blank, non-comment lines of each model's own file (models/<id with _>.cpp): the
    simplicity row reads this count from the source, not from a judgement."""
    out = {}
    catalog = pathlib.Path(src_root) / "models" / "models.json"
    if not catalog.is_file():
        return out
    for m in json.loads(catalog.read_text())["models"]:
        path = pathlib.Path(src_root) / "models" / (m.get("source") or m["id"].replace("-", "_") + ".cpp")
        if path.is_file():
            text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
            out[m["id"]] = sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("//"))
    return out


def rank(cands, values, lower_better=True):
    """cands: model -> per-repetition values. Returns best, runner-up, their medians and the test."""
    ms = sorted((m for m in cands if values(cands[m])), key=lambda m: median(values(cands[m])),
                reverse=not lower_better)
    if not ms:
        return None
    best = ms[0]
    row = {"best": best, "best_value": median(values(cands[best])), "runner_up": None}
    if len(ms) > 1:
        ru = ms[1]
        row.update(runner_up=ru, runner_up_value=median(values(cands[ru])),
                   significance=significance(values(cands[best]), values(cands[ru])))
    return row


def which_model_when(analyses, docs, src_root):
    rows = {}
    by_exp = {d["experiment"]["name"]: d for d in docs if d.get("experiment")}
    # Lowest CPU per connection: the open-loop group (one experiment, one offered rate, no background,
    # no stall) with the most models; each model with its most workers there.
    groups = {}
    for d in docs:
        for c in configs(d):
            if (R.rankable(c) and R.cfg(c)["mode"] == "open" and not R.hold(c)
                    and R.variant(c) in ("", "none") and not is_worker_stall(c) and "--sleep-fraction" not in R.server_args(c)):
                g = groups.setdefault((d.get("experiment", {}).get("name", "main"), R.rate(c)), {})
                if R.model(c) not in g or R.threads(c) > R.threads(g[R.model(c)]):
                    g[R.model(c)] = c
    if groups:
        key = max(groups, key=lambda k: (len(groups[k]), -k[1]))
        r = rank(groups[key], R.cpu_us_per_conn)
        if r:
            r["where"] = f"{key[0]}, open loop {key[1]:.0f} conn/s, most workers measured"
            r["unit"] = "us CPU/conn"
            rows["lowest CPU per connection"] = r
    if "skew" in by_exp:
        cs = [c for c in configs(by_exp["skew"]) if R.rankable(c)]
        if cs:
            low = min(R.rate(c) for c in cs)
            r = rank({R.model(c): c for c in cs if R.rate(c) == low}, R.jain_per_rep, lower_better=False)
            if r:
                r["where"] = f"skew, {low:.0f} conn/s offered (lowest rate)"
                r["unit"] = "Jain (median per repetition)"
                rows["even spread"] = r
    if "stall" in by_exp:
        cs = [c for c in configs(by_exp["stall"]) if R.rankable(c) and is_worker_stall(c)]
        if cs:
            r = rank({R.model(c): c for c in cs}, R.p99_us)
            if r:
                r["where"] = f"stall, {R.variant(cs[0])}"
                r["unit"] = "us p99 (median per repetition)"
                rows["tail under a blocking worker"] = r
    if "c10k" in by_exp:
        top = analyses.get("c10k", {}).get("top")
        cs = [c for c in configs(by_exp["c10k"]) if R.rankable(c) and R.hold(c) == top and top]
        if cs:
            r = rank({R.model(c): c for c in cs}, R.hold_bytes_per_conn)
            if r:
                r["where"] = f"c10k, {top} held"
                r["unit"] = "bytes per held connection"
                rows[f"memory at {top} connections"] = r
    lines = model_file_lines(src_root)
    seen = {R.model(c) for d in docs for c in configs(d)}
    cand = {m: [n] for m, n in lines.items() if m in seen}
    if cand:
        r = rank(cand, lambda v: v)
        r["where"] = "the model's own source file (models/*.cpp), non-blank non-comment lines; a count, no test"
        r["unit"] = "lines"
        r.pop("significance", None)
        rows["simplicity"] = r
    return rows


def which_model_when_markdown(rows):
    md = ["## Which model when", "",
          "Computed from the experiments above (best and runner-up by median; the rank test over repetitions says "
          "whether the difference is significant at 5%).", "",
          "| question | best | runner-up | difference | from |", "|---|---|---|---|---|"]
    for q, r in rows.items():
        digits = 3 if "Jain" in r["unit"] else 0 if r["unit"] in ("lines", "bytes per held connection") else 1
        best = f"{r['best']} ({fmt(r['best_value'], digits)} {r['unit']})"
        ru = f"{r['runner_up']} ({fmt(r['runner_up_value'], digits)})" if r.get("runner_up") else "none"
        sig = r.get("significance")
        diff = ("significant, " + sig["text"]) if sig and sig["significant"] else (
            "**not significant**, " + sig["text"] if sig else "n/a")
        md.append(f"| {q} | {best} | {ru} | {diff} | {r['where']} |")
    return md


SECTIONS = {"herd": section_herd, "skew": section_skew, "stall": section_stall, "c10k": section_c10k}


def sections(docs, out, figures, env_caption, src_root):
    """The experiments' report sections (Markdown lines), figures appended to `figures`, and
    findings.json written to `out`. docs: results that carry an "experiment" field."""
    md, analyses = [], {}
    for d in docs:
        name = d.get("experiment", {}).get("name")
        if name not in SECTIONS:
            continue
        lines, analyses[name] = SECTIONS[name](d, out, figures)
        md += lines + ["", f"Environment: {env_caption(d)}", ""]
    rows = which_model_when(analyses, docs, src_root)
    md += which_model_when_markdown(rows)
    (out / "findings.json").write_text(json.dumps({"experiments": analyses, "which_model_when": rows}, indent=1,
                                                  default=str) + "\n")
    return md
