// Micro-benchmarks for src/live/calibrate.ts (live --calibrate): userfaultfd placement, the fault
// round trip, small socket operations, usleep(100), the page load's memcpy + mlock + munlock and a
// semaphore's wake-up.
// Prints one "name median p10 p90 samples" line (ns) per sample set.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define N 2000

static uint64_t now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}
static void report(const char *name, uint64_t *v, int n) {
  qsort(v, n, sizeof *v, cmp);
  printf("%s %llu %llu %llu %d\n", name, (unsigned long long)v[n / 2], (unsigned long long)v[n / 10],
         (unsigned long long)v[n * 9 / 10], n);
}

static int open_uffd(void) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
  }
  if (fd < 0) return -1;
  struct uffdio_api api = { .api = UFFD_API };
  if (ioctl(fd, UFFDIO_API, &api) < 0) return -1;
  return fd;
}
static char *region(int uffd, size_t len) {
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct uffdio_register r = { .range = { (uintptr_t)p, len }, .mode = UFFDIO_REGISTER_MODE_MISSING };
  if (p == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &r) < 0) { perror("register"); exit(1); }
  return p;
}
static void copy(int uffd, char *dst, char *src, size_t len) {
  struct uffdio_copy c = { .dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len, .mode = 0 };
  if (ioctl(uffd, UFFDIO_COPY, &c) < 0) { perror("UFFDIO_COPY"); exit(1); }
}

static uint64_t v[N];

/* The fault round trip: t0 touch, t1 poll returns, t2 uffd_msg read, t3 UFFDIO_COPY returns, t4 touch done
   (fault_place_resume = t4 − t2: the copy and the toucher's wake-up). */
static int rt_uffd;
static char *rt_mem, *rt_src;
static volatile uint64_t t0, t1, t2, t3;
static volatile int handled;
static void *handler(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) {
    struct pollfd p = { .fd = rt_uffd, .events = POLLIN };
    if (poll(&p, 1, -1) < 0) exit(1);
    t1 = now();
    struct uffd_msg m;
    if (read(rt_uffd, &m, sizeof m) != sizeof m) { perror("read"); exit(1); }
    t2 = now();
    copy(rt_uffd, (char *)(uintptr_t)(m.arg.pagefault.address & ~(uint64_t)(PAGE - 1)), rt_src, PAGE);
    t3 = now();
    handled = i + 1;
  }
  return NULL;
}
static void round_trip(void) {
  static uint64_t wake[N], readmsg[N], cp[N], resume[N], total[N];
  handled = 0;
  rt_uffd = open_uffd();
  rt_mem = region(rt_uffd, (size_t)N * PAGE);
  rt_src = aligned_alloc(PAGE, PAGE);
  memset(rt_src, 7, PAGE);
  pthread_t th;
  pthread_create(&th, NULL, handler, NULL);
  for (int i = 0; i < N; i++) {
    usleep(200); // let the handler go back to sleep in poll()
    t0 = now();
    rt_mem[(size_t)i * PAGE] = 1;
    uint64_t t4 = now();
    while (handled <= i) {} // UFFDIO_COPY wakes the toucher before it returns: wait for t3
    wake[i] = t1 - t0, readmsg[i] = t2 - t1, cp[i] = t3 - t2, resume[i] = t4 - t2, total[i] = t4 - t0;
  }
  pthread_join(th, NULL);
  report("fault_wake", wake, N);
  report("fault_read_msg", readmsg, N);
  report("fault_copy", cp, N);
  report("fault_place_resume", resume, N);
  report("fault_round_trip", total, N);
}

static void placement(void) {
  int uffd = open_uffd();
  char *src = aligned_alloc(PAGE, 64 * PAGE);
  memset(src, 7, 64 * PAGE);
  char *mem = region(uffd, (size_t)N * 64 * PAGE);
  for (int i = 0; i < N; i++) {
    uint64_t a = now();
    copy(uffd, mem + (size_t)i * PAGE, src, PAGE);
    v[i] = now() - a;
  }
  report("uffd_copy_4k", v, N);
  char *mem64 = region(uffd, (size_t)N * 64 * PAGE);
  for (int i = 0; i < N; i++) {
    uint64_t a = now();
    copy(uffd, mem64 + (size_t)i * 64 * PAGE, src, 64 * PAGE);
    v[i] = now() - a;
  }
  report("uffd_copy_64x4k", v, N);
  char *memz = region(uffd, (size_t)N * PAGE);
  for (int i = 0; i < N; i++) {
    struct uffdio_zeropage z = { .range = { (uintptr_t)(memz + (size_t)i * PAGE), PAGE }, .mode = 0 };
    uint64_t a = now();
    if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) < 0) { perror("UFFDIO_ZEROPAGE"); exit(1); }
    v[i] = now() - a;
  }
  report("uffd_zeropage_4k", v, N);
}

/* Loopback TCP: 16-byte ping-pong RTT, a 16-byte write(), and read() of 32 KiB already queued. */
static void tcp(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t al = sizeof a;
  bind(ls, (struct sockaddr *)&a, sizeof a);
  listen(ls, 1);
  getsockname(ls, (struct sockaddr *)&a, &al);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  connect(c, (struct sockaddr *)&a, sizeof a);
  int s = accept(ls, NULL, NULL);
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char buf[32768];
  memset(buf, 1, sizeof buf);
  if (fork() == 0) {
    for (;;) {
      ssize_t n = read(s, buf, 16);
      if (n <= 0) _exit(0);
      if (write(s, buf, 16) != 16) _exit(1);
    }
  }
  for (int i = 0; i < N; i++) {
    uint64_t t = now();
    if (write(c, buf, 16) != 16 || read(c, buf, 16) != 16) exit(1);
    v[i] = now() - t;
  }
  report("tcp_rtt_16b", v, N);
  shutdown(c, SHUT_WR);
  close(c);
  close(s);
  /* Fresh pair, nobody reading: time a small write, then read()s of 32 KiB already queued. */
  c = socket(AF_INET, SOCK_STREAM, 0);
  connect(c, (struct sockaddr *)&a, sizeof a);
  s = accept(ls, NULL, NULL);
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (int i = 0; i < N; i++) {
    uint64_t t = now();
    if (write(c, buf, 16) != 16) exit(1);
    v[i] = now() - t;
    if (read(s, buf, 16) != 16) exit(1);
  }
  report("tcp_write_16b", v, N);
  int rounds = N / 4;
  for (int i = 0; i < rounds; i++) {
    if (write(c, buf, sizeof buf) != (ssize_t)sizeof buf) exit(1);
    usleep(50); // the data is queued before the read
    uint64_t t = now();
    size_t got = 0;
    while (got < sizeof buf) {
      ssize_t n = read(s, buf + got, sizeof buf - got);
      if (n <= 0) exit(1);
      got += (size_t)n;
    }
    v[i] = now() - t;
  }
  report("tcp_read_32k", v, rounds);
  for (int i = 0; i < rounds; i++) {
    if (write(c, buf, 4096) != 4096) exit(1);
    usleep(50);
    uint64_t t = now();
    size_t got = 0;
    while (got < 4096) {
      ssize_t n = read(s, buf + got, 4096 - got);
      if (n <= 0) exit(1);
      got += (size_t)n;
    }
    v[i] = now() - t;
  }
  report("tcp_read_4k", v, rounds);
}

/* QEMU's multifd handoff: the migration thread posts a semaphore, the channel thread wakes. */
static sem_t handoff, handed;
static volatile uint64_t woke;
static void *channel(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) {
    sem_wait(&handoff);
    woke = now();
    sem_post(&handed);
  }
  return NULL;
}
static void sem_wake(void) {
  pthread_t th;
  sem_init(&handoff, 0, 0);
  sem_init(&handed, 0, 0);
  pthread_create(&th, NULL, channel, NULL);
  for (int i = 0; i < N; i++) {
    usleep(200); /* the channel thread is asleep in sem_wait */
    uint64_t t = now();
    sem_post(&handoff);
    sem_wait(&handed);
    v[i] = woke - t;
  }
  pthread_join(th, NULL);
  report("sem_wake", v, N);
}

/* Xen's foreign-map retry, usleep(100): how long the thread is gone (the timer slack and wake-up). */
static void sleep_retry(void) {
  for (int i = 0; i < N; i++) {
    uint64_t t = now();
    usleep(100);
    v[i] = now() - t;
  }
  report("usleep_100", v, N);
}

/*
 * What libxc's xc_mem_paging_load does around its hypercall for each page: the 4 KiB copy into
 * its page-aligned buffer, then mlock() and munlock() of it (one page inside a larger mapping, so
 * the VMA splits and merges as it does in a process with a heap).
 */
static void page_load(void) {
  size_t len = 1 << 24;
  char *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *buf = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(src, 1, len);
  memset(buf, 0, 1 << 20);
  char *page = buf + (1 << 19);
  for (int i = 0; i < N; i++) {
    char *from = src + (size_t)(i * 2654435761u % (len / PAGE)) * PAGE; /* scattered: cold */
    uint64_t t = now();
    memcpy(page, from, PAGE);
    v[i] = now() - t;
  }
  report("memcpy_4k", v, N);
  for (int i = 0; i < N; i++) {
    uint64_t t = now();
    if (mlock(page, PAGE) != 0 || munlock(page, PAGE) != 0) exit(1);
    v[i] = now() - t;
  }
  report("mlock_munlock_4k", v, N);
  munmap(src, len);
  munmap(buf, 1 << 20);
}

/*
 * The source's zero-page check (QEMU's buffer_is_zero) of guest RAM the guest never wrote: the
 * whole 4 KiB read, the first read of a never-written range mapping the kernel's zero page. QEMU
 * asks for huge pages on guest RAM (MADV_HUGEPAGE in ram_block_add), so with THP a read maps the
 * huge zero page once per 2 MiB. Each sample is the mean over a fresh never-written 8 MiB.
 */
static void zero_check(void) {
  const size_t pages = 2048, huge = 2 << 20;
  volatile uint64_t sink = 0;
  for (int i = 0; i < 200; i++) {
    char *raw = mmap(NULL, pages * PAGE + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) exit(1);
    uint64_t *m = (uint64_t *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    madvise(m, pages * PAGE, MADV_HUGEPAGE);
    uint64_t t = now(), acc = 0;
    for (size_t p = 0; p < pages; p++) {
      const uint64_t *w = m + p * (PAGE / 8);
      for (size_t k = 0; k < PAGE / 8; k += 4) acc |= w[k] | w[k + 1] | w[k + 2] | w[k + 3];
    }
    v[i] = (now() - t) / pages;
    sink += acc;
    munmap(raw, pages * PAGE + huge);
  }
  report("zero_check_untouched_4k", v, 200);
}

/*
 * The destination's discard at the switch to postcopy (QEMU's ram_discard_range): madvise
 * (MADV_DONTNEED) over a range of pages it holds. A call over one populated 4 KiB page; and the
 * pages precopy wrote, still in huge pages (QEMU sets NOHUGEPAGE only at the first discard,
 * "leaving it until after precopy means that most of the precopy data is still THPd",
 * postcopy-ram.c), per 4 KiB of a 64 MiB range.
 */
static void discard(void) {
  size_t huge = 2 << 20, len = 64 << 20;
  char *one = mmap(NULL, (size_t)N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (one == MAP_FAILED) exit(1);
  madvise(one, (size_t)N * PAGE, MADV_NOHUGEPAGE);
  for (int i = 0; i < N; i++) one[(size_t)i * PAGE] = 1;
  for (int i = 0; i < N; i++) {
    uint64_t t = now();
    if (madvise(one + (size_t)i * PAGE, PAGE, MADV_DONTNEED) != 0) exit(1);
    v[i] = now() - t;
  }
  report("discard_call_4k", v, N);
  munmap(one, (size_t)N * PAGE);
  for (int i = 0; i < 20; i++) {
    char *raw = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) exit(1);
    char *m = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    madvise(m, len, MADV_HUGEPAGE);
    for (size_t k = 0; k < len; k += PAGE) m[k] = 1;
    uint64_t t = now();
    if (madvise(m, len, MADV_DONTNEED) != 0) exit(1);
    v[i] = (now() - t) / (len / PAGE);
    munmap(raw, len + huge);
  }
  report("discard_thp_per_4k", v, 20);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (open_uffd() < 0) printf("uffd_unavailable 0 0 0 0\n");
  else {
    placement();
    round_trip();
  }
  tcp();
  sleep_retry();
  page_load();
  zero_check();
  discard();
  sem_wake();
  return 0;
}
