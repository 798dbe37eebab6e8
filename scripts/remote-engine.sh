#!/usr/bin/env bash
# A second Docker engine on this machine that stands in for a remote host, for integration tests
# of remote engines (tcp:// and ssh:// endpoints). Everything listens on the loopback address
# 127.0.0.2 only:
#   tcp://127.0.0.2:2375        a second dockerd (unauthenticated API: loopback only), with its own
#                               data root, exec root, bridge, containerd namespaces and cgroup parent
#   ssh://root@127.0.0.2:2222   an sshd of its own whose sessions have DOCKER_HOST set to that
#                               engine, so `docker system dial-stdio` (what the docker CLI and
#                               docker-py run on an ssh:// host) reaches it
# The first engine (the default socket) and its registry keep running untouched; the second engine
# pulls base images from that registry (127.0.0.0/8 registries are insecure, i.e. plain HTTP, by
# default).
#
# Usage: scripts/remote-engine.sh start | stop [--purge] | status | env | check
#   start   start both (idempotent: does nothing when both already run and answer); needs root
#   stop    stop exactly what start started (by recorded PIDs, their descendants, and processes
#           that belong to this engine's state dir or cgroup), wait until they are gone and remove
#           the bridge; images stay cached unless --purge, which deletes the whole state dir
#   status  what runs and what answers; exit 0 when both answer
#   env     `export` lines to eval: REMOTE_DOCKER_HOST, REMOTE_SSH_HOST, REMOTE_SSH_PATH, ...
#   check   end-to-end checks: arm64 build and run on the second engine, ssh, docker CLI and
#           docker-py over ssh://
#
# How a process reaches the ssh:// endpoint: OpenSSH reads ~/.ssh/config from the passwd entry's
# home directory, not from $HOME, so a prepared HOME does not work. Both the docker CLI and
# docker-py (use_ssh_client=True) run the first `ssh` on PATH, so put "$REMOTE_SSH_PATH" first in
# PATH: it holds an `ssh` wrapper that runs the real ssh with `-F $REMOTE_SSH_CONFIG` (key,
# port, user, known_hosts for 127.0.0.2). Nothing in ~/.ssh is read or changed. docker-py refuses
# every ssh:// URL unless paramiko is importable, even with use_ssh_client=True (which never uses
# it): install docker[ssh] where docker-py must reach the ssh:// endpoint.
#
# State lives in $MULTIARCH_STATE_DIR/remote-engine (default /var/lib/pytest-multiarch/remote-engine).
set -euo pipefail
shopt -s inherit_errexit

if [ "$(id -u)" = 0 ]; then
  STATE_DIR=${MULTIARCH_STATE_DIR:-/var/lib/pytest-multiarch}
else
  STATE_DIR=${MULTIARCH_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/pytest-multiarch}
fi
DIR=$STATE_DIR/remote-engine
REGISTRY=${MULTIARCH_REGISTRY:-127.0.0.1:5000}

ADDR=${MULTIARCH_REMOTE_ADDR:-127.0.0.2} # loopback only: the API below has no authentication
case "$ADDR" in
  127.*) ;;
  *) echo "[remote-engine] ERROR: MULTIARCH_REMOTE_ADDR must be a loopback address (127.x.y.z)" >&2; exit 1 ;;
esac
API_PORT=${MULTIARCH_REMOTE_API_PORT:-2375}
SSH_PORT=${MULTIARCH_REMOTE_SSH_PORT:-2222}
TCP_URL=tcp://$ADDR:$API_PORT
SSH_URL=ssh://root@$ADDR:$SSH_PORT
BRIDGE=${MULTIARCH_REMOTE_BRIDGE:-pmremote0}
# The bridge's own subnet and the pool for user-defined networks of the second engine: outside
# Docker's default pools (172.17-31.x, 192.168.x), which the first engine allocates from.
BRIDGE_CIDR=${MULTIARCH_REMOTE_BRIDGE_CIDR:-10.213.0.1/24}
ADDRESS_POOL=${MULTIARCH_REMOTE_ADDRESS_POOL:-10.213.128.0/17}
# A name of its own per instance (tests start private ones beside it): cgroup and containerd namespaces.
NAME=${MULTIARCH_REMOTE_NAME:-pytest-multiarch-remote}
CGROUP_PARENT=/$NAME
NAMESPACE=$NAME

DATA_DIR=$DIR/data
EXEC_DIR=$DIR/exec
DOCKERD_PIDFILE=$DIR/dockerd.pid
DOCKERD_LOG=$DIR/dockerd.log
DAEMON_JSON=$DIR/daemon.json
SSHD_CONFIG=$DIR/sshd_config
SSHD_PIDFILE=$DIR/sshd.pid
SSHD_LOG=$DIR/sshd.log
HOST_KEY=$DIR/ssh_host_ed25519_key
CLIENT_KEY=$DIR/id_ed25519
AUTHORIZED_KEYS=$DIR/authorized_keys
KNOWN_HOSTS=$DIR/known_hosts
SSH_CONFIG=$DIR/ssh_config
BIN_DIR=$DIR/bin
START_TIMEOUT=60

log() { printf '[remote-engine] %s\n' "$*" >&2; }
die() { printf '[remote-engine] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The docker CLI aimed at one engine, whatever DOCKER_HOST/DOCKER_CONTEXT the caller has set.
rdocker() { env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH docker -H "$TCP_URL" "$@"; }
first_docker() { env -u DOCKER_HOST -u DOCKER_CONTEXT docker -H unix:///var/run/docker.sock "$@"; }
engine_answers() { rdocker info --format '{{.Name}}' >/dev/null 2>&1; }
ssh_answers() {
  "$(real_ssh)" -F "$SSH_CONFIG" -o ConnectTimeout=5 "$ADDR" docker info --format '{{.Name}}' >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
# Processes: only those this script started, recognised by their command line, never by name.

cmdline_of() { # PID -> its command line, NULs as spaces ("" when gone); builtins only
  local -a args=()
  mapfile -d '' args 2>/dev/null <"/proc/$1/cmdline" || return 0
  printf '%s' "${args[*]}"
}
alive() { # PID: running (not a zombie)
  local stat
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  read -r stat <"/proc/$1/stat" 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
pid_from() { # PIDFILE -> PID, or nothing
  local pid=""
  [ -r "$1" ] && read -r pid <"$1" 2>/dev/null || true
  [[ $pid =~ ^[0-9]+$ ]] && echo "$pid" || true
}
is_our_dockerd() { alive "$1" && [[ $(cmdline_of "$1") == *"--exec-root $EXEC_DIR "* ]]; }
is_our_sshd() { alive "$1" && [[ $(cmdline_of "$1") == *"-f $SSHD_CONFIG"* ]]; }
dockerd_pid() { local p; p=$(pid_from "$DOCKERD_PIDFILE"); if [ -n "$p" ] && is_our_dockerd "$p"; then echo "$p"; fi; }
sshd_pid() { local p; p=$(pid_from "$SSHD_PIDFILE"); if [ -n "$p" ] && is_our_sshd "$p"; then echo "$p"; fi; }

descendants() { # PID... -> every descendant PID
  [ $# -gt 0 ] || return 0
  ps -e -o pid=,ppid= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
    { parent[$1] = $2 }
    END {
      do { added = 0
        for (p in parent) if (!(p in want) && (parent[p] in want)) { want[p] = 1; found[p] = 1; added = 1 }
      } while (added)
      for (p in found) print p
    }'
}

is_own_daemon() { # CMDLINE: dockerd, containerd, a shim or runc of this exec root, or this sshd
  local cmd=$1 prog=${1%% *}
  case "${prog##*/}" in
    dockerd | containerd | containerd-shim* | runc) [[ " $cmd " == *" $EXEC_DIR"[/\ ]* ]] ;;
    sshd:) [[ $cmd == *" -f $SSHD_CONFIG "* ]] ;; # the listener, as it names itself
    sshd) [[ " $cmd " == *" -f $SSHD_CONFIG "* ]] ;;
    *) return 1 ;;
  esac
}

# Every process of this set-up: the recorded daemons and their descendants, the daemons whose
# command line names this engine's exec root or sshd config (containerd and its shims outlive a
# killed dockerd), and any process in this engine's cgroup parent (container processes).
our_pids() { # [engine]: only the engine's (not sshd's)
  local scope=${1:-all} roots=() p cmd line
  local -a cg
  p=$(dockerd_pid) && [ -n "$p" ] && roots+=("$p")
  [ "$scope" = engine ] || { p=$(sshd_pid) && [ -n "$p" ] && roots+=("$p"); }
  {
    printf '%s\n' "${roots[@]}"
    descendants "${roots[@]}"
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
      cmd=$(cmdline_of "$p")
      if is_own_daemon "$cmd" && { [ "$scope" = all ] || [[ $cmd != sshd* && $cmd != /usr/sbin/sshd* ]]; }; then
        echo "$p"
        continue
      fi
      cg=()
      mapfile -t cg 2>/dev/null <"/proc/$p/cgroup" || continue
      for line in "${cg[@]}"; do
        if [[ $line == *":$CGROUP_PARENT/"* ]]; then echo "$p"; break; fi
      done
    done
  } | awk 'NF && !seen[$0]++' | while read -r p; do alive "$p" && echo "$p" || true; done
}

wait_gone() { # TIMEOUT PID... : true when all are gone in time
  local timeout=$1 start p left
  shift
  start=$(now)
  while :; do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    [ "$left" = 0 ] && return 0
    awk -v a="$start" -v b="$(now)" -v t="$timeout" 'BEGIN { exit !(b - a > t) }' && return 1
    sleep 0.1
  done
}

terminate() { # TIMEOUT PID... : SIGTERM, wait, then SIGKILL what is left
  local timeout=$1 p
  shift
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  wait_gone "$timeout" "$@" && return 0
  local left=()
  for p in "$@"; do alive "$p" && left+=("$p"); done
  log "still running after ${timeout}s, killing: ${left[*]}"
  for p in "${left[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait_gone 10 "$@" || die "processes did not end: $*"
}

our_mounts() { # mount points under the state dir, deepest first
  awk -v d="$DIR/" '{ gsub(/\\040/, " ", $5); if (index($5, d) == 1) print $5 }' /proc/self/mountinfo | sort -r
}
unmount_leftovers() {
  local m
  while read -r m; do
    [ -n "$m" ] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done < <(our_mounts)
}

# ---------------------------------------------------------------------------------------------
# Network: a bridge of its own, so the second engine never touches docker0.

ip2int() { local IFS=.; set -- $1; echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
cidr_overlap() { # A/n B/m : true when the two ranges share an address
  local a=${1%/*} n=${1#*/} b=${2%/*} m=${2#*/} bits mask
  [ "$n" = "$1" ] && n=32
  [ "$m" = "$2" ] && m=32
  bits=$((n < m ? n : m))
  mask=$(((0xffffffff << (32 - bits)) & 0xffffffff))
  [ "$bits" = 0 ] && mask=0
  [ $(($(ip2int "$a") & mask)) = $(($(ip2int "$b") & mask)) ]
}
# The bridges (br-*) of this engine's user-defined networks stay in the kernel when it stops:
# remove those in its address pool once it is gone, or its next start finds its own pool taken.
remove_network_bridges() {
  local net dev
  while read -r net dev; do
    case "$dev" in br-*) ;; *) continue ;; esac
    if cidr_overlap "$net" "$ADDRESS_POOL"; then
      ip link del "$dev" 2>/dev/null && log "removed $dev ($net), a network bridge the engine left"
    fi
  done < <(ip -4 -o addr show | awk '{ print $4, $2 }')
}

check_subnets_free() {
  local net dev want
  while read -r net dev; do
    [ "$dev" = "$BRIDGE" ] && continue
    for want in "$BRIDGE_CIDR" "$ADDRESS_POOL"; do
      ! cidr_overlap "$net" "$want" \
        || die "$want overlaps $net on $dev; set MULTIARCH_REMOTE_BRIDGE_CIDR / MULTIARCH_REMOTE_ADDRESS_POOL"
    done
  done < <(
    ip -4 -o addr show | awk '$2 != "lo" { print $4, $2 }'
    ip -4 route show | awk '$1 ~ /^[0-9.]+(\/[0-9]+)?$/ { for (i = 2; i < NF; i++) if ($i == "dev") print $1, $(i + 1) }'
  )
}
ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    remove_network_bridges # left by an earlier run of this engine that stopped
    check_subnets_free
    ip link add "$BRIDGE" type bridge
  fi
  ip -4 -o addr show dev "$BRIDGE" | grep -qF " $BRIDGE_CIDR " || ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}
remove_bridge() {
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE"
    log "removed bridge $BRIDGE"
  fi
}

# ---------------------------------------------------------------------------------------------
# The second dockerd

# dockerd 26 started with --bridge deletes the default bridge interface docker0 while it sets up
# its own networks, although docker0 is the first engine's: its new containers then fail with
# "adding interface ... to bridge docker0 failed: Device does not exist". Note docker0's
# addresses before the start and put it back, as it was, once the second engine answers.
# (Containers of the first engine attached to the old docker0 lose their network: start the
# second engine before them, as scripts/setup.sh does.)
DOCKER0_ADDRS=""
note_docker0() {
  DOCKER0_ADDRS=""
  ip link show docker0 >/dev/null 2>&1 || return 0
  DOCKER0_ADDRS=$(ip -o addr show dev docker0 | awk '$3 == "inet" || $3 == "inet6" { print $4 }' | grep -v '^fe80:' || true)
  [ -n "$DOCKER0_ADDRS" ] || DOCKER0_ADDRS="none"
}
restore_docker0() {
  [ -n "$DOCKER0_ADDRS" ] || return 0
  ip link show docker0 >/dev/null 2>&1 && return 0
  log "putting back the first engine's bridge docker0, which the second dockerd removed"
  ip link add docker0 type bridge
  local addr
  for addr in $DOCKER0_ADDRS; do
    [ "$addr" = none ] || ip addr add "$addr" dev docker0
  done
  ip link set docker0 up
}

start_dockerd() {
  local pid start
  if pid=$(dockerd_pid) && [ -n "$pid" ]; then
    if engine_answers; then
      log "dockerd (pid $pid) answers on $TCP_URL"
      return
    fi
    log "dockerd (pid $pid) runs; waiting for it to answer on $TCP_URL"
  else
    if engine_answers; then
      die "an engine not started by this script answers on $TCP_URL; stop it first"
    fi
    # Leftovers of an engine that died (containerd, shims, mounts) would hold the state dir.
    stop_leftovers engine
    rm -f "$DOCKERD_PIDFILE"
    have dockerd || die "dockerd is not installed; run scripts/setup-docker.sh first"
    ensure_bridge
    mkdir -p "$DATA_DIR" "$EXEC_DIR"
    # Its own (empty) config file: /etc/docker/daemon.json belongs to the first engine.
    # The cgroupfs driver, named: on a cgroup v2 host booted with systemd (GitHub's Ubuntu runners)
    # dockerd defaults to the systemd driver, which refuses a --cgroup-parent path ("should be a
    # valid slice named as xxx.slice") and would not start.
    echo '{}' >"$DAEMON_JSON"
    # A restart on saved network state makes dockerd delete the stale "bridge" network and with
    # it the interface named docker0, the first engine's, whatever --bridge says: its containers
    # lose their network until docker0 is back, and new ones fail to start meanwhile. Network
    # state is not worth keeping (containers are kept, and removable, without it).
    rm -f "$DATA_DIR/network/files/local-kv.db"
    note_docker0
    log "starting dockerd on $TCP_URL (log: $DOCKERD_LOG)"
    setsid dockerd \
      --config-file "$DAEMON_JSON" \
      -H "$TCP_URL" \
      --data-root "$DATA_DIR" \
      --exec-root "$EXEC_DIR" \
      --pidfile "$DOCKERD_PIDFILE" \
      --bridge "$BRIDGE" \
      --iptables=false --ip6tables=false \
      --ip "$ADDR" \
      --default-address-pool "base=$ADDRESS_POOL,size=24" \
      --cgroup-parent "$CGROUP_PARENT" \
      --exec-opt native.cgroupdriver=cgroupfs \
      --containerd-namespace "$NAMESPACE" \
      --containerd-plugins-namespace "$NAMESPACE-plugins" \
      >"$DOCKERD_LOG" 2>&1 </dev/null &
    pid=$!
  fi
  start=$(now)
  until engine_answers; do
    if ! alive "$pid"; then
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      die "dockerd exited; see $DOCKERD_LOG"
    fi
    awk -v a="$start" -v b="$(now)" -v t="$START_TIMEOUT" 'BEGIN { exit !(b - a > t) }' \
      && die "dockerd did not answer on $TCP_URL within ${START_TIMEOUT}s; see $DOCKERD_LOG"
    sleep 0.2
  done
  restore_docker0
  log "engine answers on $TCP_URL: $(rdocker version --format '{{.Server.Version}}') (pid $(dockerd_pid))"
}

# ---------------------------------------------------------------------------------------------
# sshd

real_ssh() { # the first ssh on PATH that is not this script's wrapper
  local d
  local IFS=:
  for d in $PATH; do
    [ "$d" = "$BIN_DIR" ] && continue
    [ -x "$d/ssh" ] && { echo "$d/ssh"; return; }
  done
  echo ssh
}

ensure_sshd_installed() {
  [ -x /usr/sbin/sshd ] && return
  is_root && have apt-get || die "/usr/sbin/sshd is missing; install openssh-server"
  log "installing openssh-server (its own service is kept from starting)"
  # The package would start a system-wide sshd on port 22 of every address: forbid that for the
  # install, unless a policy already exists.
  local policy=/usr/sbin/policy-rc.d made=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made=1
  fi
  local rc=0
  { apt-get update -qq >/dev/null 2>&1 || true; } # a stale index may lack the current version
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null || rc=$?
  [ "$made" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install openssh-server failed"
}

write_ssh_files() {
  [ -s "$HOST_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C "pytest-multiarch remote-engine host" -f "$HOST_KEY"
  [ -s "$CLIENT_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C "pytest-multiarch remote-engine client" -f "$CLIENT_KEY"
  # restrict: no forwarding, pty or agent; commands (docker system dial-stdio) still run.
  printf 'restrict %s\n' "$(cat "$CLIENT_KEY.pub")" >"$AUTHORIZED_KEYS"
  chmod 600 "$AUTHORIZED_KEYS"
  printf '[%s]:%s %s\n' "$ADDR" "$SSH_PORT" "$(cut -d' ' -f1,2 "$HOST_KEY.pub")" >"$KNOWN_HOSTS"
  cat >"$SSHD_CONFIG" <<EOF
# sshd for scripts/remote-engine.sh: root by key only, on $ADDR only; sessions reach the second engine.
ListenAddress $ADDR:$SSH_PORT
HostKey $HOST_KEY
PidFile $SSHD_PIDFILE
AuthorizedKeysFile $AUTHORIZED_KEYS
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
# root's password is locked (passwd -S root: L); without PAM sshd refuses locked accounts even
# for key logins, with PAM the account stack allows them.
UsePAM yes
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
# What the docker CLI and docker-py run on an ssh:// host is 'docker system dial-stdio'.
SetEnv DOCKER_HOST=$TCP_URL
EOF
  cat >"$SSH_CONFIG" <<EOF
# ssh client settings for the remote-engine sshd: ssh -F $SSH_CONFIG $ADDR ...
Host $ADDR
  Port $SSH_PORT
  User root
  IdentityFile $CLIENT_KEY
  IdentitiesOnly yes
  UserKnownHostsFile $KNOWN_HOSTS
  StrictHostKeyChecking accept-new
  BatchMode yes
  LogLevel ERROR
EOF
  mkdir -p "$BIN_DIR"
  cat >"$BIN_DIR/ssh.tmp" <<EOF
#!/bin/sh
# ssh with the remote-engine client config; put $BIN_DIR first in PATH for the docker CLI and
# docker-py (use_ssh_client=True), which run the first 'ssh' on PATH.
exec $(real_ssh) -F $SSH_CONFIG "\$@"
EOF
  chmod 755 "$BIN_DIR/ssh.tmp"
  mv "$BIN_DIR/ssh.tmp" "$BIN_DIR/ssh"
}

start_sshd() {
  local pid start
  if pid=$(sshd_pid) && [ -n "$pid" ] && ssh_answers; then
    log "sshd (pid $pid) answers on $SSH_URL"
    return
  fi
  ensure_sshd_installed
  write_ssh_files
  if [ -z "$pid" ]; then
    rm -f "$SSHD_PIDFILE"
    mkdir -p -m 755 /run/sshd # its privilege-separation directory, compiled in
    /usr/sbin/sshd -t -f "$SSHD_CONFIG" || die "sshd rejects $SSHD_CONFIG"
    log "starting sshd on $ADDR:$SSH_PORT (log: $SSHD_LOG)"
    : >"$SSHD_LOG"
    /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$SSHD_LOG" </dev/null
  fi
  start=$(now)
  until ssh_answers; do
    awk -v a="$start" -v b="$(now)" -v t="$START_TIMEOUT" 'BEGIN { exit !(b - a > t) }' \
      && die "sshd did not let a session reach the engine within ${START_TIMEOUT}s; see $SSHD_LOG"
    sleep 0.2
  done
  log "sshd answers on $SSH_URL (pid $(sshd_pid))"
}

# ---------------------------------------------------------------------------------------------
# Subcommands

cmd_start() {
  is_root || die "start needs root (it runs dockerd and makes a bridge)"
  local t0
  t0=$(now)
  mkdir -p "$DIR"
  chmod 700 "$DIR" # sshd's StrictModes: the key files' directories must not be writable by others
  start_dockerd
  if [ "${MULTIARCH_REMOTE_SSH:-yes}" = no ]; then
    log "no sshd (MULTIARCH_REMOTE_SSH=no)"
  else
    start_sshd
  fi
  log "ready in $(since "$t0")s: $TCP_URL and $SSH_URL (eval \"\$(scripts/remote-engine.sh env)\")"
}

stop_leftovers() { # [engine]: processes and mounts left when the daemons are no longer recorded
  local pids
  mapfile -t pids < <(our_pids "${1:-all}")
  if [ "${#pids[@]}" -gt 0 ]; then
    # Orphans of a dead engine: shims and container processes (a container's PID 1 ignores
    # SIGTERM unless it handles it), so do not wait long.
    log "ending leftover processes of the remote engine: ${pids[*]}"
    terminate 3 "${pids[@]}"
  fi
  unmount_leftovers
}

cmd_stop() {
  local purge=0 pid pids
  case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) die "usage: $0 stop [--purge]" ;;
  esac
  is_root || die "stop needs root"
  # sshd first: its per-connection processes outlive the listener, so end its whole tree.
  if pid=$(sshd_pid) && [ -n "$pid" ]; then
    mapfile -t pids < <(descendants "$pid")
    log "stopping sshd (pid $pid${pids[*]:+, sessions ${pids[*]}})"
    terminate 10 "$pid" "${pids[@]}"
  fi
  rm -f "$SSHD_PIDFILE"
  if pid=$(dockerd_pid) && [ -n "$pid" ]; then
    # A test engine: kill its containers rather than wait for dockerd's graceful 10 s each.
    mapfile -t pids < <(timeout 10 env -u DOCKER_HOST -u DOCKER_CONTEXT docker -H "$TCP_URL" ps -q 2>/dev/null || true)
    if [ "${#pids[@]}" -gt 0 ]; then
      log "killing ${#pids[@]} running container(s) of the remote engine"
      timeout 20 env -u DOCKER_HOST -u DOCKER_CONTEXT docker -H "$TCP_URL" kill "${pids[@]}" >/dev/null 2>&1 || true
    fi
    log "stopping dockerd (pid $pid); it stops containerd"
    terminate 60 "$pid"
  fi
  stop_leftovers
  remove_bridge
  remove_network_bridges
  if [ "$purge" = 1 ] && [ -d "$DIR" ]; then
    [ -z "$(our_mounts)" ] || die "mounts remain under $DIR; not purging"
    rm -rf --one-file-system "$DIR"
    log "purged $DIR"
  fi
  [ -z "$(our_pids)" ] || die "processes of the remote engine remain: $(our_pids | tr '\n' ' ')"
  log "stopped"
}

cmd_status() {
  local pid ok=0 others
  if pid=$(dockerd_pid) && [ -n "$pid" ]; then
    if engine_answers; then
      echo "dockerd: running (pid $pid), answers on $TCP_URL ($(rdocker version --format '{{.Server.Version}}'))"
    else
      echo "dockerd: running (pid $pid), NOT answering on $TCP_URL"
      ok=1
    fi
  else
    echo "dockerd: not running"
    ok=1
  fi
  if pid=$(sshd_pid) && [ -n "$pid" ]; then
    if [ -s "$SSH_CONFIG" ] && ssh_answers; then
      echo "sshd: running (pid $pid), sessions reach the engine on $SSH_URL"
    else
      echo "sshd: running (pid $pid), sessions do NOT reach the engine"
      ok=1
    fi
  else
    echo "sshd: not running"
    ok=1
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    echo "bridge: $BRIDGE ($(ip -4 -o addr show dev "$BRIDGE" | awk '{ print $4 }'))"
  else
    echo "bridge: $BRIDGE absent"
  fi
  others=$(our_pids | tr '\n' ' ')
  echo "processes: ${others:-none}"
  echo "state: $DIR"
  return "$ok"
}

cmd_env() {
  cat <<EOF
export REMOTE_DOCKER_HOST=$TCP_URL
export REMOTE_SSH_HOST=$SSH_URL
export REMOTE_SSH_PATH=$BIN_DIR
export REMOTE_SSH_CONFIG=$SSH_CONFIG
export REMOTE_SSH_KEY=$CLIENT_KEY
export REMOTE_SSH_KNOWN_HOSTS=$KNOWN_HOSTS
export REMOTE_ENGINE_STATE_DIR=$DIR
EOF
  engine_answers || log "note: nothing answers on $TCP_URL; run: $0 start"
}

cmd_check() {
  local base=$REGISTRY/multiarch/busybox:1 tag=pytest-multiarch-remote-check:arm64 out t0 py
  t0=$(now)
  out=$(rdocker info --format '{{.Name}} {{.ServerVersion}} {{.Driver}}') || die "no engine on $TCP_URL"
  log "ok: docker -H $TCP_URL info -> $out"
  printf 'FROM %s\nRUN uname -m >/built-on\n' "$base" \
    | rdocker buildx build --quiet --platform linux/arm64 --load -t "$tag" - >/dev/null \
    || die "buildx build --platform linux/arm64 FROM $base failed on $TCP_URL"
  out=$(rdocker run --rm --platform linux/arm64 "$tag" sh -c 'echo "$(uname -m) built-on=$(cat /built-on)"')
  [[ $out == "aarch64 built-on=aarch64" ]] || die "arm64 container printed: $out"
  log "ok: buildx build --platform linux/arm64 FROM $base, run -> $out"
  out=$("$(real_ssh)" -i "$CLIENT_KEY" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$KNOWN_HOSTS" \
    -p "$SSH_PORT" "root@$ADDR" docker info --format '{{.Name}}') || die "ssh to $ADDR:$SSH_PORT failed"
  log "ok: ssh -p $SSH_PORT root@$ADDR docker info -> $out"
  out=$(PATH="$BIN_DIR:$PATH" env -u DOCKER_HOST -u DOCKER_CONTEXT docker -H "$SSH_URL" info --format '{{.Name}} {{.ServerVersion}}') \
    || die "docker -H $SSH_URL info failed"
  log "ok: PATH=$BIN_DIR:\$PATH docker -H $SSH_URL info -> $out"
  py=${PYTHON:-$(dirname "${BASH_SOURCE[0]}")/../.venv/bin/python}
  if [ -x "$py" ] && "$py" -c 'import docker' 2>/dev/null && ! "$py" -c 'import paramiko' 2>/dev/null; then
    # docker-py imports its ssh adapter (sshconn.py) only when paramiko imports, even though
    # use_ssh_client=True never uses paramiko: without it, "Install paramiko package to enable
    # ssh:// support".
    log "NOTE: skipped docker-py over ssh://: $py lacks paramiko, which docker-py needs for any ssh:// URL (pip install 'docker[ssh]')"
  elif [ -x "$py" ] && "$py" -c 'import docker' 2>/dev/null; then
    out=$(PATH="$BIN_DIR:$PATH" "$py" -c '
import sys, docker
client = docker.DockerClient(base_url=sys.argv[1], use_ssh_client=True, timeout=30)
print(client.info()["Name"], client.version()["Version"])
client.close()' "$SSH_URL") || die "docker-py over $SSH_URL failed"
    log "ok: docker-py DockerClient($SSH_URL, use_ssh_client=True) -> $out"
  else
    log "skipped docker-py check: no python with the docker package (set PYTHON)"
  fi
  out=$(first_docker info --format '{{.Name}} {{.ServerVersion}}') || die "the first engine (default socket) does not answer"
  log "ok: first engine on the default socket still answers -> $out"
  log "all checks passed in $(since "$t0")s"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    check) cmd_check "$@" ;;
    *)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
