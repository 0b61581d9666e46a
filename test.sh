#!/usr/bin/env bash
# Runs every test of ion. Installs what the tests need first (Debian packages, NuGet packages),
# so it works on a fresh machine. Usage: ./test.sh [extra dotnet test arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

need_apt=()
[ -x /usr/sbin/smtp-sink ] || need_apt+=(postfix)     # smtp-sink: the SMTP relay the tests deliver to
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)   # runs tools/ (TLS relay)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)   # a second process on the queue's SQLite file
command -v clang >/dev/null || need_apt+=(clang)       # NativeAOT links the Lambda's bootstrap with it
[ -f /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)    # … and against zlib
[ -x /usr/bin/chromium ] || need_apt+=(chromium)       # the dashboard's browser tests drive it (Playwright)
[ -x /usr/bin/promtool ] || need_apt+=(prometheus)     # promtool and a Prometheus for deploy/prometheus's rules
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]} (apt-get)" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # postfix asks how to configure itself; the tests only use its smtp-sink binary.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  [ -d /run/systemd/system ] && [[ " ${need_apt[*]} " == *" prometheus "* ]] && $SUDO systemctl disable --now prometheus   # tests start their own
fi

# Node packages the tests start (tools/package.json), pinned by package-lock.json.
if [ ! -d tools/node_modules ] || [ tools/package-lock.json -nt tools/node_modules ]; then
  echo "test.sh: installing tools/ (npm ci)" >&2
  (cd tools && npm ci --no-audit --no-fund --loglevel=error >&2 && touch node_modules)
fi

# The Lambda's bootstrap as it ships (NativeAOT), which its tests run: built here, before the tests, so that no test
# runs beside a NativeAOT build (tests/Ion.Tests/Fixtures/LambdaBootstrap.cs builds it itself when run without this).
echo "test.sh: building the Lambda bootstrap (NativeAOT)" >&2
dotnet publish src/Ion.Lambda -c Release -r linux-x64 -o .build/test-lambda -nologo -v quiet >&2
export ION_LAMBDA_BOOTSTRAP=$PWD/.build/test-lambda/bootstrap

log=$(mktemp -t ion-test.XXXXXX.log)
trap 'rm -f "$log"' EXIT
set +e
# A floor on the count catches a run that silently found only part of the suite (a stale build, a lost class).
dotnet test ion.slnx --minimum-expected-tests 300 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# The failed tests again at the end, name and first lines of the reason, so that a log cut to its tail still names them.
if grep -qE '^\s*failed [A-Za-z]' "$log"; then
  echo "test.sh: failed tests:"
  grep -A 6 -E '^\s*failed [A-Za-z]' "$log" | cut -c1-300 | head -120
fi
# One closing line that CI and people can read at a glance.
awk '/^  succeeded:/{p=$2} /^  failed:/{f=$2} /^  skipped:/{s=$2}
     END { if (p == "") p = 0; if (f == "") f = 0; if (s == "") s = 0; print p " passed, " f " failed, " s " skipped" }' "$log"
if [ "$rc" = 0 ] && ! grep -qE '^  succeeded: *[1-9]' "$log"; then
  echo "test.sh: no test ran" >&2
  exit 1
fi
exit "$rc"
