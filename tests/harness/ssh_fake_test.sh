#!/usr/bin/env bash
# The ssh launcher against a fake `ssh` on PATH that logs its argv and runs the remote
# command the way a remote login shell would (the words after the host joined by spaces,
# then `sh -c`). The "remote" model binary is a fake too: it logs its argv and never prints
# READY, only waiting for EOF on its stdin. So the harness hits its READY timeout, and then:
#  - no logged ssh command may name a pid <= 1 (`kill -9 -1` once killed every process of
#    the user on the remote host), and no remote kill may be sent at all before READY;
#  - the fake server must be gone (ending the local ssh closed its stdin, or ended the
#    supervisor it runs under: `acceptbench supervise`, the real one, linked into the fake
#    remote bin dir; ACCEPTBENCH_CGROUP_ROOT keeps it off this machine's cgroups);
#  - a --remote-bin-dir full of spaces and shell metacharacters reaches the server intact,
#    and nothing in it is executed;
#  - a host that starts with '-' (an ssh option in disguise) is refused with exit 2.
# The harness runs in a PID namespace of its own (unshare), a second guard besides the fake
# ssh never running a kill: nothing this test starts can signal a process outside it.
# Exit 77 (skipped) where a PID namespace cannot be made.
# Usage: ssh_fake_test.sh BIN_DIR
set -uo pipefail
bin=$(realpath "$1")
if [[ ${ABFAKE_INNER:-} != 1 ]]; then
  if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
    echo "SKIP: cannot create a PID namespace here (unshare --pid)"; exit 77
  fi
  ABFAKE_INNER=1 exec unshare --pid --fork --mount-proc --kill-child bash "$0" "$@"
fi
tmp=$(mktemp -d /tmp/abfakessh-$$.XXXXXX)
cleanup() {
  # The fake servers exit on stdin EOF; one still running (a failure) must not outlive the test.
  [[ -f $tmp/server.pids ]] && xargs -r kill -9 <"$tmp/server.pids" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- ssh log:"; cat "$tmp/ssh.log" 2>/dev/null; exit 1; }

mkdir -p "$tmp/path"
cat >"$tmp/path/ssh" <<'EOF'
#!/usr/bin/env bash
{ printf 'CALL'; for a in "$@"; do printf ' %q' "$a"; done; printf '\n'; } >>"$FAKE_SSH_LOG"
args=("$@"); i=0; n=$#
while (( i < n )); do
  case ${args[i]} in
    --) i=$((i + 1)); break ;;
    -[oFSpilEbcDeIJLmOQRwWB]) i=$((i + 2)) ;;
    -*) i=$((i + 1)) ;;
    *) break ;;
  esac
done
host=${args[i]:-}
i=$((i + 1))
[[ ${args[i]:-} == -- ]] && i=$((i + 1))  # real ssh: `HOST -- cmd` ends its options too
[[ -z $host || $host == -* ]] && { echo "fake ssh: bad host '$host'" >&2; exit 255; }
# Never run a kill here: this "remote host" is the test machine itself (a harness that sends
# `kill -9 -1` would end every process of the user, and this test runs as root).
[[ "${args[*]:i}" == *kill* ]] && exit 0
exec sh -c "${args[*]:i}"
EOF
chmod +x "$tmp/path/ssh"
export FAKE_SSH_LOG=$tmp/ssh.log
export ACCEPTBENCH_CGROUP_ROOT=$tmp/no-cgroups
export PATH=$tmp/path:$PATH

# A "remote" bin dir: the fake model logs its argv, then waits for EOF on stdin.
make_bin() {
  mkdir -p "$1"
  cp "$bin/models.json" "$1/" 2>/dev/null || true
  ln -s "$bin/acceptbench" "$1/acceptbench"
  cat >"$1/reuseport" <<EOF
#!/usr/bin/env bash
{ printf 'ARGV0 %s\n' "\$0"; for a in "\$@"; do printf 'ARG %s\n' "\$a"; done; } >>"$tmp/server.log"
echo \$\$ >>"$tmp/server.pids"
cat >/dev/null
echo "stdin closed" >>"$tmp/server.events"
EOF
  chmod +x "$1/reuseport"
}

run_harness() {  # $1: remote bin dir
  timeout 60 "$bin/acceptbench" run --launcher ssh:fakehost --remote-bin-dir "$1" --ready-timeout-ms 1500 \
    --target-host 10.255.255.1 --allow-remote-target --model reuseport --workloads cost --rates 100 \
    --duration 0.2 --warmup 0 --repetitions 1 --out "$tmp/out.json" >"$tmp/run.log" 2>&1
}

check_no_pid_le_1() {
  # No READY ever came, so no remote kill may have been sent at all (a kill may only name
  # the pid from READY); in particular none names -1, 0 or 1.
  if grep -E -- "kill" "$tmp/ssh.log" >/dev/null; then fail "a remote kill was sent before READY"; fi
  if grep -E -- "(^| )-1( |$)" "$tmp/ssh.log" >/dev/null; then
    fail "a logged command names pid -1"
  fi
}

wait_server_gone() {  # $1: how many fake servers have started so far
  [[ $(wc -l <"$tmp/server.pids" 2>/dev/null) == "$1" ]] || fail "expected $1 fake servers to have started"
  for _ in $(seq 50); do
    local alive=0
    while read -r p; do [[ -e /proc/$p ]] && alive=1; done <"$tmp/server.pids"
    [[ $alive == 0 ]] && return 0
    sleep 0.1
  done
  fail "the fake server still runs after the harness gave up (its stdin never closed)"
}

# 1. READY never comes: the harness gives up, ends its ssh, kills nothing remotely.
make_bin "$tmp/plain"
run_harness "$tmp/plain"
grep -q "no READY line" "$tmp/out.json" "$tmp/run.log" || { cat "$tmp/run.log"; fail "expected a READY timeout"; }
check_no_pid_le_1
grep -q "BatchMode=yes" "$tmp/ssh.log" || fail "ssh was not run with BatchMode=yes"
# The server session keeps its stdin (the pipe whose EOF stops the server): no -n there.
grep "supervise" "$tmp/ssh.log" | grep -q -- " -n " && fail "the server's ssh session was given -n"
grep -q "supervise" "$tmp/ssh.log" || fail "the server did not run under acceptbench supervise"
grep -q -- "-- fakehost " "$tmp/ssh.log" || fail "the host does not follow -- on the ssh command line"
grep -q -- "--exit-on-stdin-eof" "$tmp/server.log" || fail "the server was not told to exit on stdin EOF"
wait_server_gone 1
echo "ok: READY timeout, no remote kill, the fake server ended with its ssh"

# 2. A bin dir full of spaces and metacharacters arrives intact; nothing in it runs.
weird="$tmp/dir with spaces; touch $tmp/PWNED \$(touch $tmp/PWNED2) 'q' \"dq\" \`touch $tmp/PWNED3\` & x|y"
: >"$tmp/server.log"
make_bin "$weird"
run_harness "$weird"
check_no_pid_le_1
ls "$tmp"/PWNED* >/dev/null 2>&1 && fail "a metacharacter in --remote-bin-dir was executed"
[[ $(sed -n 's/^ARGV0 //p' "$tmp/server.log") == "$weird/reuseport" ]] ||
  { cat "$tmp/server.log"; fail "the server path did not arrive intact"; }
grep -qx "ARG 10.255.255.1" "$tmp/server.log" || fail "the --bind address did not arrive as one argument"
wait_server_gone 2
echo "ok: arguments with spaces and shell metacharacters arrive intact"

# 3. A host that looks like an ssh option is refused before ssh runs.
: >"$tmp/ssh.log"
"$bin/acceptbench" run --launcher "ssh:-oProxyCommand=touch $tmp/PWNED4" --target-host 10.255.255.1 \
  --allow-remote-target --model reuseport --duration 0.2 --repetitions 1 --out "$tmp/x.json" >"$tmp/run.log" 2>&1
rc=$?
[[ $rc == 2 ]] || fail "a host starting with '-' gave exit $rc, not 2"
[[ -s $tmp/ssh.log || -e $tmp/PWNED4 ]] && fail "ssh ran for a host starting with '-'"
echo "ok: a host starting with '-' is refused (exit 2)"
echo "PASS"
