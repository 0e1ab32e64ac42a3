#!/bin/sh
# Run once by the postgres image, on the first start of an empty data directory: the app's
# user APP_DB_USER becomes the owner of POSTGRES_DB (enough for the migrations: PostgreSQL 15+
# gives the database owner the public schema) without being a superuser, and the superuser
# `postgres` loses its password, so it is reachable only through the container's local socket
# (`docker compose exec postgres psql -U postgres`).
set -eu
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres --no-psqlrc \
    --set user="$APP_DB_USER" --set password="$APP_DB_PASSWORD" --set db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'password';
ALTER DATABASE :"db" OWNER TO :"user";
ALTER ROLE postgres PASSWORD NULL;
SQL
