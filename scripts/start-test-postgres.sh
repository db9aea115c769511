#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster for the test suites and prints the shell lines that point
# them at it:
#
#   eval "$(scripts/start-test-postgres.sh)"   # sets GRANTRY_TEST_DATABASE_URL and GRANTRY_TEST_PG_DIR
#   ...run tests...
#   scripts/stop-test-postgres.sh               # stops the cluster and removes its directory
#
# Needs the Debian `postgresql` package. The cluster listens on 127.0.0.1 only, on a free port, with
# trust authentication (loopback, test data only). Everything else goes to stderr so that stdout
# stays eval-able.
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }

bin_dir=''
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then
    bin_dir=$candidate
    break
  fi
done
if [ -z "$bin_dir" ]; then
  log 'start-test-postgres: no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)'
  exit 1
fi

# initdb refuses to run as root, so as root the cluster belongs to the unprivileged `postgres` user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/grantry-test-pg.XXXXXX")
chmod 0755 "$pg_dir"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$pg_dir"
fi
# The server user may not be allowed into the caller's working directory (e.g. /root).
cd "$pg_dir"

# A free port: bind port 0 on loopback and read what the kernel chose. A tiny race with another
# process taking it before postgres starts is possible; pg_ctl then fails loudly.
port=$(node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close();});")

as_owner "$bin_dir/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >&2 \
  || as_owner "$bin_dir/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --no-sync >&2

# fsync off: the data is disposable and the machine is small; max_connections leaves room for several
# test files each opening a few pools.
as_owner "$bin_dir/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >&2

for _ in $(seq 1 60); do
  if "$bin_dir/pg_isready" -h 127.0.0.1 -p "$port" -q; then
    break
  fi
  sleep 0.5
done
"$bin_dir/pg_isready" -h 127.0.0.1 -p "$port" >&2

as_owner "$bin_dir/createdb" -h 127.0.0.1 -p "$port" -U postgres grantry_test >&2

log "start-test-postgres: PostgreSQL from $bin_dir listening on 127.0.0.1:$port (data in $pg_dir)"
printf 'export GRANTRY_TEST_PG_DIR=%q\n' "$pg_dir"
printf 'export GRANTRY_TEST_DATABASE_URL=%q\n' "postgres://postgres@127.0.0.1:$port/grantry_test"
