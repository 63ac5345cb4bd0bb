#!/usr/bin/env bash
# `make test-containers`: the pipeline in real containers, from nothing. Installs the engine and
# mmdebstrap if missing (Debian packages, as root), starts a dockerd of its own
# (images/dockerd.sh), builds the base (make base-image) and the image (make image; caches
# under /var/cache/naslid, keyed by their inputs), runs tests/test_containers.py with
# NASLID_REQUIRE_DOCKER=1 (a missing engine or image fails those tests, never skips them),
# then stops dockerd by its pid and checks that no process, bridge or rule is left.
# Environment (the Makefile passes it): PY, BIN, IMAGE, BASE, LOCK, WHEELHOUSE, WHEELHOUSE_PORT,
# SOURCE, REVISION (the labels).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${IMAGE:?}" "${BASE:?}" "${LOCK:?}" "${WHEELHOUSE:?}" "${BIN:?}"
start=$(date +%s)
if ! command -v dockerd >/dev/null || ! command -v mmdebstrap >/dev/null; then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "make test-containers: needs dockerd and mmdebstrap (as root: apt-get install docker.io mmdebstrap)"
    exit 1
  fi
  pkgs=(docker.io mmdebstrap)
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
fi
line=$("$here/dockerd.sh" start 2>&1) || { echo "make test-containers: $line"; exit 1; }
export "${line?}"  # DOCKER_HOST=unix://...
trap 'rc=$?; "$here/dockerd.sh" stop || rc=1; exit $rc' EXIT
"$here/base/build.sh" "$BASE"
PY=${PY:-python3.11} "$here/build-image.sh" "$IMAGE" "$BASE" "$LOCK" "$WHEELHOUSE" "${WHEELHOUSE_PORT:-38471}"
NASLID_REQUIRE_DOCKER=1 NASLID_IMAGE=$IMAGE "$BIN/python" -m pytest -p no:cacheprovider -m '' \
  tests/test_containers.py
echo "make test-containers: $(( $(date +%s) - start )) s in all"
