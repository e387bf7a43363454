#!/usr/bin/env bash
# The service images `imgbuild verify` starts beside an app's tests, built here because Docker Hub
# (postgres:15, redis:7) is not reachable: Debian bookworm's packages on the base OS image, pushed
# to the dev registry as
#   $REGISTRY/imgbuild-dev/postgres:15   PostgreSQL 15, the official image's POSTGRES_* interface
#   $REGISTRY/imgbuild-dev/redis:7       Redis 7, foreground, no persistence
# from dev/service-images/<name>/. Sourced by services.sh, which defines REGISTRY, BASE_REF,
# DEV_HOME, say and die; service_images_up does the work and sets SERVICE_POSTGRES_IMAGE and
# SERVICE_REDIS_IMAGE (services.sh writes them to the env file).
#
# Each image is also pushed under a keyed tag, <tag>-<key>, the key hashing its build files and
# the base image's digest. A run whose keyed tag is in the registry and names the same manifest as
# the plain tag does nothing (a few HEAD requests, well under a second); a changed Dockerfile or
# entrypoint, or a new base image, gives a new key and a rebuild.

SERVICE_IMAGES_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# si_digest REF: the manifest digest a loopback registry serves for REF (empty when it has none).
si_digest() {
  local ref=$1 host path tag
  host=${ref%%/*} path=${ref#*/}
  [[ "$host" == 127.* || "$host" == localhost* ]] || return 0
  tag=${path##*:} path=${path%:*}
  { curl -fsSI --max-time 10 \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://$host/v2/$path/manifests/$tag" 2>/dev/null || true; } \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

# si_key NAME: 12 hex digits over the build files (names, modes, contents) and the base image.
si_key() {
  local dir="$SERVICE_IMAGES_HERE/service-images/$1"
  {
    (cd "$dir" && find . -type f -printf '%P %m\n' | LC_ALL=C sort \
       && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    echo "base $BASE_REF $(si_digest "$BASE_REF")"
  } | sha256sum | cut -c1-12
}

# si_ensure NAME TAG: $REGISTRY/imgbuild-dev/NAME:TAG built from dev/service-images/NAME and pushed,
# unless the registry already has this key's build under that tag.
si_ensure() {
  local name=$1 tag=$2 key ref keyed have want log t0=$SECONDS
  key=$(si_key "$name")
  ref="$REGISTRY/imgbuild-dev/$name:$tag"
  keyed="$ref-$key"
  want=$(si_digest "$keyed")
  have=$(si_digest "$ref")
  [[ -n "$want" && "$want" == "$have" ]] && return 0
  if [[ -n "$want" ]]; then   # built before; the plain tag was moved: point it back
    if ! { docker pull -q "$keyed" && docker tag "$keyed" "$ref" && docker push -q "$ref"; } >/dev/null; then
      die "could not re-tag $keyed as $ref"
    fi
    say "service image $ref re-tagged from $keyed"
    return 0
  fi
  log="$DEV_HOME/service-image-$name.log"
  say "building service image $ref (Debian bookworm packages; under a minute)"
  DOCKER_BUILDKIT=1 docker build --progress=plain --build-arg BASE_IMAGE="$BASE_REF" \
    --label "imgbuild.dev.service-image.key=$key" -t "$keyed" -t "$ref" \
    "$SERVICE_IMAGES_HERE/service-images/$name" >"$log" 2>&1 \
    || { tail -n 15 "$log" >&2; die "building $ref failed; see $log"; }
  # The keyed tag first: a run interrupted between the two pushes only re-tags next time.
  if ! { docker push -q "$keyed" && docker push -q "$ref"; } >/dev/null; then die "could not push $ref"; fi
  say "service image $ref ready in $((SECONDS - t0)) s ($(docker image inspect -f '{{.Size}}' "$ref" \
        | awk '{printf "%d MB", $1 / 1e6}'))"
}

service_images_up() {
  # shellcheck disable=SC2034  # read by services.sh for the env file
  SERVICE_POSTGRES_IMAGE="$REGISTRY/imgbuild-dev/postgres:15"
  # shellcheck disable=SC2034
  SERVICE_REDIS_IMAGE="$REGISTRY/imgbuild-dev/redis:7"
  si_ensure postgres 15
  si_ensure redis 7
}
