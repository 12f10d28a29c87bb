#!/usr/bin/env python3
# The server's user and system CPU per request of echo servers, measured in turns (A B C A B C ...) with
# the bench's load generator (built by `npm run bench`), medians printed at the end: the split of CPU
# time that the harness's table sums up, for A/Bs of user-space work on a shared machine, where
# throughput is noise. Each argument is name=server script (benches/servers/protoloop.cjs of this tree
# or of a copy of another checkout, see PROTOLOOP_ALT_TREE in benches/README.md; node-net.cjs;
# asyncio_server.py, on uvloop when the name contains "uvloop").
#   SIZE=1024 CONNS=1 ROUNDS=5 SECS=3 NODE=node python3 benches/profile/cpu-ab.py A=<tree>/benches/servers/protoloop.cjs B=benches/servers/protoloop.cjs node=benches/servers/node-net.cjs
import json, os, subprocess, sys, statistics
size, conns, rounds, secs = int(os.environ.get('SIZE', 1024)), int(os.environ.get('CONNS', 1)), int(os.environ.get('ROUNDS', 5)), os.environ.get('SECS', '3')
node = os.environ.get('NODE', 'node')
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
lg = os.path.join(ROOT, 'target', 'bench', 'release', 'loadgen')
servers = {}
for arg in sys.argv[1:]:
    name, script = arg.split('=', 1)
    # A Python server (benches/servers/asyncio_server.py) runs on uvloop when its name says so.
    cmd = ['python3', script] + (['--uvloop'] if 'uvloop' in name else []) if script.endswith('.py') else [node, '--expose-gc', script]
    p = subprocess.Popen(cmd + ['--port', '0', '--mode', 'echo', '--total', '0'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    servers[name] = (p, int(line.split()[1]))
res = {n: [] for n in servers}
for n, (p, port) in servers.items():  # warm-up
    subprocess.run([lg, 'echo', '--addr', f'127.0.0.1:{port}', '--size', str(size), '--conns', str(conns), '--duration', '1'], capture_output=True)
for r in range(rounds):
    for n, (p, port) in servers.items():
        out = subprocess.run([lg, 'echo', '--addr', f'127.0.0.1:{port}', '--size', str(size), '--conns', str(conns), '--duration', secs, '--server-pid', str(p.pid)], capture_output=True, text=True).stdout
        j = json.loads(out.strip().splitlines()[-1])
        req = j['requests']; u = j['server_cpu']['user'] / req * 1e6; s = j['server_cpu']['sys'] / req * 1e6
        res[n].append((j['rps'], u, s))
        print(f"{n:12s} rps {j['rps']:9.0f} user {u:5.2f} sys {s:5.2f} us/req", flush=True)
print('medians:')
for n, v in res.items():
    print(f"{n:12s} rps {statistics.median(x[0] for x in v):9.0f} user {statistics.median(x[1] for x in v):5.2f} sys {statistics.median(x[2] for x in v):5.2f} total {statistics.median(x[1]+x[2] for x in v):5.2f} us/req")
for p, _ in servers.values():
    p.stdin.close(); p.wait(timeout=10)
