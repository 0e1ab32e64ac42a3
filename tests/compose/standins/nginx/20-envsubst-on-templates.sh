#!/bin/sh
# As the official image's 20-envsubst-on-templates.sh: each $NGINX_ENVSUBST_TEMPLATE_DIR/*.template
# becomes $NGINX_ENVSUBST_OUTPUT_DIR/<name without .template>, substituting only the names
# defined in the environment (nginx's own $variables are left alone).
set -e
template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
[ -d "$template_dir" ] || exit 0
defined_envs=$(printf '${%s} ' $(env | cut -d= -f1))
for template in "$template_dir"/*"$suffix"; do
    [ -f "$template" ] || continue
    name=$(basename "$template" "$suffix")
    echo "$0: Running envsubst on $template to $output_dir/$name"
    envsubst "$defined_envs" < "$template" > "$output_dir/$name"
done
