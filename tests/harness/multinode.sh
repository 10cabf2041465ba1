#!/usr/bin/env bash
# A multi-node Slurm test cluster on this one machine, for the aws-role multi-node tests.
# Every node is a slurmd in its own network, UTS and mount namespace, on a private bridge:
#
#   multinode.sh up [N]          build + install the plugin and binaries into the cluster's
#                                own directory, write its config, start its own munged, STS
#                                emulator, slurmctld and N slurmd (default 2), each node with
#                                its credentials endpoint; wait until all nodes are idle
#   multinode.sh down            stop exactly what `up` started, delete the namespaces and
#                                the bridge
#   multinode.sh status          daemons, nodes, jobs
#   multinode.sh assert-healthy  fail if a node is down/drained/failing or has a Reason
#   multinode.sh env             shell assignments for test scripts (MN_CONF, MN_STS, ...)
#   multinode.sh pid NODE        PID of NODE's slurmd: `nsenter -t PID -m -r` sees its files
#   multinode.sh client CMD...   CMD (sbatch, srun, scontrol, runuser -l alice -c ...) as a
#                                client of this cluster (SLURM_CONF set; with 24.11, in its root)
#
# Environment: AWS_ROLE_MN_ALLOC=0 starts slurmctld WITHOUT PrologFlags=Alloc (what
# happens then is one of the tests); `up` on a running cluster whose config changed
# restarts slurmctld and the slurmds. AWS_ROLE_MN_EXTRA_CONF: lines appended to slurm.conf
# (experiments: Prolog=, SlurmdDebug=, ...). AWS_ROLE_MN_SLURM=24.11 runs Slurm 24.11 and munge
# from a Debian trixie root (tests/harness/trixie.sh) instead of the host's 22.05: every
# daemon and client is chrooted there, in a mount namespace of its own that has /proc,
# /sys, /dev, this cluster's directories and /home mounted into the root; the plugin is
# built against that root's headers (into $CARGO_TARGET_DIR/slurm-24.11).
#
# Isolation from a single-node cluster that may run on this machine at the same time
# (tests/harness/cluster.sh: host munged, slurmctld :6817, slurmd :6818, /etc/slurm,
# /etc/aws-role, /run/aws-role, STS emulator :5059): this cluster has its own munged
# (socket, key, pid, log under $MN_ROOT), slurm.conf and plugstack file, slurmctld on
# another port, STS emulator on the bridge address only, and its binaries in its own
# directory. A node's /run/aws-role and spool are tmpfs mounted inside that node's mount
# namespace: the host's /run/aws-role is never written, and no mount is made on the host
# (apart from the /run/netns bookkeeping of `ip netns`).
#
# Node = `nsenter --net=/run/netns/X unshare --uts --mount`, not `ip netns exec`: the
# latter remounts /sys and slurmd 22.05 then finds no cgroup filesystem and exits.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"

MN_ROOT=${AWS_ROLE_MN_ROOT:-/run/aws-role-mn}
MN_LOG=${AWS_ROLE_MN_LOG_DIR:-$LOG_DIR/mn}
NET=${AWS_ROLE_MN_NET:-10.99.0}       # the /24 of the bridge
PREFIX=awsmn                          # netns awsmn-n1..., veths awsmn-v1..., bridge awsmnbr0
BRIDGE=${PREFIX}br0
CTL_IP=$NET.1                         # slurmctld (host side of the bridge)
STS_IP=$NET.2                         # STS emulator: its own address, so one node can be cut off from STS alone
CTLD_PORT=${AWS_ROLE_MN_CTLD_PORT:-6917}
STS_PORT=${AWS_ROLE_MN_STS_PORT:-5359}
STS_URL=http://$STS_IP:$STS_PORT
# What the nodes use: aws-role accepts plain http only to this host, so each node reaches
# the emulator through a forwarder (socat) on its own loopback, in its own network
# namespace; a route cut to $STS_IP on one node still cuts that node off.
NODE_STS_URL=http://127.0.0.1:$STS_PORT
# Job ids far from the single-node cluster's, so no id can mean a job of both.
FIRST_JOB_ID=${AWS_ROLE_MN_FIRST_JOB_ID:-7000001}
CPUS=${AWS_ROLE_MN_CPUS:-8}
ALLOC=${AWS_ROLE_MN_ALLOC:-1}
UP_TIMEOUT=${AWS_ROLE_TEST_UP_TIMEOUT:-30}
# Which Slurm: the host's (22.05), or 24.11 in a trixie root. Only `up` takes it from the
# environment; every other command uses what the running cluster was started with.
SLURM_FILE=${AWS_ROLE_MN_ROOT:-/run/aws-role-mn}/slurm
if [ "${1:-}" = up ] || [ ! -s "$SLURM_FILE" ]; then
  SLURM_VER=${AWS_ROLE_MN_SLURM:-22.05}
else
  SLURM_VER=$(cat "$SLURM_FILE")
fi
case $SLURM_VER in
  22.05) SROOT= ;;
  24.11) SROOT=$(bash "$HERE/trixie.sh" path) ;;
  *) die "AWS_ROLE_MN_SLURM must be 22.05 (the host's) or 24.11 (trixie root), not '$SLURM_VER'" ;;
esac
# Daemons and clients of a 24.11 cluster run chrooted (see cmd_chroot_exec).
ROOT_WRAP=()
[ -z "$SROOT" ] || ROOT_WRAP=(unshare --mount --propagation private -- bash "$HERE/multinode.sh" chroot-exec)

ETC=$MN_ROOT/etc
BIN=$MN_ROOT/bin
PIDS=$MN_ROOT/pids
MUNGE_DIR=$MN_ROOT/munge
STATE=$MN_ROOT/state
SPOOL=$MN_ROOT/spool                  # mount points; each node has a tmpfs on its own
CONF=$ETC/slurm.conf
PLUGSTACK=$ETC/plugstack.conf
MAP=$ETC/role-map.toml
NODE_CREDS=$ETC/node-credentials
HOSTS=$ETC/hosts
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
NODES_FILE=$MN_ROOT/nodes             # how many nodes `up` started
TARGET=${CARGO_TARGET_DIR:-$REPO/target}/release
# The plugin for 24.11: built against the trixie root's headers, in a target dir of its own
# (the build script's output depends on them).
TARGET_2411=${CARGO_TARGET_DIR:-$REPO/target}/slurm-24.11
BINARIES=(aws-role-prolog aws-role-epilog aws-role-credentials aws-role-endpoint)
# Where the job directories are: the same path inside every node's own mount namespace.
NODE_BASE=/run/aws-role

# Substrings of /proc/PID/cmdline that identify our processes (all include a path of ours,
# so the single-node cluster's daemons never match).
MUNGED_PAT="/usr/sbin/munged -F --socket=$MUNGE_SOCKET"
CTLD_PAT="/usr/sbin/slurmctld -D -f $CONF"
# (The trailing space ends the node name: n1 must not match n10's slurmd.)
slurmd_pat() { printf '/usr/sbin/slurmd -D -f %s -N %s ' "$CONF" "$1"; }
MOTO_PAT="moto_server -H $STS_IP -p $STS_PORT"

# Every Slurm client call of this script goes to this cluster, never the single-node one.
msl() { SLURM_CONF=$CONF timeout "$SLURM_CLIENT_TIMEOUT" "${ROOT_WRAP[@]}" "$@"; }
# root_ids USER: "uid:gid" of USER where the daemons run (the trixie root has its own).
root_ids() {
  if [ -n "$SROOT" ]; then
    echo "$(chroot "$SROOT" id -u "$1"):$(chroot "$SROOT" id -g "$1")"
  else
    echo "$(id -u "$1"):$(id -g "$1")"
  fi
}

node_count() { cat "$NODES_FILE" 2>/dev/null || echo 0; }
node_names() { local i; for ((i = 1; i <= $1; i++)); do echo "n$i"; done; }
netns_of() { echo "$PREFIX-$1"; }
node_ip() { echo "$NET.$((10 + ${1#n}))"; }
slurmd_pidf() { echo "$PIDS/slurmd-$1.pid"; }
forwarder_pidf() { echo "$PIDS/sts-forwarder-$1.pid"; }
forwarder_pat() { printf 'socat TCP-LISTEN:%s,bind=127.0.0.1,fork,reuseaddr TCP:%s:%s' "$STS_PORT" "$STS_IP" "$STS_PORT"; }
endpoint_pidf() { echo "$PIDS/endpoint-$1.pid"; }
ENDPOINT_PAT="$BIN/aws-role-endpoint --config $MAP"

# ---------------------------------------------------------------- network

netns_exists() { [ -e "/run/netns/$1" ]; }
link_exists() { ip link show "$1" >/dev/null 2>&1; }

net_up() {
  local n=$1 node ns v
  if ! link_exists "$BRIDGE"; then
    # Another interface in our /24 would make the cluster talk to somebody else's hosts.
    if ip -4 -o addr show | grep -q " inet $NET\."; then
      die "$NET.0/24 is already used on this machine: $(ip -4 -o addr show | grep " inet $NET\." | head -n1); set AWS_ROLE_MN_NET"
    fi
    ip link add "$BRIDGE" type bridge
    ip addr add "$CTL_IP/24" dev "$BRIDGE"
    ip addr add "$STS_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  for node in $(node_names "$n"); do
    ns=$(netns_of "$node")
    v=$PREFIX-v${node#n}
    netns_exists "$ns" || ip netns add "$ns"
    if ! link_exists "$v"; then
      ip link add "$v" type veth peer name eth0 netns "$ns"
      ip link set "$v" master "$BRIDGE" up
      ip -n "$ns" addr add "$(node_ip "$node")/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" link set lo up
    fi
  done
}

our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-n[0-9]+\$" || true; }
our_links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^$PREFIX-v[0-9]+\$|^$BRIDGE\$" || true; }

# Deletion is asynchronous: a namespace goes away when its last user does, and its veth
# with it. Wait, so that an immediate `up` does not hit "File exists".
net_down() {
  local ns l
  for ns in $(our_netns); do ip netns del "$ns" 2>/dev/null || true; done
  for l in $(our_links); do [ "$l" = "$BRIDGE" ] || ip link del "$l" 2>/dev/null || true; done
  link_exists "$BRIDGE" && { ip link del "$BRIDGE" 2>/dev/null || true; }
  net_gone() { [ -z "$(our_netns)" ] && [ -z "$(our_links)" ]; }
  wait_for 15 net_gone || log "network not gone after 15 s: $(our_netns) $(our_links)"
}

# ---------------------------------------------------------------- processes in our namespaces

# ns_pids NODE: live processes in NODE's network namespace (they can only have been started
# by this cluster: the namespace is ours). Checked by namespace inode, not by name.
ns_pids() {
  local ns inode pid st
  ns=$(netns_of "$1")
  netns_exists "$ns" || return 0
  inode=$(stat -L -c %i "/run/netns/$ns" 2>/dev/null) || return 0
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$inode" ] || continue
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || continue
    [ -n "$st" ] && [ "$st" != Z ] && echo "$pid"
  done
  return 0
}

# kill_ns_leftovers NODE: after slurmd stopped, job processes or a slurmstepd may remain
# in the node's namespaces (a job killed mid-way); they would keep the namespaces alive.
kill_ns_leftovers() {
  local node=$1 pids i
  pids=$(ns_pids "$node")
  [ -z "$pids" ] && return 0
  log "node $node: stopping leftover processes: $(for p in $pids; do printf '%s(%s) ' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)"; done)"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    [ -z "$(ns_pids "$node")" ] && return 0
    sleep 0.1
  done
  pids=$(ns_pids "$node")
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  no_ns_pids() { [ -z "$(ns_pids "$1")" ]; }
  wait_for 5 no_ns_pids "$node" || log "node $node: processes still alive: $(ns_pids "$node")"
}

# ---------------------------------------------------------------- install

# put SRC DEST MODE: copy to a temporary name next to DEST, then rename over it (a running
# slurmd/slurmstepd may have the old file mapped). Returns 1 if DEST was already the same.
put() {
  local src=$1 dest=$2 mode=$3 tmp
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then return 1; fi
  tmp="$(dirname "$dest")/.$(basename "$dest").new.$$"
  install -m "$mode" -o root -g root "$src" "$tmp"
  mv -f "$tmp" "$dest"
}

# install_bin: builds (a no-op when tests/harness/install.sh just did) and copies the plugin
# and binaries into $BIN. Returns 0 if anything changed.
install_bin() {
  local changed=1 b
  local so=$TARGET/libaws_role_spank.so
  (
    cd "$REPO"
    # The plugin on its own: built with the binaries, cargo would unify core's sts feature
    # (tokio, the AWS SDK) into it.
    if [ -n "$SROOT" ]; then
      SLURM_INCLUDE_DIR=$SROOT/usr/include CARGO_TARGET_DIR=$TARGET_2411 cargo build -q --release -p aws-role-spank
    else
      cargo build -q --release -p aws-role-spank
    fi
    cargo build -q --release -p aws-role-prolog -p aws-role-epilog -p aws-role-credentials -p aws-role-endpoint
  ) >&2 || die "cargo build failed"
  [ -z "$SROOT" ] || so=$TARGET_2411/release/libaws_role_spank.so
  # The plugin refuses binaries that are not root's alone, and jobs (as alice) run the
  # credential helper from here: root-owned, 0755 all the way.
  install -d -m 0755 -o root -g root "$BIN"
  for b in "${BINARIES[@]}"; do
    [ -f "$TARGET/$b" ] || die "$TARGET/$b not built"
    put "$TARGET/$b" "$BIN/$b" 0755 && changed=0
  done
  put "$so" "$BIN/aws_role.so" 0755 && changed=0
  return $changed
}

# ---------------------------------------------------------------- config

render_conf() {
  local n=$1 node prolog_flags=PrologFlags=Alloc
  [ "$ALLOC" = 1 ] || prolog_flags='# PrologFlags: none (AWS_ROLE_MN_ALLOC=0): the Prolog runs on a node only when a step reaches it'
  cat <<EOF
# Written by tests/harness/multinode.sh; rewritten by every 'multinode.sh up'.
ClusterName=awsmn
SlurmctldHost=$(hostname -s)($CTL_IP)
SlurmctldPort=$CTLD_PORT
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Heterogeneous jobs are started only by the backfill scheduler: every second, not 30.
SchedulerParameters=bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
FirstJobId=$FIRST_JOB_ID
$prolog_flags
PlugStackConfig=$PLUGSTACK
# Test jobs mostly sleep: more CPUs than the machine has, so jobs run side by side.
SlurmdParameters=config_overrides
SlurmctldPidFile=$PIDS/slurmctld.sys.pid
# Inside each node's own spool tmpfs (%n = node name).
SlurmdPidFile=$SPOOL/%n/slurmd.pid
SlurmdSpoolDir=$SPOOL/%n
StateSaveLocation=$STATE
SlurmctldLogFile=$MN_LOG/slurmctld.log
SlurmdLogFile=$MN_LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
EOF
  for node in $(node_names "$n"); do
    printf 'NodeName=%s NodeAddr=%s CPUs=%s Boards=1 SocketsPerBoard=1 CoresPerSocket=%s ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN\n' \
      "$node" "$(node_ip "$node")" "$CPUS" "$CPUS"
  done
  echo "PartitionName=debug Nodes=n[1-$n] Default=YES MaxTime=INFINITE State=UP"
  echo "PartitionName=gpu Nodes=n[1-$n] MaxTime=INFINITE State=UP"
  [ -z "${AWS_ROLE_MN_EXTRA_CONF:-}" ] || printf '# AWS_ROLE_MN_EXTRA_CONF:\n%s\n' "$AWS_ROLE_MN_EXTRA_CONF"
}

# The site map of tests/harness/site.sh, with this cluster's STS emulator and paths.
render_map() {
  cat <<TOML
# Test site map of the multi-node cluster, written by tests/harness/multinode.sh.
[sts]
region = "us-east-1"
endpoint = "$NODE_STS_URL"
credentials_file = "$NODE_CREDS"
timeout = "5s"

[node]
base_dir = "$NODE_BASE"
credential_helper = "$BIN/aws-role-credentials"

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["alice"]

[roles.analytics]
arn = "arn:aws:iam::123456789012:role/analytics"
allow_groups = ["analysts"]

[roles.shared]
arn = "arn:aws:iam::123456789012:role/shared"

[partitions.gpu]
default_role = "shared"
TOML
}

# write FILE MODE < content: returns 0 if FILE changed.
write_file() {
  local f=$1 mode=$2 new
  new=$(cat)
  if [ -f "$f" ] && [ "$(cat "$f")" = "$new" ]; then return 1; fi
  printf '%s\n' "$new" >"$f.new"
  chmod "$mode" "$f.new"
  mv -f "$f.new" "$f"
}

# write_config N: returns 0 if anything slurmctld or slurmd read at start changed.
write_config() {
  local n=$1 changed=1 node
  install -d -m 0755 -o root -g root "$MN_ROOT" "$ETC" "$PIDS" "$SPOOL"
  install -d -m 0755 "$MN_LOG"
  for node in $(node_names "$n"); do install -d -m 0755 "$SPOOL/$node"; done
  render_conf "$n" | write_file "$CONF" 0644 && changed=0
  if [ -n "$SROOT" ]; then
    # slurmd 24.11 refuses to start without a cgroup filesystem unless told not to use one
    # (22.05 does not know this value).
    printf 'CgroupPlugin=disabled\n' | write_file "$ETC/cgroup.conf" 0644 && changed=0
  else
    rm -f "$ETC/cgroup.conf"
  fi
  printf 'required %s config=%s prolog=%s epilog=%s\n' \
    "$BIN/aws_role.so" "$MAP" "$BIN/aws-role-prolog" "$BIN/aws-role-epilog" | write_file "$PLUGSTACK" 0644 && changed=0
  render_map | write_file "$MAP" 0644 || true
  # The nodes' own keys: root-only, never in any environment.
  printf '[default]\naws_access_key_id = AKIDMNNODE0000000000\naws_secret_access_key = mn-nodesecret-test\n' |
    write_file "$NODE_CREDS" 0600 || true
  {
    printf '127.0.0.1 localhost\n%s %s ctl\n' "$CTL_IP" "$(hostname -s)"
    for node in $(node_names "$n"); do printf '%s %s\n' "$(node_ip "$node")" "$node"; done
  } | write_file "$HOSTS" 0644 || true
  return $changed
}

# ---------------------------------------------------------------- daemons

munge_works() {
  timeout 5 "${ROOT_WRAP[@]}" munge -n --socket="$MUNGE_SOCKET" </dev/null 2>/dev/null |
    timeout 5 "${ROOT_WRAP[@]}" unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1
}

start_munged() {
  local pid ids as_munge
  pidfile_alive "$PIDS/munged.pid" "$MUNGED_PAT" >/dev/null && return 0
  # The munge user of the root munged runs in (the trixie root's has another uid).
  ids=$(root_ids munge)
  if [ -n "$SROOT" ]; then
    as_munge=(unshare --mount --propagation private -- bash "$HERE/multinode.sh" chroot-exec --user="$ids")
  else
    as_munge=(setpriv --reuid=munge --regid=munge --init-groups)
  fi
  install -d -m 0755 -o "${ids%:*}" -g "${ids#*:}" "$MUNGE_DIR"
  [ -s "$MUNGE_DIR/munge.key" ] || "${as_munge[@]}" /usr/sbin/mungekey --create --keyfile="$MUNGE_DIR/munge.key"
  # munged refuses a log file it does not own.
  [ -e "$MN_LOG/munged.log" ] || install -m 0640 -o "${ids%:*}" -g "${ids#*:}" /dev/null "$MN_LOG/munged.log"
  (cd / && exec setsid "${as_munge[@]}" \
    /usr/sbin/munged -F --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
    --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MN_LOG/munged.log" \
    --seed-file="$MUNGE_DIR/munged.seed" </dev/null >>"$MN_LOG/munged.stdout" 2>&1) &
  pid=$!
  echo "$pid" >"$PIDS/munged.pid"
  wait_for 5 munge_works || { tail -n 20 "$MN_LOG/munged.log" "$MN_LOG/munged.stdout" >&2 || true; die "munged does not work"; }
}

sts_answers() { http_answers "$STS_URL/moto-api/"; }

start_moto() {
  local pid
  pidfile_alive "$PIDS/moto.pid" "$MOTO_PAT" >/dev/null && return 0
  [ -x "$VENV/bin/moto_server" ] || die "$VENV/bin/moto_server missing; run tests/harness/deps.sh"
  sts_answers && die "something not started by multinode.sh already answers on $STS_URL"
  (cd / && exec setsid "$VENV/bin/moto_server" -H "$STS_IP" -p "$STS_PORT" \
    </dev/null >>"$MN_LOG/moto.log" 2>&1) &
  pid=$!
  echo "$pid" >"$PIDS/moto.pid"
  wait_for 30 sts_answers || { tail -n 20 "$MN_LOG/moto.log" >&2; die "STS emulator does not answer on $STS_URL"; }
  pid_matches "$pid" "$MOTO_PAT" || { tail -n 20 "$MN_LOG/moto.log" >&2; die "STS emulator exited; is $STS_IP:$STS_PORT taken?"; }
}

ctld_up() { msl scontrol ping 2>/dev/null | grep -q 'is UP'; }
ours_died() { [ -s "$1" ] && ! pidfile_alive "$1" "$2" >/dev/null; }
ctld_up_or_died() { ctld_up || ours_died "$PIDS/slurmctld.pid" "$CTLD_PAT"; }

start_slurmctld() {
  local pid ids
  pidfile_alive "$PIDS/slurmctld.pid" "$CTLD_PAT" >/dev/null && return 0
  ids=$(root_ids slurm)
  install -d -m 0755 -o "${ids%:*}" -g "${ids#*:}" "$STATE"
  [ -e "$MN_LOG/slurmctld.log" ] || install -m 0644 -o "${ids%:*}" -g "${ids#*:}" /dev/null "$MN_LOG/slurmctld.log"
  (cd / && exec setsid "${ROOT_WRAP[@]}" /usr/sbin/slurmctld -D -f "$CONF" </dev/null >>"$MN_LOG/slurmctld.stdout" 2>&1) &
  pid=$!
  echo "$pid" >"$PIDS/slurmctld.pid"
  wait_for "$UP_TIMEOUT" ctld_up_or_died || true
  if ! ctld_up; then
    tail -n 20 "$MN_LOG/slurmctld.log" "$MN_LOG/slurmctld.stdout" >&2 || true
    die "slurmctld does not answer 'scontrol ping' on port $CTLD_PORT"
  fi
}

# start_slurmd NODE: the node's slurmd, in the node's network namespace and in new UTS and
# mount namespaces; this script's `node-init` sets them up and execs slurmd.
start_slurmd() {
  local node=$1 pidf pid
  pidf=$(slurmd_pidf "$node")
  pidfile_alive "$pidf" "$(slurmd_pat "$node")" >/dev/null && return 0
  # nsenter and unshare exec (no --fork), setsid too (we are no group leader), bash execs
  # slurmd: $! is slurmd's own PID.
  (cd / && exec setsid nsenter --net="/run/netns/$(netns_of "$node")" \
    unshare --uts --mount --propagation private -- \
    bash "$HERE/multinode.sh" node-init "$node" </dev/null >>"$MN_LOG/slurmd-$node.stdout" 2>&1) &
  pid=$!
  echo "$pid" >"$pidf"
}

# Runs inside the node's new namespaces, as the process that becomes its slurmd.
cmd_node_init() {
  local node=$1
  [[ $node =~ ^n[0-9]+$ ]] || die "node-init: bad node name '$node'"
  hostname "$node"
  [ -z "$SROOT" ] || root_mounts
  # Credentials and spool live on tmpfs seen by this node only; they vanish with it.
  mount -t tmpfs -o mode=0711,size=16m "$PREFIX-$node-aws-role" "$SROOT$NODE_BASE"
  mount -t tmpfs -o mode=0755,size=64m "$PREFIX-$node-spool" "$SROOT$SPOOL/$node"
  # Names of the cluster's hosts, for tools in jobs (Slurm itself uses the addresses).
  mount --bind "$HOSTS" "$SROOT/etc/hosts"
  # The node's way to the STS emulator (see NODE_STS_URL), in this network namespace.
  (exec setsid socat "TCP-LISTEN:$STS_PORT,bind=127.0.0.1,fork,reuseaddr" "TCP:$STS_IP:$STS_PORT" \
    </dev/null >>"$MN_LOG/sts-forwarder-$node.log" 2>&1) &
  echo $! >"$(forwarder_pidf "$node")"
  # The node's credentials endpoint (the map's default, 127.0.0.1:941 of this network
  # namespace), as the package's service runs it: it reads this node's job directories and
  # asks this namespace's kernel whose a connecting socket is. In the root the slurmd runs in.
  local in_root=()
  [ -z "$SROOT" ] || in_root=(chroot "$SROOT")
  (exec setsid "${in_root[@]}" "$BIN/aws-role-endpoint" --config "$MAP" \
    </dev/null >>"$MN_LOG/endpoint-$node.log" 2>&1) &
  echo $! >"$(endpoint_pidf "$node")"
  if [ -n "$SROOT" ]; then
    exec chroot "$SROOT" /usr/sbin/slurmd -D -f "$CONF" -N "$node"
  fi
  exec /usr/sbin/slurmd -D -f "$CONF" -N "$node"
}

# In a new (private) mount namespace: what a program in the trixie root needs, mounted
# there. The cluster's own directories and /home keep their host paths inside the root,
# so configs, logs and job output mean the same on both sides.
root_mounts() {
  local d
  mount -t proc proc "$SROOT/proc"
  mount --rbind /sys "$SROOT/sys"
  mount --rbind /dev "$SROOT/dev"
  for d in "$MN_ROOT" "$MN_LOG" /home; do mount --bind "$d" "$SROOT$d"; done
}

# chroot-exec [--user=UID:GID] CMD...: CMD in the trixie root (run under `unshare --mount`).
cmd_chroot_exec() {
  local spec=()
  [ -n "$SROOT" ] || die "chroot-exec: this cluster runs the host's Slurm"
  if [[ ${1:-} == --user=* ]]; then
    spec=(--userspec="${1#--user=}")
    shift
  fi
  root_mounts
  exec chroot "${spec[@]}" "$SROOT" "$@"
}

# client CMD...: CMD as a client of this cluster.
cmd_client() {
  [ $# -gt 0 ] || die "usage: multinode.sh client CMD..."
  export SLURM_CONF=$CONF
  exec "${ROOT_WRAP[@]}" "$@"
}

# In parallel: each may take seconds.
stop_slurmds() {
  local f node waits=()
  for f in "$PIDS"/slurmd-n*.pid; do
    [ -e "$f" ] || continue
    node=$(basename "$f" .pid)
    node=${node#slurmd-}
    stop_pidfile "$f" "$(slurmd_pat "$node")" "slurmd $node" &
    waits+=($!)
  done
  # Each node's STS forwarder and credentials endpoint (one command line for all nodes).
  stop_each() {
    local prefix=$1 pat=$2 name=$3
    for f in "$PIDS/$prefix"-n*.pid; do
      [ -e "$f" ] || continue
      stop_pidfile "$f" "$pat" "$name $(basename "$f" .pid)" &
      waits+=($!)
    done
  }
  stop_each sts-forwarder "$(forwarder_pat)" "STS forwarder"
  stop_each endpoint "$ENDPOINT_PAT" "credentials endpoint"
  [ ${#waits[@]} = 0 ] || wait "${waits[@]}"
}

# ---------------------------------------------------------------- node state

node_states() { msl sinfo -h -N -o '%N %T' 2>/dev/null | sort -u; }

# all_idle N: every node responds and is idle.
all_idle() {
  local out
  out=$(node_states) || return 1
  [ "$(grep -c ' idle$' <<<"$out")" = "$1" ]
}

wait_nodes_idle() {
  local n=$1 node
  if ! wait_for "$UP_TIMEOUT" all_idle "$n"; then
    log "nodes not idle after ${UP_TIMEOUT}s:"
    node_states >&2 || true
    for node in $(node_names "$n"); do
      tail -n 10 "$MN_LOG/slurmd-$node.log" "$MN_LOG/slurmd-$node.stdout" >&2 2>/dev/null || true
    done
    tail -n 10 "$MN_LOG/slurmctld.log" >&2 || true
    return 1
  fi
}

# ---------------------------------------------------------------- commands

cmd_up() {
  local n=${1:-$(node_count)} t0 t_inst t_net t_ctld node changed=1 running=0 cur
  [ "$n" = 0 ] && n=2
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 200)); then die "node count must be 1..200"; fi
  t0=$(now_ms)
  require_root
  command -v slurmctld >/dev/null || die "slurm not installed; run tests/harness/deps.sh"
  cur=$(node_count)
  if [ "$cur" != 0 ] && [ "$cur" != "$n" ] && pidfile_alive "$PIDS/slurmctld.pid" "$CTLD_PAT" >/dev/null; then
    die "running with $cur nodes; 'multinode.sh down' first to change the node count"
  fi
  if [ -s "$SLURM_FILE" ] && [ "$(cat "$SLURM_FILE")" != "$SLURM_VER" ] &&
    pidfile_alive "$PIDS/slurmctld.pid" "$CTLD_PAT" >/dev/null; then
    die "running Slurm $(cat "$SLURM_FILE"); 'multinode.sh down' first to switch to $SLURM_VER"
  fi
  ensure_users
  if [ -n "$SROOT" ]; then
    bash "$HERE/trixie.sh" ensure >/dev/null
    # Mount points inside the root (its own directory tree, not the host's).
    install -d -m 0755 "$SROOT$MN_ROOT" "$SROOT$MN_LOG" "$SROOT$NODE_BASE"
  fi
  install_bin && changed=0
  write_config "$n" && changed=0
  echo "$n" >"$NODES_FILE"
  echo "$SLURM_VER" >"$SLURM_FILE"
  t_inst=$(now_ms)

  pidfile_alive "$PIDS/slurmctld.pid" "$CTLD_PAT" >/dev/null && running=1
  if [ "$running" = 1 ] && [ "$changed" = 0 ]; then
    # slurmd decides at start whether to run the SPANK job_prolog (from the plugin stack
    # it loaded), and PrologFlags needs a slurmctld restart: restart both.
    log "config or binaries changed; restarting slurmctld and the slurmds"
    stop_slurmds
    stop_pidfile "$PIDS/slurmctld.pid" "$CTLD_PAT" slurmctld
  elif [ "$running" = 0 ]; then
    # A fresh cluster: no job or node state from an earlier run, and fresh logs (job ids
    # start again at FirstJobId; the previous run's logs are kept in previous/).
    rm -rf "$STATE" "$MN_LOG/previous"
    # A new munge key too: the munge user may differ between the host and the trixie root.
    pidfile_alive "$PIDS/munged.pid" "$MUNGED_PAT" >/dev/null || rm -rf "$MUNGE_DIR"
    install -d -m 0755 "$MN_LOG/previous"
    find "$MN_LOG" -maxdepth 1 -type f -exec mv -f {} "$MN_LOG/previous/" \;
  fi

  # Each node mounts its own tmpfs on $NODE_BASE, so the directory must exist on the host
  # (only as a mount point: nothing of this cluster is ever written there). On a machine
  # where no aws-role prolog has run yet, create it as the prolog would.
  [ -d "$NODE_BASE" ] || install -d -m 0711 -o root -g root "$NODE_BASE"
  net_up "$n"
  t_net=$(now_ms)
  start_munged
  start_moto
  start_slurmctld
  t_ctld=$(now_ms)
  for node in $(node_names "$n"); do start_slurmd "$node"; done
  wait_nodes_idle "$n" || die "cluster not ready"
  echo "multinode up: $n nodes idle in $(elapsed_s "$t0") (build+install $((t_inst - t0)) ms, network $((t_net - t_inst)) ms, munged+sts+slurmctld $((t_ctld - t_net)) ms, slurmds $(( $(now_ms) - t_ctld )) ms; Slurm $SLURM_VER; PrologFlags=$([ "$ALLOC" = 1 ] && echo Alloc || echo none))"
}

cmd_down() {
  local t0 ids node n w1
  t0=$(now_ms)
  require_root
  n=$(node_count)
  if pidfile_alive "$PIDS/slurmctld.pid" "$CTLD_PAT" >/dev/null && ctld_up; then
    ids=$(msl squeue -h -o %i 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      msl scancel $ids 2>/dev/null || true
      # Let the epilogs run, so no job is left half-cleaned.
      wait_for 10 test -z "$(msl squeue -h -o %i 2>/dev/null)" || log "jobs still present after scancel; stopping anyway"
    fi
  fi
  stop_slurmds
  for node in $(node_names "$n") $(our_netns | sed "s/^$PREFIX-//"); do
    kill_ns_leftovers "$node"
  done
  stop_pidfile "$PIDS/slurmctld.pid" "$CTLD_PAT" slurmctld &
  w1=$!
  stop_pidfile "$PIDS/moto.pid" "$MOTO_PAT" "STS emulator" &
  wait "$w1" $!
  stop_pidfile "$PIDS/munged.pid" "$MUNGED_PAT" munged
  rm -f "$PIDS/slurmctld.sys.pid" "$MUNGE_DIR/munged.pid" "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock" "$NODES_FILE" "$SLURM_FILE"
  net_down
  echo "multinode down in $(elapsed_s "$t0")"
}

cmd_status() {
  local rc=0 node pid
  daemon() {
    local name=$1 pidf=$2 pat=$3
    if pid=$(pidfile_alive "$pidf" "$pat"); then echo "$name: running, pid $pid"; else echo "$name: stopped"; rc=3; fi
  }
  echo "Slurm $SLURM_VER${SROOT:+ (root $SROOT)}"
  daemon munged "$PIDS/munged.pid" "$MUNGED_PAT"
  daemon "sts emulator ($STS_URL)" "$PIDS/moto.pid" "$MOTO_PAT"
  daemon "slurmctld (:$CTLD_PORT)" "$PIDS/slurmctld.pid" "$CTLD_PAT"
  for node in $(node_names "$(node_count)"); do
    daemon "slurmd $node ($(node_ip "$node"), netns $(netns_of "$node"))" "$(slurmd_pidf "$node")" "$(slurmd_pat "$node")"
    daemon "credentials endpoint $node" "$(endpoint_pidf "$node")" "$ENDPOINT_PAT"
  done
  msl sinfo || rc=3
  msl squeue || rc=3
  return $rc
}

cmd_assert_healthy() {
  local n node show problems bad=()
  n=$(node_count)
  [ "$n" -ge 1 ] || die "the multi-node cluster is not up"
  pidfile_alive "$PIDS/slurmctld.pid" "$CTLD_PAT" >/dev/null || bad+=("slurmctld not running")
  for node in $(node_names "$n"); do
    pidfile_alive "$(slurmd_pidf "$node")" "$(slurmd_pat "$node")" >/dev/null || bad+=("$node: slurmd not running")
    pidfile_alive "$(endpoint_pidf "$node")" "$ENDPOINT_PAT" >/dev/null || bad+=("$node: credentials endpoint not running")
    if ! show=$(msl scontrol show node -o "$node" 2>/dev/null) || [ -z "$show" ]; then
      bad+=("$node: scontrol show node failed")
      continue
    fi
    mapfile -t problems < <(node_problems "$show")
    bad+=("${problems[@]/#/$node: }")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    log "unhealthy: ${bad[*]}"
    msl scontrol show node >&2 || true
    return 1
  fi
  echo "all $n nodes healthy: $(node_states | tr '\n' ' ')"
}

cmd_env() {
  cat <<EOF
MN_ROOT=$MN_ROOT
MN_CONF=$CONF
MN_MAP=$MAP
MN_BIN=$BIN
MN_LOG=$MN_LOG
MN_STS=$NODE_STS_URL
MN_STS_HOST_URL=$STS_URL
MN_STS_IP=$STS_IP
MN_PREFIX=$PREFIX
MN_NODES=$(node_count)
MN_NODE_BASE=$NODE_BASE
MN_SLURM=$SLURM_VER
MN_AWS=$([ -n "$SROOT" ] && echo /usr/bin/aws || echo "$VENV/bin/aws")
MN_PYTHON=$([ -n "$SROOT" ] && echo /usr/bin/python3 || echo "$VENV/bin/python3")
EOF
}

cmd_pid() {
  local node=${1:-} pid
  [[ $node =~ ^n[0-9]+$ ]] || die "usage: multinode.sh pid NODE"
  pid=$(pidfile_alive "$(slurmd_pidf "$node")" "$(slurmd_pat "$node")") || die "slurmd $node not running"
  echo "$pid"
}

case ${1:-} in
  up) cmd_up "${2:-}" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  assert-healthy) cmd_assert_healthy ;;
  env) cmd_env ;;
  pid) cmd_pid "${2:-}" ;;
  node-init) cmd_node_init "${2:-}" ;;
  chroot-exec) shift; cmd_chroot_exec "$@" ;;
  client) shift; cmd_client "$@" ;;
  *)
    echo "usage: $0 up [N]|down|status|assert-healthy|env|pid NODE|client CMD..." >&2
    exit 2
    ;;
esac
