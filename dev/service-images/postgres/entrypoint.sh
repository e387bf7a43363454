#!/usr/bin/env bash
# The official postgres image's interface, for Debian's PostgreSQL 15 (dev/service-images.sh):
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_PASSWORD          its password; required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_DB                database created on first start (default: the user's name)
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP clients (default scram-sha-256; md5, trust, ...)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
# First start: initdb into $PGDATA, then a temporary server on the Unix socket only (no TCP, so
# `pg_isready -h 127.0.0.1` is not "ready" before initialisation ends) sets the password, creates
# the database and runs /docker-entrypoint-initdb.d/*.sql|*.sh. Then `exec postgres` in the
# foreground, as the postgres user, listening on 0.0.0.0:5432.
set -Eeuo pipefail

# `docker run IMAGE -c foo=bar` passes server options, as with the official image.
if [[ "${1:-}" == -* ]]; then set -- postgres "$@"; fi

if [[ "${1:-}" != postgres ]]; then exec "$@"; fi
# `postgres --version` and friends only print: no initialisation (as in the official image).
for arg; do
  case "$arg" in -'?'|--help|--describe-config|-V|--version|-C|-C*) exec "$@" ;; esac
done

# As root: own the data and socket directories, then run this script again as postgres.
if [[ "$(id -u)" == 0 ]]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

log() { printf 'entrypoint: %s\n' "$*" >&2; }

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  if [[ -z "${POSTGRES_PASSWORD:-}" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
    cat >&2 <<'EOF'
entrypoint: error: the database is uninitialized and POSTGRES_PASSWORD is not set.
  Set POSTGRES_PASSWORD to a non-empty value for the superuser, or
  POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without a password (tests only).
EOF
    exit 1
  fi
  [[ "$POSTGRES_HOST_AUTH_METHOD" != trust ]] \
    || log "warning: POSTGRES_HOST_AUTH_METHOD=trust: every TCP client connects without a password"

  log "initialising $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB, host auth $POSTGRES_HOST_AUTH_METHOD)"
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list, as in the official image
  initdb --username="$POSTGRES_USER" --pgdata="$PGDATA" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=trust ${POSTGRES_INITDB_ARGS:-} >/dev/null
  # md5 clients need an md5-hashed password (a SCRAM one makes the server ask for SCRAM instead).
  encryption=scram-sha-256
  [[ "$POSTGRES_HOST_AUTH_METHOD" != md5 ]] || encryption=md5
  cat >>"$PGDATA/postgresql.conf" <<EOF

# --- dev/service-images: a throw-away test database
listen_addresses = '*'
password_encryption = $encryption
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  # Loopback stays trusted (initdb's lines, as in the official image); every other host uses the method.
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

  # Temporary server: Unix socket only.
  pg_ctl --pgdata="$PGDATA" --wait --silent -o "-c listen_addresses='' -p 5432" start >/dev/null
  psql=(psql -X -q -v ON_ERROR_STOP=1 --no-password --username="$POSTGRES_USER" --dbname=postgres)
  if [[ -n "${POSTGRES_PASSWORD:-}" ]]; then
    "${psql[@]}" -v user="$POSTGRES_USER" -v pw="$POSTGRES_PASSWORD" <<<"ALTER ROLE :\"user\" WITH PASSWORD :'pw';"
  fi
  if [[ "$POSTGRES_DB" != postgres ]]; then
    "${psql[@]}" -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -e "$f" ]] || continue
    if [[ "$f" != *.sql && "$f" != *.sh ]]; then log "ignoring $f (neither .sql nor .sh)"; continue; fi
    log "running $f"
    if [[ "$f" == *.sql ]]; then
      "${psql[@]}" --dbname="$POSTGRES_DB" -f "$f"
    elif [[ -x "$f" ]]; then
      "$f"
    else
      # shellcheck source=/dev/null
      . "$f"
    fi
  done
  pg_ctl --pgdata="$PGDATA" --wait --silent -m fast stop >/dev/null
  log "initialisation done; starting PostgreSQL"
fi

exec "$@"
