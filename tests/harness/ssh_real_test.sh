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
#            CPU (children included: prefork) read on the server's side by `acceptbench probe`
#            through ssh, cross-check within 1%.
#   clients  two client namespaces (ssh too) drive the server through --client-hosts: the
#            merged count equals the server's PassiveOpens delta within 1%, conn/s adds up.
#   sigkill  SIGKILL the harness during a run: no server process is left in the server
#            namespace a few seconds later.
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
  for p in "${sshd_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for ns in "$srv" "${clients[@]}" "$lab"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  done
  for ns in "$srv" "${clients[@]}" "$lab"; do ip netns del "$ns" 2>/dev/null; done
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
# The remote shell reads \$HOME/.bashrc (Debian's bash does for ssh commands): a home of the
# test's own keeps the machine's rc files (which may hang, e.g. on a stale lock) out of it.
SetEnv HOME=$tmp/home
EOF
  # /run/sshd (privilege separation) as a tmpfs in sshd's own mount namespace.
  ip netns exec "$ns" unshare --mount --propagation private sh -c \
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

server_procs() {  # model processes (not sshd, not the shells) in the server namespace
  ip netns pids "$srv" 2>/dev/null | while read -r p; do
    c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
    case $c in prefork|reuseport|fork-per-conn) echo "$p $c" ;; esac
  done
}

case $mode in
single)
  lab_exec "$bin/acceptbench" run --launcher ssh:abtest-srv "${common[@]}" --model prefork --server-threads 2 \
    --workloads conn --connections 8 --duration 1 --warmup 0.2 --repetitions 2 --out "$tmp/results.json" \
    >"$tmp/run.log" 2>&1 || fail "the run failed"
  python3 - "$tmp/results.json" "$src/results/schema.json" "$tmp/sshcalls.log" <<'PY' || fail "results"
import json, sys, jsonschema
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
# The server ran under setsid, exiting on stdin EOF; CPU and counters came from the probe
# run over ssh on the server's side.
assert "'setsid' '-w'" in calls and "--exit-on-stdin-eof" in calls, calls
assert "'probe' '--pid'" in calls and "'probe' '--kernel'" in calls, calls
assert "'kill' '-s' 'TERM'" in calls
for line in remote:
    words = shlex.split(line)
    if "kill" in words:
        pid = words[-1].lstrip("-")
        assert pid.isdigit() and int(pid) > 1, line
s = c["summary"]
print(f"ok: {s['conn_per_s']['median']:.0f} conn/s over ssh, crosscheck {s['crosscheck_max_deviation']:.4f}, "
      f"server cpu {s['server_cpu_us_per_conn']['median']:.1f} us/conn (children included)")
PY
  ;;
clients)
  lab_exec "$bin/acceptbench" run --launcher ssh:abtest-srv --client-hosts "$(IFS=,; echo "${hosts[*]}")" \
    "${common[@]}" --model reuseport --server-threads 2 --workloads conn --connections 4 --client-threads 1 \
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
for h in hosts:  # loadgen ran on each client host, over ssh, with the common start time
    assert any(a[-2] == h and "/loadgen' " in a[-1] and "'--start-at'" in a[-1] for a in calls), calls
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
  kill -9 "$harness"
  wait "$harness" 2>/dev/null
  gone=0
  for _ in $(seq 80); do
    [[ -z $(server_procs) ]] && { gone=1; break; }
    sleep 0.1
  done
  [[ $gone == 1 ]] || { for ns in "$srv" "$lab"; do echo "== $ns"; ip netns pids "$ns" | xargs -r ps -o pid,ppid,pgid,sid,stat,etimes,args -p; done; ls -l /proc/$(server_procs | head -1 | cut -d" " -f1)/fd; fail "server processes outlived the SIGKILLed harness by 8 s"; }
  echo "ok: $before server processes (prefork and its workers) ended within 8 s of SIGKILL to the harness"
  ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
echo "PASS"
