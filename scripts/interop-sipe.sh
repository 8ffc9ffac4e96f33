#!/usr/bin/env bash
# interop-sipe.sh - sign the real pidgin-sipe 1.25 client in against lyncd, headless,
# in private mount + network namespaces (nothing on the machine is changed).
#
#   scripts/interop-sipe.sh --domain contoso.com --user alice@contoso.com \
#       [--stay SECONDS] [--server HOST[:PORT]] [--keep DIR]
#       [--expect signed-in|register-reached]
#
#   --domain D        SIP domain / tenant. lyncd is configured with web=lyncweb.D,
#                     pool=lyncfe.D, idp=login.microsoftonline.com (SIPE hard-codes that name).
#   --user U          sign-in address (alice@D; "alice" alone means alice@D). The user is
#                     created in a fresh lyncd data dir with a random password.
#   --stay S          stay signed on for S seconds after CONNECTED (harness --stay).
#   --server H[:P]    give SIPE this registrar instead of letting it auto-discover
#                     (lyncdiscover -> Autodiscover). Default: auto-discovery.
#   --keep DIR        work in DIR (new or empty) and keep it. Otherwise a temporary dir
#                     is used, removed on success and kept (path printed) on failure.
#   --expect signed-in
#                     exit 0 iff the harness signed on (exit 0, after --stay if given) and
#                     SIPE's debug log shows: the REGISTER answered by a signed 200 OK whose
#                     rspauth SIPE validated, the self-subscriptions (roaming-contacts,
#                     provisioning-v2, roaming-self) answered by signed 200 OKs, every signed
#                     message from lyncd validated and none refused, and lyncd's log shows the
#                     signed de-registration (Expires: 0) when the harness signed out.
#   --expect register-reached
#                     exit 0 iff SIPE's debug log shows the web half of sign-in
#                     (lyncdiscover -> Autodiscover 401 -> WebTicket mex -> RST2.srf ->
#                     WsFedBearer -> Autodiscover with X-MS-WebTicket answered 200) followed
#                     by the first SIP REGISTER sent to lyncfe.D:5061. Needs auto-discovery
#                     (no --server). Without --expect the exit code is the harness's:
#                     0 signed on, 1 error, 2 timeout, 3 certificate rejected.
#   --check-log FILE  only run the register-reached check on an existing SIPE debug log
#                     (needs --domain; no root, no build, no run).
#
# Other exit codes: 64 usage error, 70 setup error (not root, cargo missing, build failed).
#
# Environment: CARGO_TARGET_DIR (respected), LYNCD_SHARED_DIR (default <repo>/../shared),
# SIPE_HARNESS_BUILD_DIR (harness build dir, see shared/interop/sipe/README.md).
#
# Work dir contents: lyncd.toml, data/ (lyncd data dir), ca.pem, hosts, lyncd.log (lyncd's
# stdout+stderr), sipe-debug.log (SIPE's full debug log: every SIP/HTTP message),
# harness.out (the harness's HARNESS lines). The password is random, never printed, passed to
# lyncd on stdin and to the harness in the environment (SIPE_PASSWORD), and replaced by
# "[password]" in the work dir's files after the run (SIPE logs RST2.srf bodies, which carry it).
#
# Testing option (not for normal use):
#   --server-cmd-override "CMD"  run CMD (sh -c, inside the namespaces) instead of
#       "lyncd serve"; no lyncd build, no "user add"/"ca export": a CA and server
#       certificate come from shared/interop/sipe/mkcerts.sh. CMD sees $SIPE_PASSWORD,
#       $INTEROP_WORK, $INTEROP_CERTDIR, $INTEROP_DOMAIN and $INTEROP_USER, e.g.
#       --server-cmd-override 'python3 /work/shared/interop/sipe/recorder.py
#         --certdir "$INTEROP_CERTDIR" --captures "$INTEROP_WORK/captures"
#         --password "$SIPE_PASSWORD" --dns-port 53 --lifetime 60'
set -euo pipefail

prog=interop-sipe
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" | sed '/^Testing option/,$d'
}
die() { echo "$prog: $2" >&2; exit "$1"; }

# ---------------------------------------------------------------- register-reached check
# Reads SIPE's debug log (harness -d). The formats it relies on (SIPE 1.25.0 + libpurple 2.14):
#   (hh:mm:ss) info: sipe: sipe_http_transport_connected: 'host:port'(0xPTR)
#   (hh:mm:ss) info: sipe: sip_transport_connected: 'host:port'(0xPTR)
#   (hh:mm:ss) info: sipe: webticket_metadata: WebTicket FedBearer Auth URI <url>
#   MESSAGE START >>>>>>>>>> HTTP(0xPTR) - <timestamp>     (>>> sent, <<< received; or SIP(0xPTR))
#   <request line / status line>
#   <headers>
#   ...
#   MESSAGE END >>>>>>>>>> HTTP(0xPTR) - <timestamp>
# SIPE's HTTP transport has one request in flight per connection, so the answer to a request
# is the next received message on the same connection pointer.
check_log() { # LOGFILE DOMAIN
  python3 - "$1" "$2" <<'PY'
import re
import sys
from urllib.parse import urlsplit

path, domain = sys.argv[1], sys.argv[2].lower()
pool = "lyncfe." + domain
IDP = "login.microsoftonline.com"

try:
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
except OSError as e:
    print("interop-sipe: cannot read debug log: %s" % e)
    sys.exit(2)

start_re = re.compile(r"^MESSAGE START (>{10}|<{10}) (HTTP|SIP)\((0x[0-9a-fA-F]+)\) - ")
conn_re = re.compile(r"info: sipe: (?:sipe_http_transport_connected|sip_transport_connected): "
                     r"'([^']*)'\((0x[0-9a-fA-F]+)\)")
fedbearer_re = re.compile(r"webticket_metadata: WebTicket FedBearer Auth URI (\S+)")

msgs, peers, fedbearer = [], {}, set()
i = 0
while i < len(lines):
    line = lines[i].rstrip("\r")
    m = start_re.match(line)
    if m:
        body = []
        j = i + 1
        while j < len(lines) and not lines[j].startswith("MESSAGE END "):
            body.append(lines[j].rstrip("\r"))
            j += 1
        headers = {}
        for h in body[1:]:
            if not h.strip():
                break
            if ":" in h:
                k, v = h.split(":", 1)
                headers.setdefault(k.strip().lower(), v.strip())
        conn = m.group(3).lower()
        msg = dict(line=i + 1, out=m.group(1).startswith(">"), proto=m.group(2), conn=conn,
                   first=body[0].strip() if body else "", headers=headers,
                   peer=peers.get(conn, "?"))
        parts = msg["first"].split(" ")
        msg["method"] = parts[0] if msg["out"] else ""
        msg["target"] = parts[1] if msg["out"] and len(parts) > 1 else ""
        msg["host"] = headers.get("host", "").split(":")[0].lower()
        msg["status"] = int(parts[1]) if (not msg["out"] and len(parts) > 1
                                          and parts[1].isdigit()) else None
        msgs.append(msg)
        i = j + 1
        continue
    m = conn_re.search(line)
    if m:
        peers[m.group(2).lower()] = m.group(1).lower()
    m = fedbearer_re.search(line)
    if m:
        u = urlsplit(m.group(1))
        fedbearer.add(((u.hostname or "").lower(), u.path))
    i += 1

def answer(k):
    """status of the answer to outgoing message k (next received on the same connection)"""
    for r in msgs[k + 1:]:
        if r["conn"] == msgs[k]["conn"] and not r["out"] and r["proto"] == msgs[k]["proto"]:
            return r["status"]
    return None

def url(m):
    port = m["peer"].rsplit(":", 1)[-1]
    scheme = {"443": "https://", "80": "http://"}.get(port, "")
    host = m["host"] + ("" if scheme else ":" + port)
    return "%s %s%s%s" % (m["method"], scheme, host, m["target"])

def http_out(m, method):
    return m["out"] and m["proto"] == "HTTP" and m["method"] == method

def path_of(target):
    return target.split("?")[0]

state = {}  # facts learnt from earlier stages

def p_lyncdiscover(m, a):
    return http_out(m, "GET") and m["host"] in ("lyncdiscover." + domain,
                                                 "lyncdiscoverinternal." + domain)

def p_ad401(m, a):
    if (http_out(m, "GET") and "x-ms-webticket" not in m["headers"] and a == 401
            and not m["host"].startswith("lyncdiscover")):
        state["user"] = (m["host"], m["target"])
        return True
    return False

def wt_url_from_401():
    """X-MS-WebTicketURL of the 401 seen in stage 2 (from the answer's headers)"""
    k = state.get("ad401_index")
    for r in msgs[k + 1:] if k is not None else []:
        if r["conn"] == msgs[k]["conn"] and not r["out"]:
            return r["headers"].get("x-ms-webticketurl")
    return None

def p_mex(m, a):
    if not http_out(m, "GET") or not path_of(m["target"]).endswith("/mex"):
        return False
    wt = state.get("wt_url")
    if wt:
        u = urlsplit(wt)
        return (m["host"], path_of(m["target"])) == ((u.hostname or "").lower(),
                                                     u.path.rstrip("/") + "/mex")
    return True

def p_rst2(m, a):
    return http_out(m, "POST") and m["host"] == IDP and path_of(m["target"]) == "/RST2.srf"

def p_wsfed(m, a):
    if not http_out(m, "POST"):
        return False
    if "ws-sx/ws-trust/200512/RST/Issue" not in m["headers"].get("soapaction", ""):
        return False
    return not fedbearer or (m["host"], path_of(m["target"])) in fedbearer

def p_adticket(m, a):
    return (http_out(m, "GET") and "x-ms-webticket" in m["headers"]
            and (m["host"], m["target"]) == state.get("user"))

stages = [
    ("lyncdiscover", "GET lyncdiscover[internal]." + domain, p_lyncdiscover, None),
    ("autodiscover-401", "Autodiscover user URL, no ticket, answered 401", p_ad401, None),
    ("webticket-mex", "GET <X-MS-WebTicketURL>/mex", p_mex, None),
    ("rst2", "POST https://%s/RST2.srf" % IDP, p_rst2, None),
    ("wsfedbearer", "POST WsFedBearer (WS-Trust 1.3 RST)", p_wsfed, None),
    ("autodiscover-ticket", "Autodiscover user URL with X-MS-WebTicket, answered 200",
     p_adticket, 200),
]

print("interop-sipe: register-reached check of %s (pool %s:5061)" % (path, pool))
ok = True
pos = 0  # index in msgs after which the next stage must appear
for name, what, pred, want in stages:
    if not ok:
        print("  %-7s %-20s %s (not checked: an earlier stage is missing)" % ("-", name, what))
        continue
    found = None
    for k in range(pos, len(msgs)):
        m = msgs[k]
        if pred(m, answer(k) if m["out"] else None):
            found = k
            if want is None or answer(k) == want:
                break
    if found is None:
        ok = False
        after = (" after debug-log line %d" % msgs[pos - 1]["line"]) if pos else ""
        print("  MISSING %-20s %s%s" % (name, what, after))
        continue
    m, a = msgs[found], answer(found)
    extra = ""
    if name == "autodiscover-401":
        state["ad401_index"] = found
        state["wt_url"] = wt_url_from_401()
        extra = "  X-MS-WebTicketURL: %s" % (state["wt_url"] or "(none)")
    bad = want is not None and a != want
    ok = ok and not bad
    print("  %-7s %-20s %s -> %s%s  (line %d)" % ("WRONG" if bad else "found", name, url(m),
                                                  a if a is not None else "no answer",
                                                  extra, m["line"]))
    pos = found + 1

regs = [k for k, m in enumerate(msgs)
        if m["out"] and m["proto"] == "SIP" and m["first"].startswith("REGISTER ")]
if not regs:
    ok = False
    print("  MISSING %-20s no SIP REGISTER was sent" % "register")
else:
    k = regs[0]
    m, a = msgs[k], answer(k)
    good_peer = m["peer"] == pool + ":5061"
    in_order = k >= pos or not ok
    status = "found" if good_peer and in_order else "WRONG"
    ok = ok and good_peer and in_order
    note = "" if good_peer else "  (expected %s:5061)" % pool
    if not in_order:
        note += "  (sent before the previous stage)"
    print("  %-7s %-20s %s to %s -> %s%s  (line %d)" % (status, "register", m["first"], m["peer"],
                                                       a if a is not None else "no answer",
                                                       note, m["line"]))
print("interop-sipe: %s register-reached" % ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
}

# ---------------------------------------------------------------- signed-in check
# Reads SIPE's debug log (message blocks as above, plus SIPE's signature lines:
#   info: sipe: sip_transport_input: signature of incoming message validated
#   info: sipe: sip_transport_input: signature of incoming message is invalid.)
# and lyncd's log ("sip: signed out").
check_signed_in() { # SIPE_LOG LYNCD_LOG
  python3 - "$1" "$2" <<'PY'
import re
import sys

log, slog = sys.argv[1], sys.argv[2]
text = open(log, encoding="utf-8", errors="replace").read()
server = re.sub(r"\x1b\[[0-9;]*m", "", open(slog, encoding="utf-8", errors="replace").read())

blocks = re.findall(r"MESSAGE START <<<<<<<<<< SIP\([^)]*\)[^\n]*\n(.*?)\nMESSAGE END", text, re.S)
def header(block, name):
    for line in block.split("\n")[1:]:
        if not line.strip():
            break
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None

ok = True
def report(good, what):
    global ok
    ok = ok and good
    print("  %-7s %s" % ("found" if good else "MISSING", what))

print("interop-sipe: signed-in check of %s" % log)
reg200 = [b for b in blocks if b.startswith("SIP/2.0 200") and (header(b, "CSeq") or "").endswith("REGISTER")
          and "rspauth=" in (header(b, "Authentication-Info") or "") and (header(b, "Expires") or "0") != "0"]
report(bool(reg200), "REGISTER answered 200 OK with Authentication-Info rspauth and Expires > 0")
for event in ("vnd-microsoft-roaming-contacts", "vnd-microsoft-provisioning-v2", "vnd-microsoft-roaming-self"):
    answered = [b for b in blocks if b.startswith("SIP/2.0 200") and (header(b, "CSeq") or "").endswith("SUBSCRIBE")
                and header(b, "Event") == event and "rspauth=" in (header(b, "Authentication-Info") or "")]
    report(bool(answered), "SUBSCRIBE %s answered by a signed 200 OK" % event)
validated = text.count("signature of incoming message validated")
invalid = text.count("signature of incoming message is invalid")
unsigned = text.count("message without authentication data - ignoring")
report(validated >= 4 and invalid == 0, "SIPE validated %d signed messages, refused %d" % (validated, invalid))
report(unsigned == 0, "no unsigned answer dropped by SIPE (%d)" % unsigned)
report("sip: signed out" in server, "lyncd processed the signed REGISTER with Expires: 0 (sign-out)")
print("interop-sipe: %s signed-in" % ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
}

# ---------------------------------------------------------------- arguments
domain="" user="" stay="" server="" keep="" expect="" override="" check_only=""
need() { if [ $# -lt 2 ] || [ -z "$2" ]; then die 64 "$1 needs a value (see --help)"; fi; }
while [ $# -gt 0 ]; do
  case "$1" in
    --domain) need "$@"; domain="$2"; shift 2 ;;
    --user) need "$@"; user="$2"; shift 2 ;;
    --stay) need "$@"; stay="$2"; shift 2 ;;
    --server) need "$@"; server="$2"; shift 2 ;;
    --keep) need "$@"; keep="$2"; shift 2 ;;
    --expect) need "$@"; expect="$2"; shift 2 ;;
    --check-log) need "$@"; check_only="$2"; shift 2 ;;
    --server-cmd-override) need "$@"; override="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die 64 "unknown argument '$1' (see --help)" ;;
  esac
done

domain=${domain,,}
[[ $domain =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$ ]] ||
  die 64 "--domain: need a DNS domain such as contoso.com (got '${domain}')"

if [ -n "$check_only" ]; then
  check_log "$check_only" "$domain"
  exit $?
fi

user=${user#sip:}
[ -n "$user" ] || die 64 "--user is required (e.g. --user alice@$domain)"
[[ $user == *@* ]] || user="$user@$domain"
[[ $user =~ ^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$ ]] || die 64 "--user: not a plain sign-in address: '$user'"
[ "${user#*@}" = "$domain" ] ||
  echo "$prog: warning: --user's domain '${user#*@}' is not --domain '$domain'" >&2
if [ -n "$stay" ]; then [[ $stay =~ ^[0-9]+$ ]] || die 64 "--stay: need whole seconds (got '$stay')"; fi
if [ -n "$server" ]; then
  [[ $server =~ ^[A-Za-z0-9.:-]+$ ]] || die 64 "--server: need HOST[:PORT] (got '$server')"
fi
case "$expect" in
  ""|register-reached|signed-in) ;;
  *) die 64 "--expect: 'signed-in' or 'register-reached' (got '$expect')" ;;
esac
if [ "$expect" = register-reached ] && [ -n "$server" ]; then
  echo "$prog: warning: --expect register-reached checks auto-discovery, which --server skips" >&2
fi

# ---------------------------------------------------------------- preconditions
if [ "$(id -u)" != 0 ]; then
  die 70 "must run as root: the harness runs SIPE and lyncd in private mount and network
  namespaces (unshare --mount --net) and bind-mounts a hosts file over /etc/hosts there, so that
  lyncdiscover.$domain, lyncweb.$domain, lyncfe.$domain and login.microsoftonline.com (hard-coded
  in SIPE) resolve to 127.0.0.1 and lyncd can listen on ports 80/443/5061 without touching the
  machine. Re-run with sudo."
fi

shared=${LYNCD_SHARED_DIR:-$repo/../shared}
sipe="$shared/interop/sipe"
if [ ! -x "$sipe/run.sh" ] || [ ! -x "$sipe/build.sh" ]; then
  die 70 "harness not found at $sipe (set LYNCD_SHARED_DIR to the shared/ checkout beside the repo)"
fi
sipe=$(cd "$sipe" && pwd)

if [ -z "$override" ]; then
  command -v cargo >/dev/null 2>&1 ||
    die 70 "cargo not found on PATH: install Rust (https://rustup.rs) or add ~/.cargo/bin to PATH"
fi

# quote a string for sh -c
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# ---------------------------------------------------------------- work dir
if [ -n "$keep" ]; then
  mkdir -p "$keep"
  [ -z "$(ls -A "$keep")" ] || die 64 "--keep $keep: directory is not empty (use a new or empty one)"
  work=$(cd "$keep" && pwd)
else
  work=$(mktemp -d /tmp/lyncd-sipe-XXXXXX)
fi
chmod 700 "$work"
data="$work/data" cfg="$work/lyncd.toml" hosts="$work/hosts" slog="$work/lyncd.log"
dlog="$work/sipe-debug.log" hout="$work/harness.out"
mkdir -m 700 "$data"
: >"$slog"

pw=""
redact() { # replace the password in every file of the work dir that has it (not in data/)
  [ -n "$pw" ] && [ -d "$work" ] || return 0
  local f
  { grep -rlF --exclude-dir=data -- "$pw" "$work" 2>/dev/null || true; } | while IFS= read -r f; do
    sed -i "s/$pw/[password]/g" "$f"
  done
  return 0
}
# shellcheck disable=SC2317  # (invoked by the EXIT trap)
finish() {
  local rc=$?
  redact
  if [ -z "$keep" ]; then
    if [ "$rc" = 0 ]; then rm -rf "$work"; else echo "$prog: work dir kept: $work" >&2; fi
  fi
}
trap finish EXIT

# ---------------------------------------------------------------- harness (installs packages)
echo "$prog: building the SIPE harness ($sipe/build.sh)" >&2
"$sipe/build.sh" >&2 || die 70 "harness build failed ($sipe/build.sh)"

# random printable password: letters and digits only (safe in sed, TOML, shells)
pw=$(head -c 48 /dev/urandom | base64 -w0 | tr -d '+/=')
pw=${pw:0:24}

# ---------------------------------------------------------------- lyncd
if [ -z "$override" ]; then
  echo "$prog: cargo build --release -p lyncd" >&2
  # an absolute CARGO_TARGET_DIR, so that a relative one means the same as for the caller
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    mkdir -p "$CARGO_TARGET_DIR"
    CARGO_TARGET_DIR=$(cd "$CARGO_TARGET_DIR" && pwd)
    export CARGO_TARGET_DIR
  fi
  (cd "$repo" && cargo build --release -p lyncd) >&2 || die 70 "cargo build --release -p lyncd failed"
  lyncd="${CARGO_TARGET_DIR:-$repo/target}/release/lyncd"
  [ -x "$lyncd" ] || die 70 "built, but $lyncd is missing"

  cat >"$cfg" <<EOF
# written by scripts/interop-sipe.sh
[names]
web = "lyncweb.$domain"
pool = "lyncfe.$domain"
idp = "login.microsoftonline.com"

[listen]
https = "127.0.0.1:443"
http = "127.0.0.1:80"
sip_tls = "127.0.0.1:5061"
EOF
  printf '%s\n' "$pw" | "$lyncd" user add "$user" --password-stdin --data-dir "$data" >&2 ||
    die 70 "'lyncd user add $user --password-stdin --data-dir $data' failed"
  "$lyncd" ca export --data-dir "$data" >"$work/ca.pem" ||
    die 70 "'lyncd ca export --data-dir $data' failed"
  grep -q -- '-----BEGIN CERTIFICATE-----' "$work/ca.pem" ||
    die 70 "'lyncd ca export' printed no PEM certificate ($work/ca.pem)"
  ca="$work/ca.pem"
  server_cmd="exec >$(sq "$slog") 2>&1; unset SIPE_PASSWORD; exec $(sq "$lyncd") serve --config $(sq "$cfg") --data-dir $(sq "$data")"
else
  echo "$prog: --server-cmd-override: not building lyncd; CA from mkcerts.sh" >&2
  "$sipe/mkcerts.sh" "$work/certs" "$domain" >/dev/null
  ca="$work/certs/ca.pem"
  export INTEROP_WORK="$work" INTEROP_CERTDIR="$work/certs" INTEROP_DOMAIN="$domain" INTEROP_USER="$user"
  server_cmd="exec >$(sq "$slog") 2>&1; $override"
fi

cat >"$hosts" <<EOF
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
127.0.0.1	lyncdiscover.$domain lyncdiscoverinternal.$domain lyncweb.$domain lyncfe.$domain login.microsoftonline.com $domain sip.$domain sipinternal.$domain sipexternal.$domain
EOF

# ---------------------------------------------------------------- run
args=(--netns --hosts "$hosts" --server-cmd "$server_cmd" --wait-port 443 --wait-port 5061
      --no-build --user "$user" --ca "$ca" --timeout 40 -q -d "$dlog")
[ -z "$stay" ] || args+=(--stay "$stay")
[ -z "$server" ] || args+=(--server "$server")

echo "$prog: signing in $user (domain $domain${server:+, server $server}); work dir $work" >&2
set +e
SIPE_PASSWORD="$pw" "$sipe/run.sh" "${args[@]}" | tee "$hout"
hrc=${PIPESTATUS[0]}
set -e
redact

rc=$hrc
if [ "$expect" = signed-in ]; then
  if [ "$hrc" = 0 ]; then
    set +e
    check_signed_in "$dlog" "$slog"
    rc=$?
    set -e
    [ "$rc" = 0 ] || rc=1
  else
    rc=1
  fi
elif [ "$expect" = register-reached ]; then
  set +e
  check_log "$dlog" "$domain"
  rc=$?
  set -e
  [ "$rc" = 0 ] || rc=1
fi

case "$hrc" in
  0) what="signed on" ;; 1) what="connection error" ;; 2) what="timeout" ;;
  3) what="server certificate not trusted" ;; 64) what="harness usage error" ;;
  70) what="harness setup error" ;; *) what="unexpected exit code" ;;
esac
echo "$prog: harness exit $hrc ($what)${expect:+; --expect $expect: $([ "$rc" = 0 ] && echo PASS || echo FAIL)}"

if [ "$rc" != 0 ]; then
  echo "---- server log ($slog), last 40 lines:"
  tail -n 40 "$slog"
  echo "---- harness result:"
  grep -E '^HARNESS +[0-9.]+ (ERROR|TIMEOUT|CERT-REJECTED) ' "$hout" || tail -n 3 "$hout"
  echo "---- SIPE debug log: $dlog"
fi
exit "$rc"
