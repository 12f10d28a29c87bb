/* The minimal single-threaded C epoll server: the floor of what one core can do per message. Same
 * command line and start-up line as every server of the benchmark (--port P --mode echo|sink|source
 * --total N, prints "LISTENING <port>", exits when stdin closes; sink-buffered is sink here, since the
 * read buffer is ours already). Level-triggered epoll; what the kernel would not take yet waits in a
 * per-connection copy. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
enum mode { ECHO, SINK, SOURCE };

struct conn {
  int fd;
  char *pending; /* echo: bytes read but not yet written back */
  size_t off, len;
  long long left; /* source: bytes still to send */
};

static enum mode mode = ECHO;
static long long total;
static int ep;
static char buf[CHUNK];

static void drop(struct conn *c) {
  close(c->fd);
  free(c->pending);
  free(c);
}

static void want_out(struct conn *c, int on) {
  struct epoll_event ev = {.events = on ? EPOLLOUT : EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is pending; returns 0 when all of it went, 1 when the kernel is full, -1 on error. */
static int flush(struct conn *c) {
  while (c->off < c->len) {
    ssize_t n = write(c->fd, c->pending + c->off, c->len - c->off);
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    c->off += (size_t)n;
  }
  c->off = c->len = 0;
  return 0;
}

static int pump(struct conn *c) {
  while (c->left > 0) {
    size_t want = c->left < CHUNK ? (size_t)c->left : CHUNK;
    ssize_t n = write(c->fd, buf, want);
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    c->left -= n;
  }
  return 0;
}

static void on_readable(struct conn *c) {
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n == 0) return drop(c);
    if (n < 0) {
      if (errno != EAGAIN) drop(c);
      return;
    }
    if (mode != ECHO) continue;
    ssize_t w = write(c->fd, buf, (size_t)n);
    if (w < 0 && errno != EAGAIN) return drop(c);
    if (w < 0) w = 0;
    if (w < n) {
      /* Hold the rest and stop reading until the kernel takes it. */
      c->pending = malloc((size_t)(n - w));
      memcpy(c->pending, buf + w, (size_t)(n - w));
      c->off = 0;
      c->len = (size_t)(n - w);
      want_out(c, 1);
      return;
    }
    if (n < (ssize_t)sizeof buf) return;
  }
}

static void on_writable(struct conn *c) {
  if (mode == SOURCE) {
    int r = pump(c);
    if (r != 1) drop(c);
    return;
  }
  int r = flush(c);
  if (r < 0) return drop(c);
  if (r == 0) {
    free(c->pending);
    c->pending = NULL;
    want_out(c, 0);
  }
}

int main(int argc, char **argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--total")) total = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--mode")) mode = !strncmp(argv[i + 1], "sink", 4) ? SINK : !strcmp(argv[i + 1], "source") ? SOURCE : ECHO;
  }
  signal(SIGPIPE, SIG_IGN); /* a client that went away is an error to handle, not a reason to die */
  memset(buf, 'x', sizeof buf);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) return perror("listen"), 1;
  socklen_t alen = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &alen);
  printf("LISTENING %d\n", ntohs(a.sin_port));
  fflush(stdout);

  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  static int stdin_tag;
  ev.data.ptr = &stdin_tag;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &stdin_tag) {
        if (read(0, buf, sizeof buf) <= 0) return 0;
        memset(buf, 'x', sizeof buf);
      } else if (p == NULL) {
        int fd;
        while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *c = calloc(1, sizeof *c);
          c->fd = fd;
          c->left = total;
          struct epoll_event cev = {.events = mode == SOURCE ? EPOLLOUT : EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
      } else if (evs[i].events & EPOLLOUT) {
        on_writable(p);
      } else {
        on_readable(p);
      }
    }
  }
}
