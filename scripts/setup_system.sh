#!/usr/bin/env bash
# Debian packages the tests need beyond Python: Chromium (the review app's end-to-end tests drive it headless
# through Playwright; nothing downloads a browser) and the PostgreSQL server (the review store is tested on a
# real PostgreSQL as well as SQLite), and Java 17 (Apache Spark, the production-KPI engine, runs in local mode in the
# tests and the benchmark). Installs only what is missing; a second run returns at once.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=(postgresql)
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
if ! command -v java > /dev/null || [ "$(java_major)" -lt 17 ]; then missing+=(openjdk-17-jre-headless); fi
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
