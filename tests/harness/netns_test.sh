#!/usr/bin/env bash
# Two hosts, simulated: a server namespace and a client namespace joined by a veth pair
# (addresses chosen here, inside these namespaces only). The harness runs in the client
# namespace and starts the model in the server namespace through --launcher netns:NAME;
# a short configuration must run end to end with the kernel counters read inside the
# server's namespace. Then two loadgen clients' JSON merge exactly (acceptbench merge).
# The namespaces are removed on every exit. Exit 77 (skipped) where they cannot be made.
# Usage: netns_test.sh BIN_DIR SRC_DIR
set -uo pipefail
bin=$1 src=$2
srv=abtest-srv-$$ cli=abtest-cli-$$
srv_addr=10.213.$(( $$ % 250 )).1 cli_addr=10.213.$(( $$ % 250 )).2
tmp=$(mktemp -d)
cleanup() {
  ip netns pids "$srv" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns pids "$cli" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$srv" 2>/dev/null
  ip netns del "$cli" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

if ! ip netns add "$srv" 2>"$tmp/err"; then
  echo "SKIP: cannot create network namespaces here: $(cat "$tmp/err")"; exit 77
fi
set -e
ip netns add "$cli"
ip link add "ab$$a" type veth peer name "ab$$b"
ip link set "ab$$a" netns "$srv"
ip link set "ab$$b" netns "$cli"
ip -n "$srv" addr add "$srv_addr/30" dev "ab$$a"
ip -n "$cli" addr add "$cli_addr/30" dev "ab$$b"
for ns in "$srv" "$cli"; do ip -n "$ns" link set lo up; done
ip -n "$srv" link set "ab$$a" up
ip -n "$cli" link set "ab$$b" up

# Without --allow-remote-target the harness refuses the namespace's address.
if ip netns exec "$cli" "$bin/acceptbench" run --model reuseport --target-host "$srv_addr" \
     --launcher "netns:$srv" --out "$tmp/refused.json" 2>"$tmp/err"; then
  echo "FAIL: a non-loopback target was accepted without --allow-remote-target"; exit 1
fi
grep -q "refusing a target outside 127.0.0.0/8" "$tmp/err"

ip netns exec "$cli" "$bin/acceptbench" run --model reuseport --server-threads 2 --workloads conn --connections 8 \
  --duration 1 --warmup 0.2 --repetitions 2 --launcher "netns:$srv" --target-host "$srv_addr" --allow-remote-target \
  --out "$tmp/results.json" >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; echo "FAIL: run"; exit 1; }

/usr/bin/python3 - "$tmp/results.json" "$src/results/schema.json" "$srv_addr" "$srv" <<'PY'
import json, sys, jsonschema
doc = json.load(open(sys.argv[1]))
jsonschema.validate(doc, json.load(open(sys.argv[2])))
c = doc["configs"][0]
assert c["status"] == "ok", c.get("reason")
s = c["summary"]
assert s["conn_per_s"]["median"] > 0
# The server's kernel counters come from its own namespace: nothing else runs there.
assert s["crosscheck_within_1pct"], s["crosscheck_max_deviation"]
assert doc["env"]["placement"]["launcher"].startswith("netns:")
assert doc["env"]["placement"]["target_host"] == sys.argv[3]
# The server's CPU from its cgroup (made here before `ip netns exec`), as for a local server.
for rep in c["repetitions"]:
    sc = rep["server_cpu"]
    assert sc["host"] == "netns:" + sys.argv[4], sc
    assert not sc["coarse"] or "cgroup" in sc["why_coarse"], sc
    assert sc["coarse"] or sc["source"].startswith("cgroup-"), sc
# The server namespace's own sysctls, read in it (probe --sysctls through ip netns exec).
hosts = {h["launcher"]: h for h in doc["env"]["hosts"]}
ns = hosts["netns:" + sys.argv[4]]
assert ns["roles"] == ["server"] and "error" not in ns, ns
assert ns["sysctls"]["net.core.somaxconn"] is not None, ns
assert hosts["local"]["roles"] == ["client"], hosts
print(f"ok: {s['conn_per_s']['median']:.0f} conn/s across the veth pair, crosscheck {s['crosscheck_max_deviation']:.4f}")
PY

# Two clients in the client namespace against one server: their JSON merges exactly.
ip netns exec "$srv" "$bin/reuseport" --threads 2 --bind "$srv_addr" --port 0 >"$tmp/server.out" &
server_pid=$!
for _ in $(seq 100); do grep -q READY "$tmp/server.out" && break; sleep 0.05; done
port=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$tmp/server.out")
clients=()
for i in 1 2; do
  ip netns exec "$cli" "$bin/loadgen" --target "$srv_addr:$port" --connections 4 --duration 1 --quiet \
    --json "$tmp/client$i.json" >/dev/null &
  clients+=($!)
done
wait "${clients[@]}"
kill -TERM "$server_pid"
wait "$server_pid" || true
"$bin/acceptbench" merge "$tmp/client1.json" "$tmp/client2.json" --out "$tmp/merged.json" >/dev/null 2>&1
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
a, b, m = (json.load(open(f"{d}/{n}.json")) for n in ("client1", "client2", "merged"))
assert m["connections"] == a["connections"] + b["connections"] > 0
for k in ("connect", "ttfb", "total"):
    assert m["latency_ns"][k]["count"] == a["latency_ns"][k]["count"] + b["latency_ns"][k]["count"]
    counts = {}
    for side in (a, b):
        for i, n in side["latency_ns"][k]["buckets"]:
            counts[i] = counts.get(i, 0) + n
    assert {i: n for i, n in m["latency_ns"][k]["buckets"]} == counts, k
    assert m["latency_ns"][k]["max"] == max(a["latency_ns"][k]["max"], b["latency_ns"][k]["max"])
print(f"ok: merged {m['connections']} connections from two clients, buckets exact")
PY
echo "PASS"
