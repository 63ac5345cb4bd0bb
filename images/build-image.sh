#!/usr/bin/env bash
# `make image`: build images/naslid/Dockerfile as IMAGE from BASE, installing the wheelhouse,
# which is served on 127.0.0.1:PORT (python -m http.server, stopped by its pid) for the build
# only; then print the image's size and remove older naslid images (one is kept).
# The engine and the base are checked first (one line each when missing), then the wheelhouse
# is made if absent (images/wheelhouse.sh).
#   images/build-image.sh IMAGE BASE LOCK WHEELHOUSE [PORT]
set -euo pipefail
usage="usage: images/build-image.sh IMAGE BASE LOCK WHEELHOUSE [PORT]"
image=${1:?$usage} base=${2:?$usage} lock=${3:?$usage} wheels=${4:?$usage} port=${5:-38471}
py=${PY:-python3.11}
if ! docker version >/dev/null 2>&1; then
  echo "make image: no Docker engine reachable here (DOCKER_HOST=${DOCKER_HOST:-unset}); start one (make test-containers does) or build where one runs"
  exit 1
fi
case $base in
  *@sha256:*) ;;
  naslid-base:*) docker image inspect "$base" >/dev/null 2>&1 || { echo "make image: base $base not built (make base-image)"; exit 1; } ;;
  *) echo "make image: BASE=$base is not pinned by digest (give NAME@sha256:DIGEST, or build one with make base-image)"; exit 1 ;;
esac
PY=$py "$(dirname "$0")/wheelhouse.sh" "$lock" "$wheels"
"$py" -m http.server --bind 127.0.0.1 --directory "$wheels" "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 40); do
  "$py" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/requirements.lock', timeout=1)" 2>/dev/null && break
  kill -0 $server 2>/dev/null || { echo "make image: cannot serve the wheelhouse on 127.0.0.1:$port (port taken? set WHEELHOUSE_PORT)"; exit 1; }
  sleep 0.25
done
start=$(date +%s)
DOCKER_BUILDKIT=0 docker build --network host -f images/naslid/Dockerfile \
  --build-arg BASE="$base" \
  --build-arg WHEELHOUSE_URL="http://127.0.0.1:$port/" \
  --build-arg SOURCE="${SOURCE:-unknown}" \
  --build-arg REVISION="${REVISION:-unknown}" \
  -t "$image" .
secs=$(( $(date +%s) - start ))
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "image $image: built in ${secs} s, $(awk -v s="$size" 'BEGIN{printf "%.2f GB", s/1e9}')"
repo=${image%:*}
for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo"); do
  [[ $old == "$image" ]] || docker image rm "$old" >/dev/null
done
docker image prune -f >/dev/null
