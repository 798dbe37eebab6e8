#!/usr/bin/env bash
# The hand-written way, as the benchmark's baseline: for each platform in turn, build with buildx,
# run, poll until it answers, check / and /info with curl and python3 inside (and uname -m on
# linux/arm64, as the example's test_arm64_only does), remove.
# Usage: plain_script.sh CONTEXT BASE_IMAGE PLATFORM...
# With SKIP_BUILD=1 the images of an earlier run are used as they are (for the benchmark's floor).
set -euo pipefail
context=$1 base=$2
shift 2
machine_of() { case "$1" in linux/amd64) echo x86_64 ;; linux/arm64) echo aarch64 ;; linux/arm/v7) echo armv7l ;; esac; }
for platform in "$@"; do
  tag="bench-script/example:$(echo "$platform" | tr / -)"
  [ "${SKIP_BUILD:-}" = 1 ] || docker buildx build --quiet --platform "$platform" --load -t "$tag" --build-arg "BASE_IMAGE=$base" "$context" >/dev/null
  id=$(docker run -d --platform "$platform" -p 127.0.0.1::8000 "$tag")
  trap 'docker rm -f "$id" >/dev/null 2>&1 || true' EXIT
  port=$(docker port "$id" 8000/tcp | head -n1 | sed 's/.*://')
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
    sleep 0.2
  done
  machine=$(machine_of "$platform")
  [ "$(curl -fsS "http://127.0.0.1:$port/")" = "CPU Architecture: $machine" ]
  curl -fsS "http://127.0.0.1:$port/info" | grep -q "\"machine\": \"$machine\""
  [ "$(docker exec "$id" python3 -c 'import platform; print(platform.machine())')" = "$machine" ]
  [ "$platform" != linux/arm64 ] || [ "$(docker exec "$id" uname -m)" = aarch64 ]
  docker rm -f "$id" >/dev/null
  trap - EXIT
done
