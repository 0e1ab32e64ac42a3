#!/bin/sh
# The official redis entrypoint: options alone mean redis-server; redis-server as root chowns
# the working directory to redis and re-execs as redis (su-exec there, setpriv here).
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
exec "$@"
