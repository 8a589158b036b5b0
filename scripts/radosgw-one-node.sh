#!/usr/bin/env bash
# Bring up a throwaway one-node Ceph cluster (ceph-mon + one memstore ceph-osd + radosgw)
# bound to 127.0.0.1 only, everything under DIR, so tests can run against a real S3 implementation.
#
#   scripts/radosgw-one-node.sh [start] DIR PORT   # prints endpoint and keys; PIDs go to DIR/run/*.pid
#   scripts/radosgw-one-node.sh stop DIR           # kills those PIDs (radosgw, then osd, then mon)
#
# Needs the Debian 12 packages (16.2.x):
#   apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common
# No mgr is started. Ceph's internal cephx keys live in DIR/keyring.
# The mon listens on 127.0.0.1:$MON_PORT (default PORT+1), the OSD on 127.0.0.1 ephemeral ports.
# Data lives in memory (osd objectstore = memstore, 1 GiB by default: MEMSTORE_BYTES).
set -euo pipefail

usage() { echo "usage: $0 [start] DIR PORT | $0 stop DIR" >&2; exit 2; }

# A start that fails half-way stops what it had started.
cleanup_dir=
trap 'rc=$?; if [[ $rc -ne 0 && -n $cleanup_dir ]]; then stop "$cleanup_dir"; fi' EXIT

stop() {
  local dir=$1 name pid
  for name in client.rgw osd.0 mon.a; do
    [[ -f $dir/run/$name.pid ]] || continue
    pid=$(cat "$dir/run/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    fi
    rm -f "$dir/run/$name.pid"
  done
}

start() {
  local dir=$1 port=$2
  local mon_port=${MON_PORT:-$((port + 1))}
  local bytes=${MEMSTORE_BYTES:-1073741824}
  local bin
  for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl; do
    command -v "$bin" >/dev/null || { echo "$bin not found: apt-get install radosgw ceph-mon ceph-osd ceph-common curl" >&2; exit 1; }
  done
  for p in "$port" "$mon_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "127.0.0.1:$p is taken" >&2; exit 1; fi
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -e $dir/ceph.conf ]]; then echo "$dir already holds a cluster; stop it and use an empty dir" >&2; exit 1; fi
  cleanup_dir=$dir
  mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd" "$dir/rgw"
  local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
  local conf=$dir/ceph.conf
  cat > "$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
keyring = $dir/keyring
auth allow insecure global id reclaim = false
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon data = $dir/mon/\$name
osd data = $dir/osd/\$name
osd objectstore = memstore
memstore device bytes = $bytes
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
mon data avail warn = 1
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $dir/rgw
rgw dns name = 127.0.0.1
rgw init timeout = 120
EOF
  local c=(-c "$conf")

  # cephx keys for every daemon, imported into the mon's auth database by mkfs
  local kr=$dir/keyring
  ceph-authtool --create-keyring "$kr" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$kr" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$kr" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$kr" --gen-key -n client.rgw --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null

  # mon: a monmap with one mon at 127.0.0.1, then mkfs and start
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  ceph-mon "${c[@]}" --mkfs -i a --monmap "$dir/monmap" --keyring "$kr"
  ceph-mon "${c[@]}" -i a 2>>"$dir/log/mon.a.stderr"
  ceph "${c[@]}" --connect-timeout 30 -s >/dev/null

  # one memstore OSD
  local osd_uuid; osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  local id; id=$(ceph "${c[@]}" osd new "$osd_uuid")
  mkdir -p "$dir/osd/osd.$id"
  ceph-osd "${c[@]}" -i "$id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
  ceph-osd "${c[@]}" -i "$id" 2>>"$dir/log/osd.$id.stderr"
  for _ in $(seq 1 120); do
    ceph "${c[@]}" osd dump 2>/dev/null | grep -q "^osd.$id up" && break
    sleep 0.5
  done
  ceph "${c[@]}" osd dump | grep -q "^osd.$id up" || { echo "osd.$id did not come up; see $dir/log" >&2; exit 1; }

  # radosgw (it creates its pools on first start) and an S3 user
  radosgw "${c[@]}" -n client.rgw 2>>"$dir/log/client.rgw.stderr"
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/" || { echo "radosgw is not answering; see $dir/log" >&2; exit 1; }
  local access=${S3_ACCESS_KEY:-WHARFTESTACCESS} secret=${S3_SECRET_KEY:-wharf-test-secret-key}
  radosgw-admin "${c[@]}" user create --uid=wharf --display-name=wharf \
    --access-key="$access" --secret-key="$secret" >/dev/null
  echo "S3_ENDPOINT=http://127.0.0.1:$port"
  echo "S3_ACCESS_KEY=$access"
  echo "S3_SECRET_KEY=$secret"
  echo "S3_REGION=us-east-1"
  echo "PIDS: $(cat "$dir"/run/*.pid | tr '\n' ' ')(in $dir/run/*.pid)"
  cleanup_dir=
}

case ${1:-} in
  start) [[ $# -eq 3 ]] || usage; start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  *) [[ $# -eq 2 ]] || usage; start "$1" "$2" ;;
esac
