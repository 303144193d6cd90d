#!/bin/sh
# First start of the PostgreSQL container (compose.postgres.yaml): two roles, two databases.
# The data role cannot connect to the key store database and the key store role cannot
# connect to the data database, so neither a leaked data password nor a copy of the data
# database carries the keys (deploy/README.md, PostgreSQL). Passwords come from the
# container's secret files, never from this script.
set -eu
data_pw=$(cat /run/secrets/mentorbot_db_password)
keys_pw=$(cat /run/secrets/mentorbot_keys_password)
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
     -v data_pw="$data_pw" -v keys_pw="$keys_pw" <<'SQL'
CREATE ROLE mentorbot LOGIN PASSWORD :'data_pw';
CREATE ROLE mentorbot_keys LOGIN PASSWORD :'keys_pw';
CREATE DATABASE mentorbot OWNER mentorbot;
CREATE DATABASE mentorbot_keys OWNER mentorbot_keys;
REVOKE ALL ON DATABASE mentorbot FROM PUBLIC;
REVOKE ALL ON DATABASE mentorbot_keys FROM PUBLIC;
GRANT CONNECT ON DATABASE mentorbot TO mentorbot;
GRANT CONNECT ON DATABASE mentorbot_keys TO mentorbot_keys;
SQL
