#!/usr/bin/env bash
# test.sh - every test lyncd has, on a fresh Debian 12 machine: installs what it needs (as root),
# then formatting, lints, unit/golden/integration tests, the demo, and the real pidgin-sipe
# client against `lyncd serve`. Exit code 0 only if all of it passed.
#
#   scripts/test.sh            # everything
#   scripts/test.sh --quick    # skip the release build, the demo and pidgin-sipe
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
quick=0
[ "${1:-}" = "--quick" ] && quick=1

step() { printf '\n==> %s\n' "$*"; }

# --- system packages: a C toolchain (aws-lc-sys, rustls' crypto), OpenSSL headers
# (TLS-DSK engine, CA keys), xmlsec1 (signature interop oracle in the tests), chromium and
# fonts-dejavu-core (the HTML report is rendered headless and its screenshot checked; about
# 2-4 s per report), python3 (small checks in the scripts). The pidgin-sipe harness installs its own packages. postgresql: the tests
# run the store on SQLite and on a private, throw-away PostgreSQL server that scripts/pg.sh
# starts (and installs the `postgresql` package for, when missing) and removes on exit.
pkgs="gcc g++ make pkg-config libssl-dev xmlsec1 ca-certificates chromium fonts-dejavu-core python3"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  step "installing:$missing"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "test.sh: run as root, or install:$missing" >&2
    exit 70
  fi
fi
command -v cargo >/dev/null || { echo "test.sh: cargo is needed (https://rustup.rs)" >&2; exit 70; }
# rustfmt and clippy are rustup components a minimal toolchain may lack.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  command -v rustup >/dev/null || { echo "test.sh: rustfmt and clippy are needed" >&2; exit 70; }
  step "installing rustfmt and clippy"
  rustup component add rustfmt clippy
fi

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The store's tests and the PostgreSQL paths run against a private server, unless
# LYNCD_TEST_PG already names one; stopped and removed on exit, failure and interrupt alike.
if [ -z "${LYNCD_TEST_PG:-}" ]; then
  step "starting a private PostgreSQL (scripts/pg.sh)"
  # Not `eval "$(scripts/pg.sh start)"` in one go: eval would hide a failed start.
  pgenv=$(scripts/pg.sh start)
  eval "$pgenv"
  trap 'scripts/pg.sh stop || true' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi
export LYNCD_TEST_PG

step "tests"
cargo test --workspace --locked

if [ $quick = 1 ]; then
  echo "test.sh: --quick: skipped the demo and pidgin-sipe"
  exit 0
fi

step "release build"
cargo build --release --locked -p lyncd

step "lyncd demo --json"
demo=$(./target/release/lyncd demo --json)
echo "$demo"
echo "$demo" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] is True and d["steps"] and all(s["ok"] for s in d["steps"]), "demo did not succeed"'

step "pidgin-sipe against lyncd serve (autodiscovery, stays signed in 20 s, signs out)"
if [ "$(id -u)" = 0 ]; then
  scripts/interop-sipe.sh --domain contoso.com --user alice@contoso.com --stay 20 --expect signed-in
  step "pidgin-sipe against lyncd serve (explicit --server)"
  scripts/interop-sipe.sh --domain contoso.com --user alice@contoso.com --stay 20 \
    --server lyncfe.contoso.com:5061 --expect signed-in
else
  echo "test.sh: pidgin-sipe interop needs root (network namespaces); skipped" >&2
  exit 1
fi
echo
echo "test.sh: all passed"
