#!/usr/bin/env bash
# Profiles one server of the benchmark under one load with perf (software cpu-clock sampling, so it
# works in VMs without hardware counters), then sorts the server's samples by thread into buckets: TCP
# syscalls, sleeping and waking, other kernel work, user code by library.
#
#   benches/profile/run.sh protoloop echo 1024 32 [seconds]     # echo: size, connections
#   benches/profile/run.sh node-net sink 0 0                    # bulk receive of 2 GiB
#   PROTOLOOP_IO_THREADS=2 benches/profile/run.sh protoloop echo 1024 32
#
# Needs perf (Debian: linux-perf) and a built harness (`npm run bench -- --quick --only churn` builds
# everything). Leaves perf.data in /tmp/protoloop-profile/<peer>-<mode>.data for `perf report -i`.
set -euo pipefail
cd "$(dirname "$0")/../.."
peer=$1 mode=$2 size=${3:-1024} conns=${4:-32} secs=${5:-4}
case $peer in
  protoloop) cmd=(node --perf-basic-prof benches/servers/protoloop.cjs) ;;
  node-net) cmd=(node --perf-basic-prof benches/servers/node-net.cjs) ;;
  tokio) cmd=(target/bench/release/tokio-server) ;;
  c-epoll) cmd=(target/bench/c-epoll) ;;
  asyncio) cmd=(python3 benches/servers/asyncio_server.py) ;;
  *) echo "unknown peer $peer" >&2; exit 2 ;;
esac
out=/tmp/protoloop-profile; mkdir -p $out; data=$out/$peer-$mode.data
coproc S { exec "${cmd[@]}" --mode "$mode"; }
read -r -u "${S[0]}" line; port=${line#LISTENING }
lg=target/bench/release/loadgen
if [ "$mode" = echo ]; then
  $lg echo --addr 127.0.0.1:$port --size $size --conns $conns --duration 1 >/dev/null   # warm-up
  perf record -e cpu-clock -F 999 -g -p $S_PID -o $data -- sleep $secs >/dev/null 2>&1 &
  rec=$!
  $lg echo --addr 127.0.0.1:$port --size $size --conns $conns --duration $secs --server-pid $S_PID
else
  $lg bulk-up --addr 127.0.0.1:$port --total $((256 << 20)) >/dev/null                  # warm-up
  perf record -e cpu-clock -F 999 -g -p $S_PID -o $data >/dev/null 2>&1 &
  rec=$!
  sleep 0.3
  $lg bulk-up --addr 127.0.0.1:$port --total $((2048 << 20)) --server-pid $S_PID
  kill -INT $rec
fi
wait $rec || true
exec {S[1]}>&-
wait $S_PID 2>/dev/null || true
python3 benches/profile/buckets.py $data
echo "top symbols:"
perf report -i $data --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null | grep '%' | head -15
