#!/usr/bin/env bash
# The base image where no registry can be reached (this machine, CI, an air-gapped site): Debian
# bookworm's own Python 3.11 with venv and pip, from Debian's packages (mmdebstrap, minbase),
# imported into the Docker engine as TAG. The same Python as python:3.11-slim-bookworm's
# distribution, without a registry. About 1 minute and 235 MB.
#   images/base/build.sh TAG          (make base-image; needs root, mmdebstrap and an engine)
# An air-gapped site with a Debian mirror sets MIRROR=http://mirror.example/debian.
set -euo pipefail
tag=${1:?usage: images/base/build.sh TAG}
docker version >/dev/null 2>&1 || { echo "make base-image: no Docker engine reachable here (DOCKER_HOST=${DOCKER_HOST:-unset})"; exit 1; }
command -v mmdebstrap >/dev/null || { echo "make base-image: mmdebstrap not installed (apt-get install mmdebstrap)"; exit 1; }
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag: present"
  exit 0
fi
start=$(date +%s)
# shellcheck disable=SC2086
mmdebstrap --quiet --variant=minbase \
  --include=python3,python3-pip,python3-venv,ca-certificates \
  bookworm - ${MIRROR:-} \
  | docker import \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      --message "naslid base: mmdebstrap minbase bookworm python3 python3-venv" \
      - "$tag" >/dev/null
for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "${tag%:*}"); do
  [[ $old == "$tag" ]] || docker image rm "$old" >/dev/null  # one base is kept
done
echo "base image $tag: built in $(( $(date +%s) - start )) s, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
