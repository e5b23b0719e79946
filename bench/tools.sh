#!/bin/sh
# What `make bench` needs besides the virtualenv: wrk (the load generator), PostgreSQL and Redis.
# Missing ones are installed from Debian when running as root; otherwise this says what to install.
set -eu
missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1 || missing="$missing postgresql"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "make bench: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086  # one word per package
  apt-get install -y -qq --no-install-recommends $missing \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; }
else
  echo "make bench needs:$missing. Install them (Debian: sudo apt-get install$missing) and run it again." >&2
  exit 1
fi
