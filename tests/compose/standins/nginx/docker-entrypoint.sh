#!/bin/sh
# As the official image's entrypoint: when the command is nginx, run /docker-entrypoint.d/*.sh
# first (the envsubst of the templates among them), then exec the command.
set -e
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    for script in /docker-entrypoint.d/*.sh; do
        [ -x "$script" ] && "$script"
    done
fi
exec "$@"
