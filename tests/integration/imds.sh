#!/usr/bin/env bash
# aws-role-imds-lockdown and `aws-role-prolog --check-node`, in a network namespace of the
# suite's own with a stand-in IMDS (an HTTP server on 169.254.169.254:80, and on
# [fd00:ec2::254]:80 when IPv6 works): before the lock-down `nobody` connects and
# --check-node warns; after it `nobody` is refused at once, root still connects and
# --check-node is all OK; after remove `nobody` connects again. For the nftables backend
# and the iptables fallback. Needs no cluster: Slurm is a fake slurm.conf, plugstack and
# scontrol, and the host's own firewall rules are never touched.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

# The installed copy (the package's), else the repository's.
LOCKDOWN=${AWS_ROLE_IMDS_LOCKDOWN:-$BIN/aws-role-imds-lockdown}
[ -x "$LOCKDOWN" ] || LOCKDOWN=$REPO/packaging/imds/aws-role-imds-lockdown
NS=aws-role-imds-test-$$
WORK=$(mktemp -d /tmp/aws-role-imds.XXXXXX)
chmod 0755 "$WORK"
SERVERS=()
cleanup() {
  local p
  for p in "${SERVERS[@]}"; do kill "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  umount "$WORK/base" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

for b in aws-role-prolog aws-role-epilog aws-role-credentials; do
  [ -x "$BIN/$b" ] || { echo "$T_NAME: $BIN/$b missing (set AWS_ROLE_BIN_DIR)" >&2; exit 1; }
done
for c in nft iptables curl setpriv; do
  command -v "$c" >/dev/null || { echo "$T_NAME: needs $c (tests/harness/deps.sh)" >&2; exit 1; }
done
host_rules() { nft list ruleset 2>&1 | sha256sum; }
host_before=$(host_rules)

in_ns() { ip netns exec "$NS" "$@"; }
ip netns add "$NS" || exit 1
in_ns ip link set lo up
in_ns ip addr add 169.254.169.254/32 dev lo
V6=0
if in_ns ip -6 addr add fd00:ec2::254/128 dev lo nodad 2>/dev/null; then V6=1; fi

# The stand-in IMDS hands out an instance role over IMDSv2 (its log shows the token PUT);
# moto on the namespace's own loopback is the STS that --check-node asks who the node is.
binds=(--bind 169.254.169.254)
[ "$V6" = 1 ] && binds+=(--bind fd00:ec2::254)
ip netns exec "$NS" /usr/bin/python3 "$REPO/tests/harness/imds-emulator.py" "${binds[@]}" --log "$WORK/imds.log" 2>"$WORK/imds.err" &
SERVERS+=($!)
ip netns exec "$NS" "$VENV/bin/moto_server" -H 127.0.0.1 -p 5072 >"$WORK/moto.log" 2>&1 &
SERVERS+=($!)
for _ in $(seq 100); do
  in_ns curl -sf -o /dev/null http://127.0.0.1:5072/moto-api/ &&
    in_ns curl -sf -o /dev/null http://169.254.169.254/latest/meta-data/placement/region && break
  sleep 0.1
done
: >"$WORK/imds.log"

NOBODY_UID=$(id -u nobody)
# get URL [AS_UID]: prints "<curl exit status> <milliseconds>". A hang shows as >= 5000 ms.
get() {
  local url=$1 t0 rc as=()
  [ $# -ge 2 ] && as=(setpriv --reuid="$2" --regid="$(id -g "$2")" --clear-groups)
  t0=$(date +%s%3N)
  in_ns "${as[@]}" curl -sS -o /dev/null --connect-timeout 5 -m 5 "$url" 2>/dev/null
  rc=$?
  echo "$rc $(($(date +%s%3N) - t0))"
}
URL4=http://169.254.169.254/latest/meta-data/instance-id
URL6='http://[fd00:ec2::254]/latest/meta-data/instance-id'
for _ in $(seq 50); do
  [ "$(get $URL4 | cut -d' ' -f1)" = 0 ] && { [ "$V6" = 0 ] || [ "$(get "$URL6" | cut -d' ' -f1)" = 0 ]; } && break
  sleep 0.1
done

# A valid map, base dir and binaries, and a Slurm that runs the plugin with PrologFlags=Alloc:
# everything --check-node looks at is OK except what the lock-down changes.
mkdir -m 0711 "$WORK/base"
# A tmpfs of its own, as aws-role-tmpfs.service makes /run/aws-role.
mount -t tmpfs -o size=1m,mode=0711 aws-role-imds "$WORK/base"
mkdir -p "$WORK/slurm/plugstack.conf.d"
cat >"$WORK/map.toml" <<TOML
[sts]
region = "us-east-1"
endpoint = "http://127.0.0.1:5072"
node_identity = "instance-profile"

[node]
base_dir = "$WORK/base"
credential_helper = "$BIN/aws-role-credentials"

[slurm]
scontrol = "$WORK/slurm/scontrol"

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"

[partitions.debug]
default_role = "demo"
TOML
echo "ClusterName=imds-test" >"$WORK/slurm/slurm.conf"
echo "include $WORK/slurm/plugstack.conf.d/*.conf" >"$WORK/slurm/plugstack.conf"
echo "required /usr/lib/slurm/aws_role.so config=$WORK/map.toml prolog=$BIN/aws-role-prolog epilog=$BIN/aws-role-epilog" \
  >"$WORK/slurm/plugstack.conf.d/aws-role.conf"
# fake_scontrol FLAGS | --fail: what `scontrol show config` prints.
fake_scontrol() {
  if [ "$1" = --fail ]; then
    printf '#!/bin/sh\necho "slurm_load_ctl_conf error: Unable to contact slurm controller (connect failure)" >&2\nexit 1\n'
  else
    printf '#!/bin/sh\nprintf "Configuration data as of 2026-11-22T00:01:32\\nPrologEpilogTimeout     = 65534\\nPrologFlags             = %s\\n"\n' "$1"
  fi >"$WORK/slurm/scontrol.new"
  chmod 0755 "$WORK/slurm/scontrol.new"
  mv -f "$WORK/slurm/scontrol.new" "$WORK/slurm/scontrol"
}
fake_scontrol Alloc,Contain

# check_node: output in $OUT, exit status in $RC.
check_node() {
  OUT=$(cd / && in_ns env SLURM_CONF="$WORK/slurm/slurm.conf" "$BIN/aws-role-prolog" --check-node --config "$WORK/map.toml" 2>&1)
  RC=$?
}
line() { grep -- "$1" <<<"$OUT"; }
count() { grep -c -- "$1" <<<"$OUT"; }
lockdown() { in_ns "$LOCKDOWN" "$@" >"$WORK/lockdown.out" 2>&1; }

# --- before the lock-down ------------------------------------------------------------------
read -r rc ms < <(get $URL4 "$NOBODY_UID")
check_eq "before: nobody reaches IMDS (IPv4)" 0 "$rc"
if [ "$V6" = 1 ]; then
  read -r rc ms < <(get "$URL6" "$NOBODY_UID")
  check_eq "before: nobody reaches IMDS (IPv6)" 0 "$rc"
fi
lockdown status
check_eq "before: status exits 3" 3 $?
check_node
check_eq "before: --check-node exits 2 (a failure)" 2 "$RC"
check_contains "before: --check-node fails: nobody reaches IMDS" \
  "FAIL  IMDS from an unprivileged user: user nobody (uid $NOBODY_UID) connected to 169.254.169.254:80" "$OUT"
check_contains "before: the failure points at the lock-down and the map's key" \
  "see aws-role-imds-lockdown, or set [node] jobs_may_reach_imds = true if this is intended" "$(line 'IMDS from an unprivileged')"
check_eq "before: that is the only failure, and nothing warns" "0 1" "$(count '^WARN') $(count '^FAIL')"
# A site that means jobs to reach IMDS says so in the map: then it is information.
sed -i 's/^credential_helper = .*/&\njobs_may_reach_imds = true/' "$WORK/map.toml"
check_node
check_eq "jobs_may_reach_imds = true: --check-node exits 0" 0 "$RC"
check_contains "... and says IMDS is reachable" \
  "INFO  IMDS from an unprivileged user: user nobody (uid $NOBODY_UID) connected to 169.254.169.254:80" "$OUT"
check_contains "... as the map says is intended" \
  "could use the node's instance role, as [node] jobs_may_reach_imds = true says the site intends" "$(line 'IMDS from an unprivileged')"
sed -i '/^jobs_may_reach_imds = true$/d' "$WORK/map.toml"
check_node
check_contains "before: root's reach is information" "INFO  IMDS from root: 169.254.169.254:80 connected" "$OUT"
check_contains "--check-node: the instance profile works (a real GetCallerIdentity)" \
  "OK    node identity: the instance profile, over IMDSv2 at http://169.254.169.254: works, STS says this node is arn:aws:" "$OUT"
check_contains "... and the 1-h cap of role chaining is said" "INFO  role chaining: the node is a role's session" "$OUT"
check_eq "IMDSv2: the token was asked for first" "PUT /latest/api/token" "$(grep -m1 -oE '^(PUT /latest/api/token|GET /latest/meta-data/iam)' "$WORK/imds.log")"
check_contains "... then the role name and its credentials" \
  "GET /latest/meta-data/iam/security-credentials/aws-role-test-node-role" "$(cat "$WORK/imds.log")"
out=$(cd / && in_ns "$BIN/aws-role-prolog" --check-config "$WORK/map.toml" 2>&1)
check_contains "--check-config names the source and the cap" \
  "node identity: the instance profile, over IMDSv2 at http://169.254.169.254; that is role chaining, so STS gives each job a session of at most 1 h" "$out"
printf '#   %s\n' "${OUT//$'\n'/$'\n'#   }"

# locked_down BACKEND: the checks that hold whichever backend installed the rule.
locked_down() {
  local b=$1 rc ms
  read -r rc ms < <(get $URL4 "$NOBODY_UID")
  check_eq "$b: nobody cannot connect (IPv4; curl: couldn't connect)" 7 "$rc"
  check "$b: nobody is refused at once, not left to time out ($ms ms < 2000)" test "$ms" -lt 2000
  read -r rc ms < <(get $URL4)
  check_eq "$b: root still reaches IMDS (IPv4)" 0 "$rc"
  if [ "$V6" = 1 ]; then
    read -r rc ms < <(get "$URL6" "$NOBODY_UID")
    check_eq "$b: nobody cannot connect (IPv6)" 7 "$rc"
    check "$b: nobody is refused at once (IPv6, $ms ms < 2000)" test "$ms" -lt 2000
    read -r rc ms < <(get "$URL6")
    check_eq "$b: root still reaches IMDS (IPv6)" 0 "$rc"
  fi
  lockdown status
  check_eq "$b: status exits 0" 0 $?
  check_node
  check_eq "$b: --check-node exits 0" 0 "$RC"
  check_contains "$b: --check-node finds IMDS refused to nobody" \
    "OK    IMDS from an unprivileged user: user nobody (uid $NOBODY_UID) cannot connect: 169.254.169.254:80 refused" "$OUT"
}

# unlocked BACKEND: after remove.
unlocked() {
  local b=$1 rc ms
  lockdown remove
  check_eq "$b: remove exits 0" 0 $?
  read -r rc ms < <(get $URL4 "$NOBODY_UID")
  check_eq "$b: after remove nobody reaches IMDS again" 0 "$rc"
  lockdown status
  check_eq "$b: after remove status exits 3" 3 $?
  check_contains "$b: status says so" "not applied" "$(cat "$WORK/lockdown.out")"
}

# --- nftables ---------------------------------------------------------------------------------
lockdown apply
check_eq "nft: apply exits 0" 0 $?
locked_down nft
printf '#   %s\n' "${OUT//$'\n'/$'\n'#   }"
lockdown apply
check_eq "nft: apply again exits 0" 0 $?
check_eq "nft: two applies leave one table" 1 "$(in_ns nft list tables | grep -c 'inet aws_role_imds')"
check_eq "nft: ... with its four rejects (tcp and other, IPv4 and IPv6)" 4 "$(in_ns nft list table inet aws_role_imds | grep -c reject)"
check_eq "nft: nothing else was added to the namespace" "table inet aws_role_imds" "$(in_ns nft list tables)"

# An allow-listed user reaches IMDS; nobody still does not.
lockdown apply --allow-user daemon
read -r rc _ < <(get $URL4 "$(id -u daemon)")
check_eq "nft: --allow-user daemon lets daemon reach IMDS" 0 "$rc"
read -r rc _ < <(get $URL4 "$NOBODY_UID")
check_eq "nft: ... and nobody still cannot" 7 "$rc"
lockdown apply

# The Slurm side, end to end through the fake scontrol, now that IMDS is OK.
fake_scontrol '(null)'
check_node
check_eq "PrologFlags=(null): --check-node exits 1" 1 "$RC"
check_contains "PrologFlags=(null): says what goes wrong without Alloc" \
  "WARN  Slurm PrologFlags: PrologFlags=(null): without Alloc (or Contain) the prolog runs on a node only when the job's first step starts there" "$OUT"
fake_scontrol --fail
check_node
check_contains "an unreachable slurmctld is a warning with scontrol's reason" \
  "WARN  Slurm PrologFlags: cannot read PrologFlags: $WORK/slurm/scontrol exited with exit status: 1: slurm_load_ctl_conf error: Unable to contact slurm controller" "$OUT"
fake_scontrol Alloc,Contain

unlocked nft
check_eq "nft: remove leaves no table behind" "" "$(in_ns nft list tables)"

# --- iptables fallback -----------------------------------------------------------------------
export AWS_ROLE_IMDS_BACKEND=iptables
lockdown apply
check_eq "iptables: apply exits 0" 0 $?
locked_down iptables
lockdown apply
check_eq "iptables: two applies leave one OUTPUT jump" 1 "$(in_ns iptables -S OUTPUT | grep -c -- '-j AWS_ROLE_IMDS')"
check_eq "iptables: ... and one chain of three rules" 3 "$(in_ns iptables -S AWS_ROLE_IMDS | grep -c -- '^-A')"
if [ "$V6" = 1 ]; then
  check_eq "iptables: one ip6tables OUTPUT jump" 1 "$(in_ns ip6tables -S OUTPUT | grep -c -- '-j AWS_ROLE_IMDS')"
fi
check "iptables: no nftables table of ours" test -z "$(in_ns nft list tables | grep aws_role_imds)"
unlocked iptables
check "iptables: remove deletes the chain" test -z "$(in_ns iptables -S | grep AWS_ROLE_IMDS)"

# Switching backends leaves only the new one.
lockdown apply
unset AWS_ROLE_IMDS_BACKEND
lockdown apply
check_eq "switching to nft removes the iptables chain" "" "$(in_ns iptables -S | grep AWS_ROLE_IMDS)"
check_eq "... and installs the table" 1 "$(in_ns nft list tables | grep -c aws_role_imds)"
lockdown remove

# --- the hop limit ---------------------------------------------------------------------------
# As on EC2: IMDS answers the token PUT with an IP TTL of the instance's hop limit (1 by
# default), so the node itself gets its token and a container behind the node (one routed
# hop further) does not. Three namespaces of the suite's own, on addresses that exist only
# in them: IMDS (the emulator, --hop-limit 1), the node (a router, with moto on its
# loopback), and a container routed through the node.
NSI=$NS-i NSN=$NS-n NSC=$NS-c
hop_cleanup() { ip netns del "$NSI" 2>/dev/null; ip netns del "$NSN" 2>/dev/null; ip netns del "$NSC" 2>/dev/null; }
trap 'hop_cleanup; cleanup' EXIT
for n in "$NSI" "$NSN" "$NSC"; do ip netns add "$n" && ip -n "$n" link set lo up; done
ip -n "$NSN" link add n0 type veth peer name i0 netns "$NSI"
ip -n "$NSN" link add n1 type veth peer name c0 netns "$NSC"
ip -n "$NSI" addr add 10.254.0.1/30 dev i0 && ip -n "$NSI" link set i0 up
ip -n "$NSI" addr add 169.254.169.254/32 dev lo
ip -n "$NSI" route add 10.254.1.0/30 via 10.254.0.2
ip -n "$NSN" addr add 10.254.0.2/30 dev n0 && ip -n "$NSN" link set n0 up
ip -n "$NSN" addr add 10.254.1.1/30 dev n1 && ip -n "$NSN" link set n1 up
ip -n "$NSN" route add 169.254.169.254/32 via 10.254.0.1
ip netns exec "$NSN" sysctl -qw net.ipv4.ip_forward=1
ip -n "$NSC" addr add 10.254.1.2/30 dev c0 && ip -n "$NSC" link set c0 up
ip -n "$NSC" route add default via 10.254.1.1
ip netns exec "$NSI" /usr/bin/python3 "$REPO/tests/harness/imds-emulator.py" --bind 169.254.169.254 \
  --hop-limit 1 --log "$WORK/hop.log" 2>"$WORK/hop.err" &
SERVERS+=($!)
ip netns exec "$NSN" "$VENV/bin/moto_server" -H 127.0.0.1 -p 5072 >"$WORK/moto-hop.log" 2>&1 &
SERVERS+=($!)
for _ in $(seq 100); do
  ip netns exec "$NSN" curl -sf -o /dev/null http://127.0.0.1:5072/moto-api/ &&
    ip netns exec "$NSN" curl -sf -o /dev/null http://169.254.169.254/latest/meta-data/placement/region && break
  sleep 0.1
done
token() { # token NAMESPACE: curl's exit status of an IMDSv2 token PUT from there (3 s)
  ip netns exec "$1" curl -sS -o /dev/null -m 3 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" \
    http://169.254.169.254/latest/api/token 2>/dev/null
  echo $?
}
check_eq "hop limit 1: the node gets a token" 0 "$(token "$NSN")"
check_eq "hop limit 1: a container one hop behind the node does not (curl times out, 28)" 28 "$(token "$NSC")"
check_contains "... though IMDS did answer it: the answer died on the way" "PUT /latest/api/token from 10.254.1.2" "$(cat "$WORK/hop.log")"
hop_node() { # hop_node NAMESPACE: --check-node's node identity lines from there
  (cd / && ip netns exec "$1" env SLURM_CONF="$WORK/slurm/slurm.conf" "$BIN/aws-role-prolog" --check-node --config "$WORK/map.toml" 2>&1) |
    grep -E '^[A-Z]+ +node identity:'
}
check_contains "hop limit 1: --check-node on the node: the instance profile works" \
  "OK    node identity: the instance profile, over IMDSv2 at http://169.254.169.254: works, STS says this node is arn:aws:" "$(hop_node "$NSN")"
t0=$(date +%s)
out=$(hop_node "$NSC")
took=$(($(date +%s) - t0))
check_contains "... and one hop further it FAILs, naming the instance profile" \
  "FAIL  node identity: the instance profile, over IMDSv2 at http://169.254.169.254: " "$out"
check "... within the map's timeout, not hanging (${took} s)" test "$took" -le 15

check_eq "the host's own rule set is untouched" "$host_before" "$(host_rules)"
finish
