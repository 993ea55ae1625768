#!/usr/bin/env bash
# Debian packages the tests need beyond Python: Chromium (the review app's end-to-end tests drive it headless
# through Playwright; nothing downloads a browser) and the PostgreSQL server (the review store is tested on a
# real PostgreSQL as well as SQLite), Java 17 (Apache Spark, the production-KPI engine, runs in local mode in the
# tests and the benchmark) and promtool (from Debian's `prometheus`: the probe alert rules in monitoring/ are checked
# and unit-tested with it; the Prometheus server the package enables on install is disabled and stopped again, as
# only the tool is needed). Installs only what is missing; a second run returns at once.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=(postgresql)
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
if ! command -v java > /dev/null || [ "$(java_major)" -lt 17 ]; then missing+=(openjdk-17-jre-headless); fi
command -v promtool > /dev/null || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo > /dev/null; then
  SUDO=(sudo)
else
  echo "error: ${missing[*]} missing and not root (no sudo): run 'apt-get install -y ${missing[*]}' as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
echo "installed: ${missing[*]}"
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  # Its postinst enables (and, where services may start, starts) a Prometheus server on port 9090.
  if command -v systemctl > /dev/null; then
    "${SUDO[@]}" systemctl disable prometheus > /dev/null 2>&1 || true
    [ -d /run/systemd/system ] && { "${SUDO[@]}" systemctl stop prometheus > /dev/null 2>&1 || true; }
  else
    "${SUDO[@]}" update-rc.d prometheus disable > /dev/null 2>&1 || true
    "${SUDO[@]}" invoke-rc.d prometheus stop > /dev/null 2>&1 || true
  fi
  echo "disabled the prometheus service (the harness needs only promtool)"
fi
