#!/usr/bin/env bash
# The wheelhouse: exactly the wheels of images/naslid/requirements.lock, downloaded on the host
# by its pip (`pip wheel`, from the indexes and caches pip is configured with: here torch and the CUDA wheels
# come from this machine's disk) into DIR, keyed by the lock's hash so that a cache under a
# fixed path (/var/cache/naslid) is reused until the pins change. Other wheelhouses beside it
# are removed (one is kept). About 4.5 GB.
#   images/wheelhouse.sh LOCK DIR     (make wheelhouse)
set -euo pipefail
lock=${1:?usage: images/wheelhouse.sh LOCK DIR} dir=${2:?usage: images/wheelhouse.sh LOCK DIR}
py=${PY:-python3.11}
if [[ -f $dir/.complete ]]; then
  echo "wheelhouse $dir: present ($(ls "$dir"/*.whl | wc -l) wheels)"
  exit 0
fi
start=$(date +%s)
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
# pip wheel, not download: a few pins (kfp, kfp-server-api) are published as sdists only, and
# are built into wheels here (pip's wheel cache makes that a copy after the first time).
"$py" -m pip wheel --quiet --disable-pip-version-check --no-deps -r "$lock" -w "$dir.tmp" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
want=$(grep -cvE '^\s*(#|$)' "$lock")
got=$(ls "$dir.tmp"/*.whl | wc -l)
[[ $got -eq $want ]] || { echo "make wheelhouse: $got wheels for $want pins in $lock"; exit 1; }
cp "$lock" "$dir.tmp/requirements.lock"
touch "$dir.tmp/.complete"
for old in "$(dirname "$dir")"/wheelhouse-*; do
  [[ $old == "$dir.tmp" || $old == "$dir" || ! -d $old ]] || rm -rf "$old"
done
mv "$dir.tmp" "$dir"
echo "wheelhouse $dir: $got wheels, $(du -sh "$dir" | cut -f1), in $(( $(date +%s) - start )) s"
