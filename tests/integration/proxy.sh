#!/usr/bin/env bash
# [sts] proxy against a real proxy server (Debian's tinyproxy), with the STS emulator
# reachable only through it: moto runs on the loopback of a network namespace this suite
# makes, plain http on 127.0.0.1:$HTTP_PORT there and https (a certificate from a CA made
# here, installed the distribution's way) as sts.aws-role.test, a name that only the
# namespace's /etc/hosts knows. tinyproxy listens on the namespace's veth address, the
# one thing of it the node reaches. So a call that did not go through the proxy fails, and
# the proxy's own log shows every call that did.
#
# Proves: the prolog (run as slurmd runs it) and a real Slurm job get credentials through
# the proxy, over http (absolute-form request) and https (CONNECT, the TLS verified against
# the installed CA); a proxy with Basic authentication, its password in no output; a dead
# proxy, a refusing proxy and one that wants a password fail the job with a message that
# names the proxy; no_proxy; the refresher honours HTTPS_PROXY from its environment, and
# the map's proxy wins over it; the prolog ignores proxy variables.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

NS=aws-role-px
VETH=arpx0
HOST_IP=10.213.77.1
NS_IP=10.213.77.2
HTTP_PORT=${AWS_ROLE_TEST_PROXY_STS_PORT:-5071}
TLS_PORT=5443
TLS_NAME=sts.aws-role.test
PROXY_PORT=3128
AUTH_PORT=3129
DEAD_PORT=3999
CA_FILE=/usr/local/share/ca-certificates/aws-role-test-proxy-ca.crt
WORK=$(mktemp -d /tmp/aws-role-px.XXXXXX)
chmod 0755 "$WORK"
BASE=/run/aws-role-px
ALICE_UID=$(id -u alice)
ALICE_GID=$(id -g alice)
SITE_MAP=/etc/aws-role/role-map.toml

cleanup() {
  local p
  for p in "$WORK"/*.pid; do
    [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null
  done
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null
  sleep 0.3
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "/etc/netns/$NS"
  if [ -e "$CA_FILE" ]; then
    rm -f "$CA_FILE"
    update-ca-certificates >/dev/null 2>&1
  fi
  [ -e "$WORK/site-map.saved" ] && mv -f "$WORK/site-map.saved" "$SITE_MAP"
  rm -rf "$WORK" "$BASE"
}
trap cleanup EXIT
rm -rf "$BASE"
command -v tinyproxy >/dev/null || { not_ok "tinyproxy is installed (tests/harness/deps.sh)"; finish; exit 1; }
if ss -ltn "( sport = :$HTTP_PORT )" | grep -q LISTEN; then
  not_ok "port $HTTP_PORT is free on the node's loopback (the proof that STS is reachable only through the proxy needs it)"
  finish
  exit 1
fi

# --- the network: a namespace with the emulator and the proxy ---------------------------
ip netns del "$NS" 2>/dev/null
ip link del "$VETH" 2>/dev/null
ip netns add "$NS"
ip link add "$VETH" type veth peer name eth0 netns "$NS"
ip addr add "$HOST_IP/30" dev "$VETH"
ip link set "$VETH" up
ip -n "$NS" addr add "$NS_IP/30" dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" link set lo up
# `ip netns exec` puts this file over /etc/hosts for what runs in the namespace.
install -d "/etc/netns/$NS"
printf '127.0.0.1 localhost\n127.0.0.1 %s\n' "$TLS_NAME" >"/etc/netns/$NS/hosts"
# ... and this over /etc/resolv.conf: a name the proxy looks up goes nowhere but here.
printf 'nameserver 127.0.0.1\n' >"/etc/netns/$NS/resolv.conf"
in_ns() { ip netns exec "$NS" "$@"; }
# Nothing in the namespace can reach the instance-metadata addresses (or anything else).
check "the namespace has no route to 169.254.169.254 or fd00:ec2::254" \
  bash -c "! ip -n $NS route get 169.254.169.254 >/dev/null 2>&1 && ! ip -n $NS -6 route get fd00:ec2::254 >/dev/null 2>&1"

# A CA of this run, and the emulator's certificate from it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=aws-role test proxy CA $$" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=$TLS_NAME" -keyout "$WORK/sts.key" -out "$WORK/sts.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$TLS_NAME" >"$WORK/san.ext"
openssl x509 -req -in "$WORK/sts.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days 2 -extfile "$WORK/san.ext" -out "$WORK/sts.crt" 2>/dev/null

# bg NAME CMD...: starts CMD in the namespace, its pid in $WORK/NAME.pid.
bg() {
  local name=$1
  shift
  (cd / && exec setsid ip netns exec "$NS" "$@" </dev/null >>"$WORK/$name.log" 2>&1) &
  echo $! >"$WORK/$name.pid"
}
bg moto-http "$VENV/bin/moto_server" -H 127.0.0.1 -p "$HTTP_PORT"
bg moto-tls "$VENV/bin/moto_server" -H 127.0.0.1 -p "$TLS_PORT" -c "$WORK/sts.crt" -k "$WORK/sts.key"

# tinyproxy CONF PORT [BASICAUTH-LINE]: one proxy on the namespace's veth address, for the
# node's address alone, logging each request and CONNECT.
tinyproxy_conf() {
  local name
  name=$(basename "$1" .conf)
  cat >"$1" <<CONF
User nobody
Group nogroup
Listen $NS_IP
Port $2
Timeout 30
LogFile "$WORK/px/$name.log"
LogLevel Connect
PidFile "$WORK/px/$name.pid"
MaxClients 50
Allow $HOST_IP
ConnectPort $TLS_PORT
ConnectPort 443
${3:-}
CONF
}
install -d -o nobody -g nogroup "$WORK/px"
tinyproxy_conf "$WORK/plain.conf" $PROXY_PORT
tinyproxy_conf "$WORK/auth.conf" $AUTH_PORT "BasicAuth svc-hpc pr0xy-Pass-$$"
PROXY_PASSWORD=pr0xy-Pass-$$
bg tinyproxy-plain tinyproxy -d -c "$WORK/plain.conf"
bg tinyproxy-auth tinyproxy -d -c "$WORK/auth.conf"
PLAIN_LOG=$WORK/px/plain.log
AUTH_LOG=$WORK/px/auth.log

up() { in_ns curl -s -o /dev/null --max-time 2 "$@"; }
wait_for 30 up "http://127.0.0.1:$HTTP_PORT/moto-api/" || { not_ok "the emulator answers in the namespace"; tail "$WORK"/moto-http.log; finish; exit 1; }
wait_for 30 up --cacert "$WORK/ca.crt" "https://$TLS_NAME:$TLS_PORT/moto-api/" || { not_ok "the TLS emulator answers in the namespace"; tail "$WORK"/moto-tls.log; finish; exit 1; }
listening() { in_ns ss -ltn | grep -q "$NS_IP:$1 "; }
if ! wait_for 10 listening $PROXY_PORT || ! wait_for 10 listening $AUTH_PORT; then
  not_ok "tinyproxy listens"
  tail "$WORK"/tinyproxy-*.log
  finish
  exit 1
fi
ok "the emulator (http and https) and two tinyproxy servers run in namespace $NS"

# The distribution's way to trust a CA: the file under /usr/local/share/ca-certificates,
# then update-ca-certificates (the bundle the binaries read, core/src/ca.rs).
install -m 0644 "$WORK/ca.crt" "$CA_FILE"
update-ca-certificates >/dev/null 2>&1
check "the test CA is in the system bundle" grep -q "$(sed -n 2p "$WORK/ca.crt")" /etc/ssl/certs/ca-certificates.crt

# What the node cannot do: reach the emulator, or even resolve its TLS name.
check "the node's loopback has no emulator on port $HTTP_PORT (connection refused)" \
  bash -c "! curl -s -o /dev/null --max-time 3 http://127.0.0.1:$HTTP_PORT/"
check "the node cannot resolve $TLS_NAME" bash -c "! getent hosts $TLS_NAME"

node_credentials "$WORK/node-credentials"
PLAIN=http://$NS_IP:$PROXY_PORT
# write_map FILE ENDPOINT PROXY-LINES [MIN_SESSION]
write_map() {
  {
    map_head "$2" 5s 2 "${3:-}${4:+
min_session = \"$4\"}"
    cat <<TOML

[refresh]
lead = "1h"
jitter = "0s"

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["alice"]
${4:+max_session = \"$4\"}
TOML
  } >"$1"
}
# prolog JOBID MAP [VAR=VALUE...]: as slurmd runs it; stderr in $WORK/err.JOBID, exit in $RC.
prolog() {
  local id=$1 map=$2
  shift 2
  (cd / && env -i "$@" SLURM_JOB_ID="$id" SLURM_JOB_UID="$ALICE_UID" SLURM_JOB_GID="$ALICE_GID" \
    SLURM_JOB_USER=alice SLURM_JOB_PARTITION=debug SLURM_JOB_RESTART_COUNT=0 \
    SLURM_JOB_END_TIME=$(($(date +%s) + 3600)) SPANK_AWS_ROLE=demo \
    "$BIN/aws-role-prolog" --config "$map" </dev/null 2>"$WORK/err.$id" >/dev/null)
  RC=$?
}
epilog() { (cd / && env -i SLURM_JOB_ID="$1" "$BIN/aws-role-epilog" --config "$2" </dev/null 2>/dev/null); }
failure_of() { cat "$BASE/$1/failure.json" 2>/dev/null; }
lines() { grep -c "$1" "$2" 2>/dev/null || true; }
# arn_via JOBID ENDPOINT: the job's identity, asked by the AWS CLI as alice through the proxy.
arn_via() {
  runuser -u alice -- env -i HOME=/home/alice PATH=/usr/bin:/bin AWS_CONFIG_FILE="$BASE/$1/config" \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null HTTP_PROXY="$PLAIN" HTTPS_PROXY="$PLAIN" \
    NO_PROXY=169.254.169.254,fd00:ec2::254 AWS_EC2_METADATA_DISABLED=true AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    timeout 60 "$VENV/bin/aws" --endpoint-url "$2" sts get-caller-identity --query Arn --output text 2>&1
}

# --- --check-config ---------------------------------------------------------------------
write_map "$WORK/auth.toml" "https://$TLS_NAME:$TLS_PORT" \
  "proxy = \"http://svc-hpc:$PROXY_PASSWORD@$NS_IP:$AUTH_PORT\""$'\n'
out=$("$BIN/aws-role-prolog" --check-config "$WORK/auth.toml" 2>&1)
check_contains "--check-config names the proxy, not its password" \
  "proxy: http://$NS_IP:$AUTH_PORT (user name and password: set, not shown) for every STS call" "$out"
check_not_contains "--check-config never prints the proxy's password" "$PROXY_PASSWORD" "$out"
printf '[sts]\nregion = "us-east-1"\nproxy = "socks5://svc-hpc:%s@%s:1080"\n[roles.x]\narn = "arn:aws:iam::123456789012:role/x"\n' \
  "$PROXY_PASSWORD" "$NS_IP" >"$WORK/bad.toml"
out=$("$BIN/aws-role-prolog" --check-config "$WORK/bad.toml" 2>&1)
check_contains "a socks proxy is refused at file:line:column" "$WORK/bad.toml:3:9: sts.proxy \"socks5://…@$NS_IP:1080\" is not a proxy URL" "$out"
check_not_contains "the refusal does not quote the password" "$PROXY_PASSWORD" "$out"

# --- plain http through the proxy --------------------------------------------------------
write_map "$WORK/http.toml" "http://127.0.0.1:$HTTP_PORT" "proxy = \"$PLAIN\""$'\n'
n0=$(lines "POST http://127.0.0.1:$HTTP_PORT/" "$PLAIN_LOG")
J=960001
prolog $J "$WORK/http.toml"
check_eq "prolog through the proxy (http) exits 0" 0 "$RC"
check "it wrote the job's credentials, no failure record" bash -c "test -s $BASE/$J/credentials.json && test ! -e $BASE/$J/failure.json"
check_eq "the proxy's log has the prolog's one AssumeRole, in absolute form" 1 $(( $(lines "POST http://127.0.0.1:$HTTP_PORT/" "$PLAIN_LOG") - n0 ))
check_contains "alice's AWS CLI, through the proxy, is the job's role session" "assumed-role/demo/slurm-$J-0" "$(arn_via $J "http://127.0.0.1:$HTTP_PORT")"
epilog $J "$WORK/http.toml"
# The same map without the proxy: straight to the node's own loopback, where nothing is.
write_map "$WORK/direct.toml" "http://127.0.0.1:$HTTP_PORT" ""
prolog 960002 "$WORK/direct.toml"
check_contains "without the proxy the emulator is not reachable" "connection refused" "$(failure_of 960002)"
epilog 960002 "$WORK/direct.toml"
# Proxy variables never steer the prolog (Slurm gives it none; a job must not).
n0=$(lines "POST http" "$PLAIN_LOG")
prolog 960003 "$WORK/direct.toml" HTTP_PROXY="$PLAIN" HTTPS_PROXY="$PLAIN" http_proxy="$PLAIN" ALL_PROXY="$PLAIN"
check_contains "the prolog ignores HTTP(S)_PROXY in its environment" "connection refused" "$(failure_of 960003)"
check_eq "... and the proxy saw nothing from it" 0 $(( $(lines "POST http" "$PLAIN_LOG") - n0 ))
epilog 960003 "$WORK/direct.toml"

# --- https through the proxy: CONNECT, TLS verified against the installed CA -------------
write_map "$WORK/tls.toml" "https://$TLS_NAME:$TLS_PORT" "proxy = \"$PLAIN\""$'\n'
n0=$(lines "CONNECT $TLS_NAME:$TLS_PORT" "$PLAIN_LOG")
J=960011
prolog $J "$WORK/tls.toml"
check_eq "prolog through the proxy (https) exits 0" 0 "$RC"
check "it wrote the job's credentials, no failure record" bash -c "test -s $BASE/$J/credentials.json && test ! -e $BASE/$J/failure.json"
check_eq "the proxy's log has one CONNECT to $TLS_NAME:$TLS_PORT" 1 $(( $(lines "CONNECT $TLS_NAME:$TLS_PORT" "$PLAIN_LOG") - n0 ))
check_contains "alice's AWS CLI (https through the proxy) is the job's role session" "assumed-role/demo/slurm-$J-0" "$(arn_via $J "https://$TLS_NAME:$TLS_PORT")"
exp=$("$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["Expiration"])' "$BASE/$J/credentials.json")
secs=$(( $(date -d "$exp" +%s) - $(date +%s) ))
check "the session lasts the role's 1-h cap (the job's 60 min + margin is longer): ${secs}s" test "$secs" -ge 3500 -a "$secs" -le 3600
epilog $J "$WORK/tls.toml"
# The CA removed: the same call must fail on the certificate, proving it was checked.
rm -f "$CA_FILE"; update-ca-certificates >/dev/null 2>&1
prolog 960012 "$WORK/tls.toml"
check_contains "without the test CA the TLS connection is refused (the certificate is verified)" "certificate" "$(failure_of 960012)"
epilog 960012 "$WORK/tls.toml"
install -m 0644 "$WORK/ca.crt" "$CA_FILE"; update-ca-certificates >/dev/null 2>&1

# --- a proxy with a password ------------------------------------------------------------
n0=$(lines "CONNECT $TLS_NAME:$TLS_PORT" "$AUTH_LOG")
J=960021
prolog $J "$WORK/auth.toml"
check_eq "prolog through the password proxy exits 0" 0 "$RC"
check "it wrote the job's credentials" test -s "$BASE/$J/credentials.json"
check_eq "the password proxy's log has the CONNECT" 1 $(( $(lines "CONNECT $TLS_NAME:$TLS_PORT" "$AUTH_LOG") - n0 ))
check_not_contains "the password is not on the prolog's stderr" "$PROXY_PASSWORD" "$(cat "$WORK/err.$J")"
epilog $J "$WORK/auth.toml"
write_map "$WORK/noauth.toml" "https://$TLS_NAME:$TLS_PORT" "proxy = \"http://$NS_IP:$AUTH_PORT\""$'\n'
prolog 960022 "$WORK/noauth.toml"
f=$(failure_of 960022)
check_contains "without the password: the job fails naming the proxy and the 407" \
  "through the proxy http://$NS_IP:$AUTH_PORT: STS could not be reached: the proxy wants a user name and password (407)" "$f"
epilog 960022 "$WORK/noauth.toml"
write_map "$WORK/wrongpw.toml" "https://$TLS_NAME:$TLS_PORT" "proxy = \"http://svc-hpc:not-$PROXY_PASSWORD@$NS_IP:$AUTH_PORT\""$'\n'
prolog 960023 "$WORK/wrongpw.toml"
f=$(failure_of 960023)
check_contains "a wrong password: the job fails naming the proxy" "through the proxy http://$NS_IP:$AUTH_PORT:" "$f"
check_not_contains "... and its record holds neither password" "$PROXY_PASSWORD" "$f$(cat "$WORK/err.960023")"
epilog 960023 "$WORK/wrongpw.toml"

# --- proxies that fail -----------------------------------------------------------------
write_map "$WORK/dead.toml" "https://$TLS_NAME:$TLS_PORT" "proxy = \"http://$NS_IP:$DEAD_PORT\""$'\n'
t0=$(now_ms)
prolog 960031 "$WORK/dead.toml"
t=$(( $(now_ms) - t0 ))
check_eq "a dead proxy: the prolog still exits 0 (the node is not drained)" 0 "$RC"
check_contains "a dead proxy: the job's failure names the proxy" \
  "through the proxy http://$NS_IP:$DEAD_PORT: STS could not be reached: connection refused" "$(failure_of 960031)"
check "... within the 5-s deadline (${t} ms)" test "$t" -lt 6500
epilog 960031 "$WORK/dead.toml"
# A CONNECT the proxy refuses (its ConnectPort rules allow 443 and $TLS_PORT only).
write_map "$WORK/port.toml" "https://$TLS_NAME:8443" "proxy = \"$PLAIN\""$'\n'
prolog 960032 "$WORK/port.toml"
check_contains "a refused CONNECT: the job's failure names the proxy and says it refused" \
  "through the proxy $PLAIN: STS could not be reached: the proxy refused to open a tunnel to it" "$(failure_of 960032)"
epilog 960032 "$WORK/port.toml"
# no_proxy: the host of the endpoint bypasses the (dead) proxy, and fails as direct calls do.
write_map "$WORK/bypass.toml" "http://127.0.0.1:$HTTP_PORT" "proxy = \"http://$NS_IP:$DEAD_PORT\""$'\n'"no_proxy = [\"127.0.0.1\"]"$'\n'
prolog 960033 "$WORK/bypass.toml"
f=$(failure_of 960033)
check_contains "no_proxy: the call goes straight to the endpoint" "STS could not be reached: connection refused" "$f"
check_not_contains "... and not through the proxy" "through the proxy" "$f"
epilog 960033 "$WORK/bypass.toml"

# --- FIPS and dual-stack: the host the SDK's rules chose, on the wire -------------------
# The proxy cannot reach AWS (its namespace has no route out, its DNS is its own loopback),
# so it refuses the tunnel; its log shows which host the prolog asked for.
fips_map() {
  cat <<TOML
[sts]
region = "us-east-1"
credentials_file = "$WORK/node-credentials"
timeout = "5s"
max_attempts = 1
proxy = "$PLAIN"
$1
[node]
base_dir = "$BASE"
credential_helper = "$BIN/aws-role-credentials"
[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["alice"]
TOML
}
for sw in "use_fips = true|sts-fips.us-east-1.amazonaws.com" "use_dualstack = true|sts.us-east-1.api.aws" \
  "use_fips = true"$'\n'"use_dualstack = true|sts-fips.us-east-1.api.aws"; do
  fips_map "${sw%|*}" >"$WORK/fips.toml"
  host=${sw#*|}
  out=$("$BIN/aws-role-prolog" --check-config "$WORK/fips.toml" 2>&1)
  check_contains "--check-config: ${sw%|*} resolves to https://$host" "sts endpoint: https://$host" "$out"
  n0=$(lines "CONNECT $host:443" "$PLAIN_LOG")
  prolog 960051 "$WORK/fips.toml"
  check_eq "the prolog's CONNECT names $host" 1 $(( $(lines "CONNECT $host:443" "$PLAIN_LOG") - n0 ))
  check_contains "... and the job's failure names the proxy" "through the proxy $PLAIN:" "$(failure_of 960051)"
  epilog 960051 "$WORK/fips.toml"
done

# --- the refresher: HTTPS_PROXY from its environment; the map's proxy wins ---------------
# 20-s sessions (loopback endpoint, as the proxy sees it): due for a refresh after 10 s.
refresh_once() {
  OUT=$(cd / && env -i "$@" "$BIN/aws-role-refresher" --config "$WORK/rf.toml" --once 2>&1)
  RC=$?
}
write_map "$WORK/rf.toml" "http://127.0.0.1:$HTTP_PORT" "proxy = \"$PLAIN\""$'\n' 20s
J=960041
prolog $J "$WORK/rf.toml"
check "the refresher's job got credentials through the proxy" test -s "$BASE/$J/credentials.json"
write_map "$WORK/rf.toml" "http://127.0.0.1:$HTTP_PORT" "" 20s
sleep 11
n0=$(lines "POST http://127.0.0.1:$HTTP_PORT/" "$PLAIN_LOG")
refresh_once HTTP_PROXY="$PLAIN"
check_eq "map without a proxy: the refresher uses HTTP_PROXY from its environment" "0 1 live, 1 refreshed, 0 failed, 0 removed" "$RC $(tail -n1 <<<"$OUT")"
check_eq "... the proxy's log has its AssumeRole" 1 $(( $(lines "POST http://127.0.0.1:$HTTP_PORT/" "$PLAIN_LOG") - n0 ))
write_map "$WORK/rf.toml" "http://127.0.0.1:$HTTP_PORT" "proxy = \"$PLAIN\""$'\n' 20s
sleep 11
refresh_once HTTP_PROXY="http://$NS_IP:$DEAD_PORT"
check_eq "the map's proxy wins over a (dead) HTTP_PROXY" "0 1 live, 1 refreshed, 0 failed, 0 removed" "$RC $(tail -n1 <<<"$OUT")"
write_map "$WORK/rf.toml" "http://127.0.0.1:$HTTP_PORT" "" 20s
sleep 11
refresh_once HTTP_PROXY="http://svc-hpc:$PROXY_PASSWORD@$NS_IP:$DEAD_PORT"
check_eq "a dead proxy from the environment: the refresh fails" 1 "$RC"
check_contains "... its log names that proxy" "through the proxy http://$NS_IP:$DEAD_PORT: STS could not be reached: connection refused" "$OUT"
check_not_contains "... and not the password in its URL" "$PROXY_PASSWORD" "$OUT"
epilog $J "$WORK/rf.toml"

# --- a real Slurm job, its prolog through the proxy -------------------------------------
if sinfo -h -o %T 2>/dev/null | grep -q idle; then
  [ -e "$SITE_MAP" ] && cp -p "$SITE_MAP" "$WORK/site-map.saved"
  STS="https://$TLS_NAME:$TLS_PORT"
  AWS_ROLE_SITE_PROXY=$PLAIN bash "$REPO/tests/harness/site.sh" write "$STS"
  . "$REPO/tests/harness/jobs.sh"
  install -d -o alice -m 0755 "$WORK/out"
  jobs_init alice "$WORK/out"
  n0=$(lines "CONNECT $TLS_NAME:$TLS_PORT" "$PLAIN_LOG")
  jid=$(submit alice --aws-role=demo -t 5 <<JOB
HTTPS_PROXY=$PLAIN NO_PROXY=169.254.169.254,fd00:ec2::254 AWS_EC2_METADATA_DISABLED=true AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\
  "\$VENV/bin/aws" --endpoint-url "\$STS" sts get-caller-identity --query Arn --output text
JOB
)
  check "sbatch --aws-role=demo took the job" test -n "$jid"
  for _ in $(seq 150); do
    case $(state_of "$jid") in COMPLETED | FAILED | CANCELLED | TIMEOUT) break ;; esac
    sleep 0.2
  done
  check_eq "the job completed" COMPLETED "$(state_of "$jid")"
  check_contains "the job's own output: the role session its prolog got through the proxy" "assumed-role/demo/slurm-$jid-0" "$(job_out "$jid")"
  n=$(( $(lines "CONNECT $TLS_NAME:$TLS_PORT" "$PLAIN_LOG") - n0 ))
  check "the proxy's log has the job's CONNECTs (prolog and the job's CLI): $n" test "$n" -ge 2
  [ -e "$WORK/site-map.saved" ] && mv -f "$WORK/site-map.saved" "$SITE_MAP"
  check "the node is not drained" bash -c "sinfo -h -o %T | grep -qv drain"
else
  not_ok "the single-node cluster is up (tests/harness/cluster.sh up, install.sh)"
fi

echo "--- the proxy's access log for the Slurm job (tinyproxy, $PLAIN_LOG):"
grep -E "Request \(file descriptor" "$PLAIN_LOG" | tail -n 2
finish
