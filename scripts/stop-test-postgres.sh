#!/usr/bin/env bash
# Stops the cluster started by scripts/start-test-postgres.sh and removes its directory.
# Usage: scripts/stop-test-postgres.sh [dir]   (dir defaults to $GRANTRY_TEST_PG_DIR)
set -euo pipefail

pg_dir=${1:-${GRANTRY_TEST_PG_DIR:-}}
if [ -z "$pg_dir" ] || [ ! -d "$pg_dir/data" ]; then
  echo 'stop-test-postgres: no cluster directory (pass it, or set GRANTRY_TEST_PG_DIR)' >&2
  exit 1
fi

bin_dir=''
version=$(cat "$pg_dir/data/PG_VERSION")
if [ -x "/usr/lib/postgresql/$version/bin/pg_ctl" ]; then
  bin_dir="/usr/lib/postgresql/$version/bin"
else
  echo "stop-test-postgres: no pg_ctl for PostgreSQL $version" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  runuser -u postgres -- "$bin_dir/pg_ctl" -D "$pg_dir/data" -m fast -w stop >&2 || true
else
  "$bin_dir/pg_ctl" -D "$pg_dir/data" -m fast -w stop >&2 || true
fi

case "$pg_dir" in
  */grantry-test-pg.*) rm -rf "$pg_dir" ;;
  *) echo "stop-test-postgres: not removing $pg_dir (not made by start-test-postgres.sh)" >&2 ;;
esac
