#!/bin/sh
# The official rabbitmq entrypoint, in short: rabbitmq-server started as root gets
# /var/lib/rabbitmq handed to the user rabbitmq and re-execs as that user.
set -e
if [ "$1" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
    find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq '{}' +
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
fi
exec "$@"
