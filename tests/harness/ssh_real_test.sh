#!/usr/bin/env bash
# The ssh launcher against real sshd's (Debian openssh-server), each in a network namespace
# of its own, on a private LAN: a "lab" namespace holds a bridge and runs the harness; the
# server namespace and the client namespaces hang off the bridge by veth pairs, with
# addresses chosen here (10.214.X.0/24, inside these namespaces only, never routed).
# Every sshd has its own config, host key, port and pid file in a temp dir; a key is made
# for the test. Nothing of the system's ssh set-up is read or touched (ssh -F, sshd -f; the
# privilege-separation folder /run/sshd is a tmpfs in a private mount namespace).
#
# Modes:
#   single   `acceptbench run --launcher ssh:...` end to end: READY, the window, stats back,
#            cross-check within 1%; the server's CPU from its cgroup on the server's host (made
#            by `acceptbench supervise` there, read by `acceptbench probe --cgroup` through ssh:
#            exact, not coarse, prefork's children included), the cgroup gone afterwards; the
#            server host's sysctls in env.hosts. Then a server host that cannot make cgroups
#            (ACCEPTBENCH_CGROUP_ROOT sent by ssh SetEnv): /proc ticks, marked coarse, with why.
#   clients  two client namespaces (ssh too) drive the server through --client-hosts: the
#            merged count equals the server's PassiveOpens delta within 1%, conn/s adds up;
#            loadgen pinned to the client CPUs on each client host, every host's sysctls recorded.
#   sigkill  SIGKILL the harness during a run: no server process and no server cgroup is left
#            on the server's host a few seconds later.
# The "hosts" share this machine's cgroup and PID spaces (only the network is split), so the
# test can look at the server host's cgroup folders and processes directly.
# Everything is removed on every exit. Exit 77 (skipped) where namespaces, a bridge or
# sshd are not available.
# Usage: ssh_real_test.sh MODE BIN_DIR SRC_DIR
set -uo pipefail
mode=$1 bin=$(realpath "$2") src=$3
id=$$
net=10.214.$((id % 250))
lab=abssh-lab-$id srv=abssh-srv-$id
clients=()
[[ $mode == clients ]] && clients=(abssh-c1-$id abssh-c2-$id)
tmp=$(mktemp -d /tmp/abssh-$id.XXXXXX)
chmod 700 "$tmp"
sshd_pids=()
cleanup() {
  exec 2>/dev/null  # no job notices for the killed sshd
  local sups
  sups=$(supervisor_pids)
  for p in "${sshd_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for ns in "$srv" "${clients[@]}" "$lab"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  done
  for ns in "$srv" "${clients[@]}" "$lab"; do ip netns del "$ns" 2>/dev/null; done
  # A failed run may leave a killed supervisor's (empty) cgroups: only those, by its PID.
  sleep 0.2
  for p in $sups; do cgroups_of "$p" | sort -r | xargs -r rmdir 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

[[ -x /usr/sbin/sshd ]] || skip "no /usr/sbin/sshd (Debian openssh-server; scripts/setup.sh installs it)"
command -v ssh-keygen >/dev/null || skip "no ssh-keygen"
ip netns add "$lab" 2>"$tmp/err" || skip "cannot create network namespaces here: $(cat "$tmp/err")"
ip -n "$lab" link add br0 type bridge 2>"$tmp/err" || skip "cannot create a bridge: $(cat "$tmp/err")"
set -e
ip -n "$lab" addr add "$net.1/24" dev br0
ip -n "$lab" link set br0 up
ip -n "$lab" link set lo up

# One namespace on the LAN: veth pair, one end on the bridge in the lab.
n=1
attach() {  # NS -> prints its address
  local ns=$1
  n=$((n + 1))
  ip netns add "$ns"
  ip link add "v$n" netns "$lab" type veth peer name eth0 netns "$ns"
  ip -n "$lab" link set "v$n" master br0 up
  ip -n "$ns" addr add "$net.$n/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

mkdir -m 700 "$tmp/home"
ssh-keygen -q -t ed25519 -N '' -C abtest -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -C abtest -f "$tmp/id"
cp "$tmp/id.pub" "$tmp/authorized_keys"
port=$((20000 + id % 20000))
: >"$tmp/ssh_config"
: >"$tmp/known_hosts"

start_sshd() {  # NS ADDR ALIAS
  local ns=$1 addr=$2 alias=$3
  cat >"$tmp/sshd_$alias.conf" <<EOF
Port $port
ListenAddress $addr
HostKey $tmp/host_key
PidFile $tmp/sshd_$alias.pid
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
LogLevel ERROR
# The fallback test sends ACCEPTBENCH_CGROUP_ROOT (ssh SetEnv) to the remote side.
AcceptEnv ACCEPTBENCH_CGROUP_ROOT
# The remote shell reads \$HOME/.bashrc (Debian's bash does for ssh commands): a home of the
# test's own keeps the machine's rc files (which may hang, e.g. on a stale lock) out of it.
SetEnv HOME=$tmp/home
EOF
  # /run/sshd (privilege separation) as a tmpfs in sshd's own mount namespace. nsenter, not
  # ip netns exec: that remounts /sys, and the server host would have no /sys/fs/cgroup.
  nsenter --net="/run/netns/$ns" unshare --mount --propagation private sh -c \
    'mount -t tmpfs -o mode=755 abtest /run && mkdir -m 755 /run/sshd && exec /usr/sbin/sshd -D -e -f "$1"' \
    sh "$tmp/sshd_$alias.conf" >"$tmp/sshd_$alias.log" 2>&1 &
  sshd_pids+=($!)
  cat >>"$tmp/ssh_config" <<EOF
Host $alias
  HostName $addr
  Port $port
  User root
  IdentityFile $tmp/id
  IdentitiesOnly yes
  UserKnownHostsFile $tmp/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  ConnectTimeout 5
  LogLevel ERROR
EOF
  echo "[$addr]:$port $(cut -d' ' -f1-2 "$tmp/host_key.pub")" >>"$tmp/known_hosts"
}

attach "$srv"
srv_addr=$net.$n
start_sshd "$srv" "$srv_addr" abtest-srv
hosts=()
for c in "${clients[@]}"; do
  attach "$c"
  start_sshd "$c" "$net.$n" "abtest-${c#abssh-}"
  hosts+=("abtest-${c#abssh-}")
done

# A logging ssh in front of the real one: what ran remotely, word for word.
mkdir -p "$tmp/path"
cat >"$tmp/path/ssh" <<EOF
#!/usr/bin/env bash
{ printf 'CALL'; for a in "\$@"; do printf ' %q' "\$a"; done; printf '\n'; } >>"$tmp/sshcalls.log"
exec /usr/bin/ssh "\$@"
EOF
chmod +x "$tmp/path/ssh"
export PATH=$tmp/path:$PATH
export TMPDIR=$tmp  # the harness's ssh control folder too: a SIGKILLed harness cannot remove it

lab_exec() { ip netns exec "$lab" "$@"; }
set +e
for h in abtest-srv "${hosts[@]}"; do
  ok=0
  for _ in $(seq 50); do
    if lab_exec ssh -F "$tmp/ssh_config" -n -o BatchMode=yes -- "$h" true 2>"$tmp/err"; then ok=1; break; fi
    sleep 0.1
  done
  [[ $ok == 1 ]] || fail "cannot ssh to $h: $(cat "$tmp/err")"
done
: >"$tmp/sshcalls.log"

common=(--ssh-config "$tmp/ssh_config" --target-host "$srv_addr" --allow-remote-target --remote-bin-dir "$bin"
        --ready-timeout-ms 15000)

supervisor_pids() {  # acceptbench supervise in the server namespace
  ip netns pids "$srv" 2>/dev/null | while read -r p; do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == acceptbench ]] && grep -qa supervise "/proc/$p/cmdline" 2>/dev/null && echo "$p"
  done
}
cgroups_of() {  # PID: the cgroup folders acceptbench-PID-N that process made, on any hierarchy
  find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d -name "acceptbench-$1-*" 2>/dev/null
}

server_procs() {  # model processes (not sshd, not the shells) in the server namespace
  ip netns pids "$srv" 2>/dev/null | while read -r p; do
    c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
    case $c in prefork|reuseport|fork-per-conn) echo "$p $c" ;; esac
  done
}

case $mode in
single)
  lab_exec "$bin/acceptbench" run --launcher ssh:abtest-srv "${common[@]}" --model prefork --server-threads 2 \
    --workloads conn --connections 8 --duration 1 --warmup 0.2 --repetitions 2 --server-cpus 1 --client-cpus 0 \
    --out "$tmp/results.json" >"$tmp/run.log" 2>&1 || fail "the run failed"
  python3 - "$tmp/results.json" "$src/results/schema.json" "$tmp/sshcalls.log" <<'PY' || fail "results"
import json, os, sys, jsonschema
doc = json.load(open(sys.argv[1]))
jsonschema.validate(doc, json.load(open(sys.argv[2])))
import shlex
remote = [shlex.split(l)[-1] for l in open(sys.argv[3]) if l.startswith("CALL")]  # the command line sent
calls = "\n".join(remote)
c = doc["configs"][0]
assert c["status"] == "ok", c.get("reason")
assert doc["env"]["placement"]["launcher"] == "ssh:abtest-srv"
for rep in c["repetitions"]:
    sp = rep["server_proc"]
    # prefork's work is done by its children: counted only if live children are read.
    assert sp["cpu_children_s"] > 0, sp
    assert sp["threads"] >= 1
    assert rep["server"]["model"] == "prefork" and rep["server"]["totals"]["accepted"] > 0
    x = rep["derived"]["crosscheck"]
    assert abs(1 - x["ratio"]) <= 0.01, x
    # The server's CPU: its cgroup on the server's host, exact, every prefork process in it.
    sc = rep["server_cpu"]
    assert sc["source"] in ("cgroup-v1-cpuacct", "cgroup-v2-cpu.stat") and not sc["coarse"], sc
    assert sc["why_coarse"] is None and not rep["derived"]["server_cpu_coarse"], sc
    assert sc["host"] == "ssh:abtest-srv", sc
    assert sc["cgroup"]["name"].startswith("acceptbench-") and sc["cgroup"]["cgroups"], sc
    ticks = sp["cpu_user_s"] + sp["cpu_system_s"]  # /proc, 10 ms ticks, children included
    assert sc["cpu_s"] > 0 and sc["cpu_s"] >= 0.5 * ticks - 0.05, (sc, sp)
    for d in sc["cgroup"]["cgroups"]:  # removed by the supervisor when the server stopped
        assert not os.path.exists(d), d
assert c["summary"]["server_cpu_coarse"] is False
# env: the server host's own sysctls, read there.
hosts = {h["launcher"]: h for h in doc["env"]["hosts"]}
srv = hosts["ssh:abtest-srv"]
assert "server" in srv["roles"] and "error" not in srv, srv
assert srv["sysctls"]["net.core.somaxconn"] is not None, srv
assert "client" in hosts["local"]["roles"], hosts
# The server ran under the supervisor there, exiting on stdin EOF, pinned there (not our ssh);
# CPU, counters and its cgroup came from the probe run over ssh on the server's side.
assert "'supervise' '--exit-on-stdin-eof' '--cpus' '1' '--'" in calls and "--exit-on-stdin-eof" in calls, calls
assert "'probe' '--pid'" in calls and "'probe' '--kernel'" in calls and "'probe' '--cgroup'" in calls, calls
assert "'probe' '--sysctls'" in calls, calls
assert "'kill' '-s' 'TERM'" in calls
for line in remote:
    words = shlex.split(line)
    if "kill" in words:
        pid = words[-1].lstrip("-")
        assert pid.isdigit() and int(pid) > 1, line
s = c["summary"]
print(f"ok: {s['conn_per_s']['median']:.0f} conn/s over ssh, crosscheck {s['crosscheck_max_deviation']:.4f}, "
      f"server cpu {s['server_cpu_us_per_conn']['median']:.1f} us/conn from {s['server_cpu_source']} (children included)")
PY
  # A server host that cannot make cgroups: the run works, its CPU is /proc ticks, marked coarse, with why.
  lab_exec "$bin/acceptbench" run --launcher ssh:abtest-srv "${common[@]}" \
    --ssh-option "SetEnv=ACCEPTBENCH_CGROUP_ROOT=$tmp/not-a-cgroup-fs" --model prefork --server-threads 2 \
    --workloads conn --connections 8 --duration 1 --warmup 0 --repetitions 1 --out "$tmp/coarse.json" \
    >"$tmp/coarse.log" 2>&1 || fail "the run without remote cgroups failed"
  python3 - "$tmp/coarse.json" "$src/results/schema.json" <<'PY' || fail "results without remote cgroups"
import json, sys, jsonschema
doc = json.load(open(sys.argv[1]))
jsonschema.validate(doc, json.load(open(sys.argv[2])))
c = doc["configs"][0]
assert c["status"] == "ok", c.get("reason")
sc = c["repetitions"][0]["server_cpu"]
assert sc["coarse"] and sc["source"] == "proc-ticks", sc
assert sc["why_coarse"].startswith("on the server's host: ") and "not-a-cgroup-fs" in sc["why_coarse"], sc
assert c["repetitions"][0]["server_proc"]["cpu_children_s"] > 0
print("ok: coarse, with why:", sc["why_coarse"])
PY
  ;;
clients)
  lab_exec "$bin/acceptbench" run --launcher ssh:abtest-srv --client-hosts "$(IFS=,; echo "${hosts[*]}")" \
    "${common[@]}" --model reuseport --server-threads 2 --workloads conn --connections 4 --client-threads 1 \
    --server-cpus 1 --client-cpus 0 \
    --duration 1 --warmup 0.2 --repetitions 2 --client-start-delay 2 --out "$tmp/results.json" \
    >"$tmp/run.log" 2>&1 || fail "the run failed"
  python3 - "$tmp/results.json" "$src/results/schema.json" "$tmp/sshcalls.log" "${hosts[@]}" <<'PY' || fail "results"
import json, sys, jsonschema
doc = json.load(open(sys.argv[1]))
jsonschema.validate(doc, json.load(open(sys.argv[2])))
import shlex
calls = [shlex.split(l)[1:] for l in open(sys.argv[3]) if l.startswith("CALL")]
hosts = sys.argv[4:]
c = doc["configs"][0]
assert c["status"] == "ok", c.get("reason")
assert doc["env"]["placement"]["client_hosts"] == ["ssh:" + h for h in hosts]
for rep in c["repetitions"]:
    per = rep["client_hosts"]
    assert [p["host"] for p in per] == ["ssh:" + h for h in hosts], per
    assert all(p["connections"] > 0 for p in per), per
    assert rep["client"]["connections"] == sum(p["connections"] for p in per)
    assert abs(rep["derived"]["conn_per_s"] - sum(p["conn_per_s"] for p in per)) <= 0.02 * rep["derived"]["conn_per_s"]
    x = rep["derived"]["crosscheck"]
    assert abs(1 - x["ratio"]) <= 0.01, x  # the server host's PassiveOpens against the sum
    for p in per:  # pinned there to the configuration's client CPUs, as loadgen applied it
        assert p["cpus_requested"] == c["config"]["client_cpus"] == [0], p
        assert p["cpus_applied"] == [0] and p["why_not_pinned"] is None, p
    assert all(t["pinned_cpu"] == 0 for t in rep["client"]["client_cpu"]["threads"]), rep["client"]["client_cpu"]
for h in hosts:  # loadgen ran on each client host, over ssh, with the common start time, pinned
    assert any(a[-2] == h and "/loadgen' " in a[-1] and "'--start-at'" in a[-1] and "'--cpus' '0'" in a[-1]
               for a in calls), calls
# env: every host's sysctls, each read on that host (the probe over ssh), with its roles.
recorded = {x["launcher"]: x for x in doc["env"]["hosts"]}
assert set(recorded) == {"ssh:abtest-srv"} | {"ssh:" + h for h in hosts}, recorded.keys()
assert recorded["ssh:abtest-srv"]["roles"] == ["server"]
for h in hosts:
    r = recorded["ssh:" + h]
    assert r["roles"] == ["client"] and "error" not in r, r
    assert r["sysctls"]["net.core.somaxconn"] is not None and 0 in r["cpus_allowed"], r
    assert any(a[-2] == h and "'probe' '--sysctls'" in a[-1] for a in calls), calls
s = c["summary"]
print(f"ok: two client hosts, {s['conn_per_s']['median']:.0f} conn/s merged, crosscheck {s['crosscheck_max_deviation']:.4f}")
PY
  ;;
sigkill)
  # ip netns exec execs the harness: $! is the harness itself.
  ip netns exec "$lab" "$bin/acceptbench" run --launcher ssh:abtest-srv "${common[@]}" --model prefork --server-threads 2 \
    --workloads conn --connections 4 --duration 30 --warmup 0 --repetitions 1 --out "$tmp/results.json" \
    >"$tmp/run.log" 2>&1 &
  harness=$!
  up=0
  for _ in $(seq 150); do
    [[ -n $(server_procs) ]] && grep -q -- "--kernel" "$tmp/sshcalls.log" && { up=1; break; }
    sleep 0.1
  done
  [[ $up == 1 ]] || fail "the server did not come up in the server namespace"
  before=$(server_procs | wc -l)
  sup=$(supervisor_pids)
  [[ -n $sup ]] || fail "no acceptbench supervise on the server's host"
  made=$(for p in $sup; do cgroups_of "$p"; done)
  [[ -n $made ]] || fail "the supervisor made no cgroup"
  kill -9 "$harness"
  wait "$harness" 2>/dev/null
  gone=0
  for _ in $(seq 80); do
    [[ -z $(server_procs) ]] && { gone=1; break; }
    sleep 0.1
  done
  [[ $gone == 1 ]] || { for ns in "$srv" "$lab"; do echo "== $ns"; ip netns pids "$ns" | xargs -r ps -o pid,ppid,pgid,sid,stat,etimes,args -p; done; ls -l /proc/$(server_procs | head -1 | cut -d" " -f1)/fd; fail "server processes outlived the SIGKILLed harness by 8 s"; }
  left=""
  for _ in $(seq 50); do
    left=$(for d in $made; do [[ -e $d ]] && echo "$d"; done)
    [[ -z $left ]] && break
    sleep 0.1
  done
  [[ -z $left ]] || fail "server cgroups outlived the SIGKILLed harness: $left"
  [[ -z $(supervisor_pids) ]] || fail "the supervisor outlived the SIGKILLed harness"
  echo "ok: $before server processes (prefork and its workers) ended within 8 s of SIGKILL to the harness;" \
    "its cgroups ($(echo $made | wc -w)) are gone"
  ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
echo "PASS"
