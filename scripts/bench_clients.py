#!/usr/bin/python3
"""Benchmark of the load clients (not a test): loadgen, wrk, h2load and ab against the same
server, one reuseport worker pinned to the server CPU, each client pinned to the client CPU,
the same concurrency and the same wire behaviour (the server closes: `Connection: close`,
as `wrk -H 'Connection: close'`, `ab` (HTTP/1.0) and `h2load --h1 -H 'Connection: close'` do;
`loadgen --close server`). Then loadgen with `--close rst` for reference.

Prints, per client: median new connections/s over the repetitions, min-max spread, the
client's CPU (user+system, from its rusage) and the server's CPU (from /proc), and each
client's ratio to the best of wrk/ab/h2load.

Usage: scripts/bench_clients.py [--bin build/bin] [--reps 5] [--duration 5] [--connections 32]
                                [--server-cpu 1] [--client-cpu 0]
"""
import argparse
import json
import os
import pathlib
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def start_server(bin_dir, cpu):
    proc = subprocess.Popen(["taskset", "-c", str(cpu), f"{bin_dir}/reuseport", "--threads", "1", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.match(r"READY port=(\d+)", line)
    if not m:
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    return proc, int(m.group(1))


def run_client(name, cmd, parse):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"{name} failed ({out.returncode}): {out.stderr[-2000:]}")
    rate, errors = parse(out.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rate, errors, cpu / wall


def parse_wrk(text):
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rate, errors + (int(non2xx.group(1)) if non2xx else 0)


def parse_ab(text):
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", text).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", text).group(1))
    return rate, failed


def parse_h2load(text):
    rate = float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", text).group(1))
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored", text)
    return rate, int(m.group(1)) + int(m.group(2))


def parse_loadgen_json(path):
    def parse(_text):
        doc = json.loads(pathlib.Path(path).read_text())
        return doc["conn_per_s"], doc["errors"]["total"]
    return parse


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    args = ap.parse_args()
    if args.reps < 1 or args.duration < 1 or args.connections < 1:
        ap.error("reps, duration and connections must be >= 1")
    tmp = tempfile.mkdtemp()
    c, d, pin = args.connections, args.duration, ["taskset", "-c", str(args.client_cpu)]
    server, port = start_server(args.bin, args.server_cpu)
    url = f"http://127.0.0.1:{port}/"
    lg_json = f"{tmp}/lg.json"
    clients = {
        "wrk": (pin + ["wrk", "-t1", f"-c{c}", f"-d{d}s", "-H", "Connection: close", url], parse_wrk),
        "ab": (pin + ["ab", "-q", "-c", str(c), "-t", str(d), "-n", "10000000", url], parse_ab),
        # h2load's duration mode (-D) does not reconnect after a server close (it hangs, seen
        # with nghttp2 1.52); its request-count mode does, so it gets about d seconds of requests.
        "h2load": (pin + ["h2load", "--h1", "-c", str(c), "-t1", "-n", str(30000 * d), "-H", "Connection: close", url],
                   parse_h2load),
        "loadgen": (pin + [f"{args.bin}/loadgen", "--target", f"127.0.0.1:{port}", "--connections", str(c),
                           "--duration", str(d), "--close", "server", "--quiet", "--json", lg_json],
                    parse_loadgen_json(lg_json)),
        "loadgen --close rst": (pin + [f"{args.bin}/loadgen", "--target", f"127.0.0.1:{port}", "--connections",
                                       str(c), "--duration", str(d), "--close", "rst", "--quiet", "--json", lg_json],
                                parse_loadgen_json(lg_json)),
    }
    results = {name: [] for name in clients}
    try:
        for rep in range(args.reps):
            for name, (cmd, parse) in clients.items():  # interleaved: every client in every round
                s0, t0 = cpu_seconds(server.pid), time.monotonic()
                rate, errors, client_cpu = run_client(name, cmd, parse)
                server_cpu = (cpu_seconds(server.pid) - s0) / (time.monotonic() - t0)
                results[name].append((rate, errors, client_cpu, server_cpu))
                print(f"round {rep + 1}/{args.reps} {name:<20} {rate:>9.0f} conn/s  errors {errors}  "
                      f"client CPU {100 * client_cpu:.0f}%  server CPU {100 * server_cpu:.0f}%", file=sys.stderr)
    finally:
        server.terminate()
        server.wait()
    best_other = max(statistics.median(r[0] for r in results[n]) for n in ("wrk", "ab", "h2load"))
    print(f"\nreuseport, 1 worker on CPU {args.server_cpu}; each client on CPU {args.client_cpu}; {c} connections; "
          f"{d} s x {args.reps} repetitions (interleaved); server closes (Connection: close) unless noted\n")
    print("| client | conn/s median | min - max | errors | client CPU | server CPU | vs best of wrk/ab/h2load |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        rates = [r[0] for r in rows]
        med = statistics.median(rates)
        print(f"| {name} | {med:.0f} | {min(rates):.0f} - {max(rates):.0f} | {sum(r[1] for r in rows)} | "
              f"{100 * statistics.median(r[2] for r in rows):.0f}% | {100 * statistics.median(r[3] for r in rows):.0f}% | "
              f"{med / best_other:.3f} |")


if __name__ == "__main__":
    main()
