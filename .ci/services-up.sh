#!/usr/bin/env bash
# Installs (from Debian) what the tests need: protoc, and MariaDB, PostgreSQL and Redis when missing;
# starts the services when they do not answer, then makes
# sure the `test` databases exist. Idempotent; exits non-zero when a service stays down.
set -u
wait_for() { # name, check command...
  local name=$1; shift
  for _ in $(seq 1 30); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "services-up: $name did not come up" >&2; return 1
}
missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server mariadb-client)
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# protoc and the well-known .proto files, for the code generator's protoc test.
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/timestamp.proto ] || missing+=(libprotobuf-dev)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rc=0
if ! mariadb-admin -uroot -h127.0.0.1 ping >/dev/null 2>&1; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 \
    || (/usr/sbin/mariadbd --user=mysql >/dev/null 2>&1 &)
  wait_for MariaDB mariadb-admin -uroot -h127.0.0.1 ping || rc=1
fi
mariadb -uroot -h127.0.0.1 -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || rc=1
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start >/dev/null 2>&1
  wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 || rc=1
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || rc=1
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1
  wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping || rc=1
fi
[ $rc = 0 ] && echo "services-up: MariaDB, PostgreSQL and Redis answer"
exit $rc
