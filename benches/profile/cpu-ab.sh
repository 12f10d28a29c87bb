#!/usr/bin/env bash
# A/B of two addon builds on one proxy case by the server's CPU per request, user and system apart
# (getrusage of the proxy, through the load generator's --server-pid): rounds alternate the builds,
# each a fresh proxy warmed up for 0.5 s, then measured for $SECS s of echo 1 KiB × 32 through it.
#
#   benches/profile/cpu-ab.sh A.node B.node [impl=forward] [rounds=10] [secs=4]
#
# Prints one line per run and the medians. Needs a built harness (see case.sh). cpu-ab.py does the
# same for echo servers (no upstream), by server script rather than by addon.
set -euo pipefail
cd "$(dirname "$0")/../.."
a=$1 b=$2 impl=${3:-forward} rounds=${4:-10} secs=${SECS:-${5:-4}}
lg=target/bench/release/loadgen
coproc U { exec target/bench/c-epoll --port 0 --mode echo; }
read -r -u "${U[0]}" l; up=${l#LISTENING }
one() {
  local addon=$1 tag=$2
  coproc P { NAPI_RS_NATIVE_LIBRARY_PATH=$addon exec node --expose-gc benches/servers/proxy.cjs --impl $impl --upstream-echo $up --upstream-sink $up --port 0 --mode proxy-echo; }
  local line; read -r -u "${P[0]}" line; local port=${line#LISTENING }
  $lg echo --addr 127.0.0.1:$port --size 1024 --conns 32 --duration 0.5 >/dev/null
  $lg echo --addr 127.0.0.1:$port --size 1024 --conns 32 --duration $secs --server-pid $P_PID |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);const r=j.requests;
      console.log(`${process.argv[1]} rps ${j.rps.toFixed(0)} user ${(j.server_cpu.user/r*1e6).toFixed(2)} sys ${(j.server_cpu.sys/r*1e6).toFixed(2)} total ${((j.server_cpu.user+j.server_cpu.sys)/r*1e6).toFixed(2)} us/req`)})' $tag
  kill $P_PID; wait $P_PID 2>/dev/null || true
}
for r in $(seq $rounds); do
  if (( r % 2 )); then one $a A; one $b B; else one $b B; one $a A; fi
done | tee /tmp/cpu-ab.$$.log
kill $U_PID 2>/dev/null || true
for t in A B; do
  grep "^$t " /tmp/cpu-ab.$$.log | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const rows=s.trim().split("\n").map(l=>l.split(" "));
    const med=(i)=>{const v=rows.map(r=>+r[i]).sort((x,y)=>x-y);const m=v.length>>1;return v.length%2?v[m]:(v[m-1]+v[m])/2};
    console.log(`median ${process.argv[1]}: rps ${med(2)} user ${med(4).toFixed(2)} sys ${med(6).toFixed(2)} total ${med(8).toFixed(2)} us/req (${rows.length} runs)`)})' $t
done
rm -f /tmp/cpu-ab.$$.log
