#!/usr/bin/env bash
# bench-signins.sh - a load generator: whole sign-ins per second against one or two lyncd nodes
# sharing one PostgreSQL (or, with --sqlite, one node on its embedded SQLite).
#
#   scripts/bench-signins.sh [--nodes 1|2] [--count N] [--concurrency C] [--sqlite]
#
# Every sign-in is a full `lyncd signin` (release build) with no certificate cache and no TLS
# probes: discovery, Autodiscover, MEX, identity provider token (argon2 password check), web
# ticket, Certificate Provisioning (a fresh RSA key and CSR on the client, a certificate from
# the CA), SIP over TLS, the TLS-DSK handshake, signed REGISTER (stored before its 200 OK) and a
# signed refresh. Clients are spread over 8 users and, with two nodes, alternate between the
# nodes (each node's own DNS zone points every name at itself). Clients and servers share this
# machine's cores, so the figure is the whole system's, not a server's alone.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
nodes=1 count=40 concurrency=4 sqlite=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --sqlite) sqlite=1; shift ;;
    *) echo "usage: $0 [--nodes 1|2] [--count N] [--concurrency C] [--sqlite]" >&2; exit 64 ;;
  esac
done
[ "$sqlite" = 1 ] && [ "$nodes" != 1 ] && { echo "--sqlite runs one node" >&2; exit 64; }

cd "$repo"
cargo build --release --locked -q -p lyncd
lyncd=$repo/target/release/lyncd
work=$(mktemp -d /tmp/lyncd-bench.XXXXXX)
pids=()
started_pg=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ $started_pg = 1 ] && "$here/pg.sh" stop || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

if [ "$sqlite" = 1 ]; then
  db_args=(--data-dir "$work/data")
else
  if [ -z "${LYNCD_TEST_PG:-}" ]; then
    pgenv=$("$here/pg.sh" start); eval "$pgenv"; started_pg=1
  fi
  psql -q "$LYNCD_TEST_PG" -c "CREATE DATABASE lyncd_bench" >/dev/null
  db_url=${LYNCD_TEST_PG%/*}/lyncd_bench
  db_args=(--database "$db_url")
  if [ $started_pg = 0 ]; then
    trap 'cleanup; psql -q "$LYNCD_TEST_PG" -c "DROP DATABASE IF EXISTS lyncd_bench WITH (FORCE)" >/dev/null' EXIT
  fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for i in $(seq 1 8); do
  printf 'bench password %s\n' "$i" | "$lyncd" user add "user$i@contoso.com" --password-stdin "${db_args[@]}" >/dev/null
done

dns_ports=()
for n in $(seq 1 "$nodes"); do
  ip=127.0.0.$n
  https=$(free_port) http=$(free_port) sip=$(free_port) dns=$(free_port) admin=$(free_port)
  cat >"$work/node$n.toml" <<EOF
[node]
name = "bench-$n"
[names]
web = "lyncweb.contoso.com"
pool = "lyncfe.contoso.com"
idp = "login.contoso.com"
[listen]
https = "$ip:$https"
http = "$ip:$http"
sip_tls = "$ip:$sip"
admin = "$ip:$admin"
[dns]
listen = "$ip:$dns"
address = "$ip"
EOF
  RUST_LOG=warn "$lyncd" serve --config "$work/node$n.toml" "${db_args[@]}" 2>"$work/node$n.log" &
  pids+=($!)
  for _ in $(seq 1 300); do
    curl -fsS "http://$ip:$admin/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://$ip:$admin/readyz" >/dev/null || { cat "$work/node$n.log" >&2; exit 1; }
  dns_ports+=("$ip:$dns/$https,$http")
  [ -f "$work/ca.pem" ] || "$lyncd" ca export "${db_args[@]}" >"$work/ca.pem"
done

export lyncd work nodes
export dns_ports_list="${dns_ports[*]}"

start=$(date +%s.%N)
seq 0 $((count - 1)) | xargs -P "$concurrency" -I{} bash -c '
  read -r -a dns_ports <<<"$dns_ports_list"
  i={}; n=$(( i % nodes )); u=$(( i % 8 + 1 ))
  node=${dns_ports[$n]}
  printf "bench password %s\n" "$u" | "$lyncd" signin "user$u@contoso.com" --password-stdin \
    --dns "${node%/*}" --discover-ports "${node#*/}" --ca-file "$work/ca.pem" --no-cert-cache --no-checks --json \
    >"$work/out.$i.json" 2>"$work/err.$i" || true'
end=$(date +%s.%N)

python3 - "$work" "$count" "$start" "$end" "$nodes" "$concurrency" "$sqlite" <<'EOF'
import glob, json, sys
work, count, start, end, nodes, conc, sqlite = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7] == "1"
ok = 0
per_step = {}
for f in glob.glob(f"{work}/out.*.json"):
    try:
        d = json.load(open(f))
    except Exception:
        continue
    if d.get("ok"):
        ok += 1
        for s in d.get("steps", []):
            per_step.setdefault(s["step"], []).append(s.get("ms", 0))
wall = end - start
backend = "sqlite" if sqlite else "postgres"
print(f"{nodes} node(s), {backend}, {count} sign-ins, {conc} at a time: {ok} ok in {wall:.1f} s = {ok / wall:.2f} sign-ins/s")
for step, ms in sorted(per_step.items(), key=lambda kv: -sum(kv[1])):
    ms.sort()
    print(f"  {step:<16} median {ms[len(ms)//2]:>6} ms")
if ok != count:
    sys.exit(f"{count - ok} sign-ins failed")
EOF
