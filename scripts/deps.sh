#!/usr/bin/env bash
# Installs (Debian 12, as root) everything pooler needs to build and run its tests; does nothing when all of
# it is already installed. Used by scripts/test.sh, scripts/quickstart.sh and CI.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev libpq-dev libtomlplusplus-dev prometheus-cpp-dev libspdlog-dev libfmt-dev libgtest-dev libssl-dev
  postgresql-15 postgresql-client-15 pgbouncer
  # tests/deploy: systemd-analyze verify, dpkg-shlibdeps for cpack's .deb, Debian's python3 with yaml
  systemd dpkg-dev python3-yaml
  # tests: promtool lints a real /metrics scrape; curl checks the probes as an operator would
  prometheus curl
  # issue 7: real client libraries run prepared-statement workloads through the pooler
  python3-psycopg python3-asyncpg libpostgresql-jdbc-java default-jdk-headless
  # issue 10: libFuzzer targets (clang's -fsanitize=fuzzer runtime) and the openssl CLI for test CAs
  clang libclang-rt-14-dev openssl
)

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps.sh: all ${#packages[@]} packages already installed, skipping apt"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps.sh: installing: ${missing[*]}"
echo "deps.sh: apt-get update"
apt-get update -q

if ! installed postgresql-15; then
  # Tests and the quick start run their own throwaway clusters; Debian's default "main" cluster would only
  # take port 5432 (which the quick start uses), so tell postgresql-common not to create it.
  echo "deps.sh: installing postgresql-common first, with create_main_cluster = false"
  apt-get install -y -q --no-install-recommends postgresql-common
  conf=/etc/postgresql-common/createcluster.conf
  if grep -Eq '^[#[:space:]]*create_main_cluster' "$conf"; then
    sed -ri 's/^[#[:space:]]*create_main_cluster.*/create_main_cluster = false/' "$conf"
  else
    echo 'create_main_cluster = false' >>"$conf"
  fi
fi

echo "deps.sh: apt-get install -y --no-install-recommends ${missing[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps.sh: done"
