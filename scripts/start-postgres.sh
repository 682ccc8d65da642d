#!/bin/sh
# Start the Debian PostgreSQL cluster when it does not answer (no systemd here),
# and make the role and database the tests use: role `corral` (password
# `corral`, may create databases), database `corral_test`. The cluster listens
# on loopback and its unix socket only. Safe to rerun: every step checks first.
#
# The tests reach it as postgresql+psycopg://corral:corral@127.0.0.1:5432/corral_test
# (CORRAL_TEST_POSTGRES_URL overrides that); each test works in a schema of its own.
set -eu
ROLE=corral
PASSWORD=corral
DATABASE=corral_test

as_postgres() { runuser -u postgres -- "$@"; }
sql() { as_postgres psql -X -q -t -A -p "$PORT" -d postgres -c "$1"; }

VERSION=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
[ -n "$VERSION" ] || { echo "start-postgres: PostgreSQL is not installed" >&2; exit 1; }
CLUSTER=main
if ! pg_lsclusters -h "$VERSION" "$CLUSTER" >/dev/null 2>&1; then
    echo "start-postgres: creating cluster $VERSION/$CLUSTER"
    pg_createcluster "$VERSION" "$CLUSTER" >/dev/null
fi
PORT=$(pg_lsclusters -h "$VERSION" "$CLUSTER" | awk '{print $3}')

if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    echo "start-postgres: PostgreSQL $VERSION/$CLUSTER already answers on port $PORT"
else
    # Loopback only, whatever the cluster's configuration said before.
    pg_conftool "$VERSION" "$CLUSTER" set listen_addresses localhost
    mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
    pg_ctlcluster "$VERSION" "$CLUSTER" start
    i=0
    until pg_isready -q -h 127.0.0.1 -p "$PORT"; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "start-postgres: PostgreSQL did not answer within 20 s" >&2; exit 1; }
        sleep 0.2
    done
    echo "start-postgres: PostgreSQL $VERSION/$CLUSTER answers on port $PORT"
fi

if [ "$(sql "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
    sql "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'"
fi
if [ "$(sql "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]; then
    sql "CREATE DATABASE $DATABASE OWNER $ROLE"
fi
