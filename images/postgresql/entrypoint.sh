#!/bin/sh
# Start PostgreSQL, creating the cluster on first start: superuser POSTGRES_USER with POSTGRES_PASSWORD (SCRAM),
# database POSTGRES_DB, password logins from any address (the NetworkPolicy decides who may connect).
# Writes only to PGDATA and /var/run/postgresql (both volumes in the chart); the root filesystem may be read-only.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "airlock-postgres: POSTGRES_PASSWORD is required to create the cluster" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  umask 077
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != "postgres" ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" |
      postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "airlock-postgres: cluster created in $PGDATA" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
