# Sorts the samples of a perf.data by thread into buckets (see run.sh).
import sys, subprocess, collections
data = sys.argv[1]
out = subprocess.run(['perf','script','-i',data,'-F','comm,tid,ip,sym,dso'], capture_output=True, text=True).stdout
samples = out.split('\n\n')
b = collections.Counter(); per = collections.Counter(); total = 0
for s in samples:
    lines = [l.strip() for l in s.strip().split('\n') if l.strip()]
    if not lines: continue
    head = lines[0]; comm = head.split()[0]
    stack = ' '.join(lines[1:])
    total += 1
    if 'tcp_sendmsg' in stack or 'tcp_recvmsg' in stack or 'sock_read_iter' in stack or 'sock_write_iter' in stack:
        k = 'TCP send/recv syscalls (writev/read)'
    elif any(x in stack for x in ('eventfd', 'futex', 'ep_poll', 'epoll', '__schedule', 'finish_task_switch', 'try_to_wake_up')):
        k = 'sleep/wake: epoll_wait, futex, eventfd, context switches'
    elif '[kernel.kallsyms]' in lines[1] if len(lines)>1 else False:
        k = 'other kernel'
    else:
        dso = lines[1].split('(')[-1].rstrip(')') if len(lines)>1 else '?'
        k = 'user: ' + dso.split('/')[-1]
    b[(comm, k)] += 1; per[comm] += 1
for comm in per:
    print(f'{comm}: {per[comm]/total*100:.1f}% of server samples')
    for (c,k),n in sorted(b.items(), key=lambda x:-x[1]):
        if c==comm and n/total>0.005: print(f'   {n/total*100:5.1f}%  {k}')
