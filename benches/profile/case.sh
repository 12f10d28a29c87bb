#!/usr/bin/env bash
# Profiles the process under test of the udp, tls and proxy cases with perf (cpu-clock sampling), as
# run.sh does for the stream cases; leaves /tmp/protoloop-profile/<case>-<impl>-<what>.data for
# `perf report -i ... --no-children --sort comm,sym`.
#
#   benches/profile/case.sh udp protoloop|node 64|1024           3 s of UDP echo, 64 datagrams in flight
#   benches/profile/case.sh tls protoloop|node                    1 GiB received over TLS
#   benches/profile/case.sh proxy callbacks|forward|node echo|sink  through a proxy to the C epoll upstream
#
# Needs perf and a built harness (`npm run bench -- --quick --only udp` builds everything). Extra env for
# the server under test goes in PENV (PENV=PROTOLOOP_IO_THREADS=2; PENV=NAPI_RS_NATIVE_LIBRARY_PATH=other.node for
# another build), PFREQ the sampling rate (999 Hz) and PSECS the seconds sampled (3), for a finer profile.
set -euo pipefail
cd "$(dirname "$0")/../.."
kase=$1 impl=$2 what=${3:-}
out=/tmp/protoloop-profile; mkdir -p $out; data=$out/$kase-$impl${what:+-$what}.data
lg=target/bench/release/loadgen
node=(env ${PENV:-PROTOLOOP_PROFILE=1} node --perf-basic-prof)
perf_args=(-e cpu-clock -F ${PFREQ:-999} -g -o $data)
case $kase in
  udp)
    coproc P { exec "${node[@]}" benches/servers/udp.cjs --impl $impl --port 0 --mode udp-echo; }
    read -r -u "${P[0]}" l; port=${l#LISTENING }
    $lg udp --addr 127.0.0.1:$port --size $what --duration 0.5 >/dev/null
    perf record "${perf_args[@]}" -p $P_PID -- sleep ${PSECS:-3} >/dev/null 2>&1 & rec=$!
    $lg udp --addr 127.0.0.1:$port --size $what --duration ${PSECS:-3} --server-pid $P_PID
    wait $rec || true ;;
  tls)
    dir=$(mktemp -d)
    (cd $dir && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out cert.pem \
      -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE 2>/dev/null)
    export PROTOLOOP_BENCH_TLS=$dir
    coproc P { exec "${node[@]}" benches/servers/tls.cjs --impl $impl --port 0 --mode tls-sink; }
    read -r -u "${P[0]}" l; port=${l#LISTENING }
    $lg tls-bulk-up --addr 127.0.0.1:$port --ca $dir/cert.pem --total $((128 << 20)) >/dev/null
    perf record "${perf_args[@]}" -p $P_PID >/dev/null 2>&1 & rec=$!
    sleep 0.3
    $lg tls-bulk-up --addr 127.0.0.1:$port --ca $dir/cert.pem --total $((1024 << 20)) --server-pid $P_PID
    kill -INT $rec; wait $rec || true
    rm -rf $dir ;;
  proxy)
    coproc U { exec target/bench/c-epoll --port 0 --mode $what; }
    read -r -u "${U[0]}" l; up=${l#LISTENING }
    coproc P { exec "${node[@]}" benches/servers/proxy.cjs --impl $impl --upstream-$what $up --port 0 --mode proxy-$what; }
    read -r -u "${P[0]}" l; port=${l#LISTENING }
    if [ "$what" = echo ]; then
      $lg echo --addr 127.0.0.1:$port --size 1024 --conns 32 --duration 0.5 >/dev/null
      perf record "${perf_args[@]}" -p $P_PID -- sleep ${PSECS:-3} >/dev/null 2>&1 & rec=$!
      $lg echo --addr 127.0.0.1:$port --size 1024 --conns 32 --duration ${PSECS:-3} --server-pid $P_PID
      wait $rec || true
    else
      $lg bulk-up --addr 127.0.0.1:$port --total $((128 << 20)) >/dev/null
      perf record "${perf_args[@]}" -p $P_PID >/dev/null 2>&1 & rec=$!
      sleep 0.3
      $lg bulk-up --addr 127.0.0.1:$port --total $((1024 << 20)) --server-pid $P_PID
      kill -INT $rec; wait $rec || true
    fi
    kill $U_PID 2>/dev/null || true ;;
  *) echo "unknown case $kase (udp, tls, proxy)" >&2; exit 2 ;;
esac
kill $P_PID 2>/dev/null || true
echo "perf data: $data" >&2
