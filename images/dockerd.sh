#!/usr/bin/env bash
# A Docker engine of naslid's own, for `make test-containers`: its own socket, data root and
# exec root, no bridge and no firewall rules (--bridge=none --iptables=false; containers use the
# host network), stopped by its pid.
#   images/dockerd.sh start   # prints DOCKER_HOST=unix://... on success; one line and exit 1 if
#                             # dockerd cannot start here
#   images/dockerd.sh stop    # stops it by its pid and checks nothing is left behind
# State: NASLID_DOCKER_ROOT (default /var/cache/naslid/docker: the data root, kept between runs
# so the base and the image's layers are cached) and NASLID_DOCKER_RUN (default
# /run/naslid-docker: socket, pidfile, exec root, log).
set -euo pipefail
data=${NASLID_DOCKER_ROOT:-/var/cache/naslid/docker}
run=${NASLID_DOCKER_RUN:-/run/naslid-docker}
sock=$run/docker.sock pid=$run/dockerd.pid log=$run/dockerd.log

fail() { echo "dockerd: $*" >&2; exit 1; }

case ${1:-} in
start)
  command -v dockerd >/dev/null || fail "not installed here (apt-get install docker.io): cannot run the containers"
  mkdir -p "$data" "$run/exec"
  if [[ -f $pid ]] && kill -0 "$(cat "$pid")" 2>/dev/null; then
    fail "already running (pid $(cat "$pid")); stop it with images/dockerd.sh stop"
  fi
  rm -f "$pid" "$sock"
  dockerd -H "unix://$sock" --data-root "$data" --exec-root "$run/exec" --pidfile "$pid" \
    --bridge=none --iptables=false --ip-masq=false >"$log" 2>&1 &
  for _ in $(seq 1 60); do
    if DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then
      echo "DOCKER_HOST=unix://$sock"
      exit 0
    fi
    if ! kill -0 $! 2>/dev/null; then break; fi
    sleep 0.5
  done
  kill "$!" 2>/dev/null || true
  fail "cannot start here: $(grep -m1 -iE 'level=(fatal|error)' "$log" || tail -n1 "$log")"
  ;;
stop)
  [[ -f $pid ]] || { echo "dockerd: not running"; exit 0; }
  p=$(cat "$pid")
  kill "$p" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$p" 2>/dev/null; then kill -9 "$p"; sleep 1; fi
  # dockerd leaves its default network namespace bind-mounted under the exec root
  while read -r target; do umount "$target" 2>/dev/null || true; done \
    < <(awk -v r="$run/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r)
  left=""
  awk -v r="$run/" 'index($2, r) == 1' /proc/mounts | grep -q . && left+=" mounts"
  pgrep -f -- "--exec-root $run/exec" >/dev/null && left+=" dockerd"
  pgrep -f -- "$run/exec/containerd" >/dev/null && left+=" containerd"
  ip link show docker0 >/dev/null 2>&1 && left+=" bridge docker0"
  if command -v iptables >/dev/null && iptables -S 2>/dev/null | grep -qi docker; then left+=" iptables rules"; fi
  rm -f "$pid" "$sock"
  [[ -n $left ]] || rm -rf "$run/exec"
  [[ -z $left ]] || fail "stopped pid $p but left behind:$left"
  echo "dockerd: stopped (pid $p); no process, mount, bridge or rule left"
  ;;
*) echo "usage: images/dockerd.sh start|stop" >&2; exit 2 ;;
esac
