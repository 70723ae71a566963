/*
 * postcopy-emu's userfaultfd addon (src/live/uffd.ts): guest memory whose missing pages fault to
 * a userfaultfd instead of reading zeros, so a pager can place each page (UFFDIO_COPY) while the
 * touching thread sleeps in the kernel; and the source's guest RAM, advised for huge pages.
 *
 * Plain C over node_api.h (NAPI_VERSION 8). Regions live in a process-global handle table behind a
 * mutex, so every thread of the process (main thread and worker threads alike) reaches the same
 * region by its handle id; the module is context-aware (NAPI_MODULE_INIT), and each thread makes
 * its own ArrayBuffer view of a region.
 *
 * Handles are never reused. close() marks a region closing; the uffd is closed and the memory
 * unmapped once no call on it is in flight (a waitFaults blocked in poll() holds it until it
 * returns). Views of a closed region must not be touched: the view of the thread that called
 * close() is detached, but views held by other threads still point at unmapped memory.
 */
#define _GNU_SOURCE
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
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

#define MAX_REGIONS 256
#define MSG_BATCH 64
#define MAX_SPINS 10000

typedef struct {
  int64_t id; /* 0: free slot */
  uint8_t *base;
  size_t len;
  int fd;
  int refs;    /* calls in flight */
  int closing; /* close() was called; destroyed when refs drops to 0 */
} region_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static region_t g_regions[MAX_REGIONS];
static int64_t g_next_id = 1;

static size_t page_size(void) {
  static size_t ps = 0;
  if (ps == 0) {
    long v = sysconf(_SC_PAGESIZE);
    ps = v > 0 ? (size_t)v : 4096;
  }
  return ps;
}

/* ---- errors ---------------------------------------------------------------------------------- */

#define NAPI_CALL(env, call)                                                                      \
  do {                                                                                            \
    if ((call) != napi_ok) {                                                                      \
      throw_napi_error(env, #call);                                                               \
      return NULL;                                                                                \
    }                                                                                             \
  } while (0)

static void throw_napi_error(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char buf[256];
  snprintf(buf, sizeof buf, "uffd: %s failed: %s", what,
           info && info->error_message ? info->error_message : "N-API error");
  napi_throw_error(env, NULL, buf);
}

static napi_value throw_msg(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

/* "uffd: <step> failed: <strerror> (<errno name>)" */
static napi_value throw_errno(napi_env env, const char *step, int err) {
  char buf[320];
  snprintf(buf, sizeof buf, "uffd: %s failed: %s (errno %d)", step, strerror(err), err);
  napi_throw_error(env, NULL, buf);
  return NULL;
}

/* ---- opening a userfaultfd ------------------------------------------------------------------- */

/* Opens a userfaultfd and does UFFDIO_API; on failure returns -1 and describes it in why. */
static int open_uffd(char *why, size_t whylen) {
  int fd = -1;
  int sys_err = 0;
#ifdef SYS_userfaultfd
  fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) sys_err = errno;
#else
  sys_err = ENOSYS;
#endif
  if (fd < 0) {
#ifdef USERFAULTFD_IOC_NEW
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) {
      int dev_err = errno;
      snprintf(why, whylen,
               "userfaultfd(2) failed: %s (errno %d); opening /dev/userfaultfd failed: %s (errno %d)",
               strerror(sys_err), sys_err, strerror(dev_err), dev_err);
      return -1;
    }
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    int ioc_err = errno;
    close(dev);
    if (fd < 0) {
      snprintf(why, whylen,
               "userfaultfd(2) failed: %s (errno %d); USERFAULTFD_IOC_NEW on /dev/userfaultfd failed: %s (errno %d)",
               strerror(sys_err), sys_err, strerror(ioc_err), ioc_err);
      return -1;
    }
#else
    snprintf(why, whylen, "userfaultfd(2) failed: %s (errno %d)", strerror(sys_err), sys_err);
    return -1;
#endif
  }
  struct uffdio_api api;
  memset(&api, 0, sizeof api);
  api.api = UFFD_API;
  api.features = 0;
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    int e = errno;
    close(fd);
    snprintf(why, whylen, "UFFDIO_API failed: %s (errno %d)", strerror(e), e);
    return -1;
  }
  if ((api.ioctls & ((uint64_t)1 << _UFFDIO_REGISTER)) == 0) {
    close(fd);
    snprintf(why, whylen, "UFFDIO_API: the kernel offers no UFFDIO_REGISTER");
    return -1;
  }
  return fd;
}

/* ---- the handle table ------------------------------------------------------------------------ */

static void destroy_locked(region_t *r) {
  if (r->fd >= 0) close(r->fd);
  if (r->base) munmap(r->base, r->len);
  memset(r, 0, sizeof *r);
  r->fd = -1;
}

/* The open region with this id, its refs incremented; NULL if there is none (or it is closing). */
static region_t *acquire(int64_t id) {
  region_t *found = NULL;
  pthread_mutex_lock(&g_lock);
  for (int i = 0; i < MAX_REGIONS; i++) {
    if (g_regions[i].id == id && id != 0) {
      if (!g_regions[i].closing) {
        g_regions[i].refs++;
        found = &g_regions[i];
      }
      break;
    }
  }
  pthread_mutex_unlock(&g_lock);
  return found;
}

static void release(region_t *r) {
  pthread_mutex_lock(&g_lock);
  r->refs--;
  if (r->closing && r->refs == 0) destroy_locked(r);
  pthread_mutex_unlock(&g_lock);
}

/* ---- per-thread (per-env) views -------------------------------------------------------------- */

typedef struct view_entry {
  int64_t id;
  napi_ref ref;
  struct view_entry *next;
} view_entry;

typedef struct {
  view_entry *views;
} env_data;

static void env_data_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  env_data *d = (env_data *)data;
  /* The references themselves are freed with the env; only our list nodes are ours to free. */
  view_entry *v = d->views;
  while (v) {
    view_entry *next = v->next;
    free(v);
    v = next;
  }
  free(d);
}

static void noop_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  (void)hint; /* The region is unmapped only by close(). */
}

/* ---- argument helpers ------------------------------------------------------------------------ */

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_napi_error(env, "napi_get_cb_info");
    return false;
  }
  if (argc < want) {
    char buf[96];
    snprintf(buf, sizeof buf, "uffd: expected %zu arguments, got %zu", want, argc);
    throw_type(env, buf);
    return false;
  }
  return true;
}

/* A non-negative integer number (up to 2^53). */
static bool get_uint(napi_env env, napi_value v, const char *name, uint64_t *out) {
  napi_valuetype t;
  double d;
  char buf[128];
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    snprintf(buf, sizeof buf, "uffd: %s must be a number", name);
    throw_type(env, buf);
    return false;
  }
  napi_get_value_double(env, v, &d);
  if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) {
    snprintf(buf, sizeof buf, "uffd: %s must be a non-negative integer, got %g", name, d);
    throw_range(env, buf);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

static region_t *get_region(napi_env env, napi_value v) {
  uint64_t id;
  if (!get_uint(env, v, "handle", &id)) return NULL;
  region_t *r = acquire((int64_t)id);
  if (!r) {
    char buf[96];
    snprintf(buf, sizeof buf, "uffd: no open region with handle %llu", (unsigned long long)id);
    throw_msg(env, buf);
  }
  return r;
}

/* offset and length page-aligned, non-empty, inside the region. */
static bool check_range(napi_env env, region_t *r, uint64_t off, uint64_t len) {
  size_t ps = page_size();
  char buf[192];
  if (off % ps != 0 || len % ps != 0 || len == 0) {
    snprintf(buf, sizeof buf, "uffd: offset %llu and length %llu must be non-zero multiples of the page size %zu",
             (unsigned long long)off, (unsigned long long)len, ps);
    throw_range(env, buf);
    return false;
  }
  if (off > r->len || len > r->len - off) {
    snprintf(buf, sizeof buf, "uffd: range [%llu, %llu) is outside the region of %zu bytes",
             (unsigned long long)off, (unsigned long long)(off + len), r->len);
    throw_range(env, buf);
    return false;
  }
  return true;
}

static napi_value make_bool(napi_env env, bool b) {
  napi_value v;
  NAPI_CALL(env, napi_get_boolean(env, b, &v));
  return v;
}

/* Wakes the threads waiting on one page (after EEXIST: the page is there, nobody should sleep). */
static void wake_page(region_t *r, uint64_t off) {
  struct uffdio_range range = {.start = (uint64_t)(uintptr_t)(r->base + off), .len = page_size()};
  ioctl(r->fd, UFFDIO_WAKE, &range);
}

/* ---- create(bytes) --------------------------------------------------------------------------- */

static napi_value js_create(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  uint64_t bytes;
  if (!get_uint(env, argv[0], "bytes", &bytes)) return NULL;
  size_t ps = page_size();
  if (bytes == 0 || bytes % ps != 0) {
    char buf[128];
    snprintf(buf, sizeof buf, "uffd: create(%llu): bytes must be a non-zero multiple of the page size %zu",
             (unsigned long long)bytes, ps);
    return throw_range(env, buf);
  }

  void *base = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return throw_errno(env, "create: mmap", errno);

  char why[256];
  int fd = open_uffd(why, sizeof why);
  if (fd < 0) {
    munmap(base, (size_t)bytes);
    char buf[320];
    snprintf(buf, sizeof buf, "uffd: create: %s", why);
    return throw_msg(env, buf);
  }

  struct uffdio_register reg;
  memset(&reg, 0, sizeof reg);
  reg.range.start = (uint64_t)(uintptr_t)base;
  reg.range.len = bytes;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
    int e = errno;
    close(fd);
    munmap(base, (size_t)bytes);
    return throw_errno(env, "create: UFFDIO_REGISTER (MODE_MISSING)", e);
  }
  uint64_t need = ((uint64_t)1 << _UFFDIO_COPY) | ((uint64_t)1 << _UFFDIO_ZEROPAGE) | ((uint64_t)1 << _UFFDIO_WAKE);
  if ((reg.ioctls & need) != need) {
    close(fd);
    munmap(base, (size_t)bytes);
    return throw_msg(env, "uffd: create: UFFDIO_REGISTER: the range does not support UFFDIO_COPY/ZEROPAGE/WAKE");
  }

  int64_t id = 0;
  pthread_mutex_lock(&g_lock);
  for (int i = 0; i < MAX_REGIONS; i++) {
    if (g_regions[i].id == 0) {
      id = g_next_id++;
      g_regions[i].id = id;
      g_regions[i].base = (uint8_t *)base;
      g_regions[i].len = (size_t)bytes;
      g_regions[i].fd = fd;
      g_regions[i].refs = 0;
      g_regions[i].closing = 0;
      break;
    }
  }
  pthread_mutex_unlock(&g_lock);
  if (id == 0) {
    close(fd);
    munmap(base, (size_t)bytes);
    char buf[96];
    snprintf(buf, sizeof buf, "uffd: create: too many open regions (at most %d)", MAX_REGIONS);
    return throw_msg(env, buf);
  }
  napi_value result;
  NAPI_CALL(env, napi_create_double(env, (double)id, &result));
  return result;
}

/* ---- view(handle) ---------------------------------------------------------------------------- */

static napi_value js_view(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  region_t *r = get_region(env, argv[0]);
  if (!r) return NULL;

  env_data *d = NULL;
  napi_value result = NULL;
  if (napi_get_instance_data(env, (void **)&d) == napi_ok && d) {
    for (view_entry *v = d->views; v; v = v->next) {
      if (v->id == r->id) {
        napi_get_reference_value(env, v->ref, &result);
        break;
      }
    }
  }
  if (!result) {
    napi_status s = napi_create_external_arraybuffer(env, r->base, r->len, noop_finalize, NULL, &result);
    if (s != napi_ok) {
      release(r);
      throw_napi_error(env, "view: napi_create_external_arraybuffer");
      return NULL;
    }
    if (d) {
      view_entry *v = (view_entry *)calloc(1, sizeof *v);
      if (v && napi_create_reference(env, result, 1, &v->ref) == napi_ok) {
        v->id = r->id;
        v->next = d->views;
        d->views = v;
      } else {
        free(v);
      }
    }
  }
  release(r);
  return result;
}

/* ---- waitFaults(handle, timeoutMs, out) ------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A typed array argument of kind `want`: its data and element count; false with `msg` thrown. */
static bool get_typed(napi_env env, napi_value v, napi_typedarray_type want, const char *msg, void **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type tat;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta
      || napi_get_typedarray_info(env, v, &tat, len, data, NULL, NULL) != napi_ok || tat != want) {
    throw_type(env, msg);
    return false;
  }
  return true;
}

static napi_value js_wait_faults(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;

  double timeout_d;
  napi_valuetype t;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number) return throw_type(env, "uffd: timeoutMs must be a number");
  napi_get_value_double(env, argv[1], &timeout_d);
  if (timeout_d != timeout_d) return throw_range(env, "uffd: timeoutMs must not be NaN");

  size_t cap;
  void *data;
  if (!get_typed(env, argv[2], napi_float64_array, "uffd: out must be a Float64Array", &data, &cap)) return NULL;
  double *out = (double *)data;

  region_t *r = get_region(env, argv[0]);
  if (!r) return NULL;

  size_t ps = page_size();
  uintptr_t base = (uintptr_t)r->base;
  size_t count = 0;
  bool forever = timeout_d < 0;
  int64_t timeout = forever ? 0 : (timeout_d > 2147483647.0 ? 2147483647 : (int64_t)timeout_d);
  int64_t deadline = now_ms() + timeout;
  struct uffd_msg msgs[MSG_BATCH];

  if (cap == 0) {
    release(r);
    napi_value zero;
    NAPI_CALL(env, napi_create_uint32(env, 0, &zero));
    return zero;
  }

  for (;;) {
    int64_t left = forever ? -1 : deadline - now_ms();
    if (!forever && left < 0) left = 0;
    struct pollfd pfd = {.fd = r->fd, .events = POLLIN, .revents = 0};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      release(r);
      return throw_errno(env, "waitFaults: poll", e);
    }
    if (pr > 0 && (pfd.revents & (POLLERR | POLLNVAL))) {
      release(r);
      return throw_msg(env, "uffd: waitFaults: poll reported an error on the userfaultfd");
    }
    if (pr > 0) {
      /* Read every pending message, non-blocking, up to the room left in out. */
      while (count < cap) {
        size_t want = cap - count;
        if (want > MSG_BATCH) want = MSG_BATCH;
        ssize_t n = read(r->fd, msgs, want * sizeof(struct uffd_msg));
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          int e = errno;
          release(r);
          return throw_errno(env, "waitFaults: read", e);
        }
        if (n == 0) break;
        size_t got = (size_t)n / sizeof(struct uffd_msg);
        for (size_t i = 0; i < got; i++) {
          if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
          uintptr_t addr = (uintptr_t)msgs[i].arg.pagefault.address & ~(uintptr_t)(ps - 1);
          out[count++] = (double)(addr - base);
        }
        if (got < want) break;
      }
      if (count > 0) break;
      /* Readable but nothing for us (another thread read them): wait out the rest. */
    }
    if (!forever && deadline - now_ms() <= 0) break;
  }
  release(r);
  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)count, &result));
  return result;
}

/* ---- placing pages: copy() and zero() --------------------------------------------------------- */

/*
 * Places len bytes at off: UFFDIO_COPY from src, or UFFDIO_ZEROPAGE when src is NULL, waking the
 * waiters. A page already present (EEXIST) is left as it is, its waiters woken, and the rest is
 * placed; the result is false then. Releases r.
 */
static napi_value place(napi_env env, region_t *r, uint64_t off, uint64_t len, const uint8_t *src, const char *what) {
  if (!check_range(env, r, off, len)) {
    release(r);
    return NULL;
  }
  size_t ps = page_size();
  uint64_t done = 0;
  bool all = true;
  int spins = 0;
  while (done < len) {
    int64_t placed;
    int rc;
    if (src) {
      struct uffdio_copy c;
      memset(&c, 0, sizeof c);
      c.dst = (uint64_t)(uintptr_t)(r->base + off + done);
      c.src = (uint64_t)(uintptr_t)(src + done);
      c.len = len - done;
      rc = ioctl(r->fd, UFFDIO_COPY, &c);
      placed = c.copy;
    } else {
      struct uffdio_zeropage z;
      memset(&z, 0, sizeof z);
      z.range.start = (uint64_t)(uintptr_t)(r->base + off + done);
      z.range.len = len - done;
      rc = ioctl(r->fd, UFFDIO_ZEROPAGE, &z);
      placed = z.zeropage;
    }
    if (rc == 0) break;
    int e = errno;
    if (placed > 0) {
      done += (uint64_t)placed;
      spins = 0;
    }
    if (e == EEXIST) {
      /* This page was already present: not an error; place the rest. */
      wake_page(r, off + done);
      done += ps;
      all = false;
      continue;
    }
    if (e == EAGAIN && ++spins < MAX_SPINS) continue;
    release(r);
    return throw_errno(env, what, e);
  }
  release(r);
  return make_bool(env, all);
}

/* copy(handle, offset, src) */
static napi_value js_copy(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  uint64_t off;
  if (!get_uint(env, argv[1], "offset", &off)) return NULL;
  size_t len;
  void *src;
  if (!get_typed(env, argv[2], napi_uint8_array, "uffd: src must be a Uint8Array", &src, &len)) return NULL;
  region_t *r = get_region(env, argv[0]);
  if (!r) return NULL;
  return place(env, r, off, len, (const uint8_t *)src, "copy: UFFDIO_COPY");
}

/* zero(handle, offset, length) */
static napi_value js_zero(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  uint64_t off, len;
  if (!get_uint(env, argv[1], "offset", &off)) return NULL;
  if (!get_uint(env, argv[2], "length", &len)) return NULL;
  region_t *r = get_region(env, argv[0]);
  if (!r) return NULL;
  return place(env, r, off, len, NULL, "zero: UFFDIO_ZEROPAGE");
}

/* ---- close(handle) --------------------------------------------------------------------------- */

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  uint64_t id;
  if (!get_uint(env, argv[0], "handle", &id)) return NULL;

  bool found = false;
  pthread_mutex_lock(&g_lock);
  for (int i = 0; i < MAX_REGIONS; i++) {
    region_t *r = &g_regions[i];
    if (r->id == (int64_t)id && id != 0 && !r->closing) {
      found = true;
      r->closing = 1;
      if (r->refs == 0) destroy_locked(r);
      break;
    }
  }
  pthread_mutex_unlock(&g_lock);
  if (!found) {
    char buf[96];
    snprintf(buf, sizeof buf, "uffd: close: no open region with handle %llu", (unsigned long long)id);
    return throw_msg(env, buf);
  }

  /* This thread's view, if any: detach it, so touching it throws instead of faulting. */
  env_data *d = NULL;
  if (napi_get_instance_data(env, (void **)&d) == napi_ok && d) {
    view_entry **pp = &d->views;
    while (*pp) {
      view_entry *v = *pp;
      if (v->id == (int64_t)id) {
        napi_value ab = NULL;
        if (napi_get_reference_value(env, v->ref, &ab) == napi_ok && ab) napi_detach_arraybuffer(env, ab);
        napi_delete_reference(env, v->ref);
        *pp = v->next;
        free(v);
      } else {
        pp = &v->next;
      }
    }
  }
  napi_value undef;
  NAPI_CALL(env, napi_get_undefined(env, &undef));
  return undef;
}

/* ---- available() ----------------------------------------------------------------------------- */

static napi_value js_available(napi_env env, napi_callback_info info) {
  (void)info;
  char why[256];
  int fd = open_uffd(why, sizeof why);
  napi_value result;
  if (fd >= 0) {
    close(fd);
    NAPI_CALL(env, napi_get_null(env, &result));
  } else {
    NAPI_CALL(env, napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &result));
  }
  return result;
}

/* ---- ram(bytes) ------------------------------------------------------------------------------ */

static void unmap_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint); /* May run on any thread: no N-API calls here. */
}

/*
 * Guest RAM for the live source: anonymous private memory advised MADV_HUGEPAGE, as QEMU advises
 * guest RAM (transparent huge pages where the host allows them; 4 KiB pages where it does not), as
 * an ArrayBuffer that unmaps it once collected.
 */
static napi_value js_ram(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  uint64_t bytes;
  if (!get_uint(env, argv[0], "bytes", &bytes)) return NULL;
  if (bytes == 0) return throw_range(env, "uffd: ram(0): bytes must be positive");
  /* Accounted (no MAP_NORESERVE): every page will be filled, so a host short of memory says so here. */
  void *base = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return throw_errno(env, "ram: mmap", errno);
  madvise(base, (size_t)bytes, MADV_HUGEPAGE); /* EINVAL without THP: the memory still works */
  napi_value result;
  if (napi_create_external_arraybuffer(env, base, (size_t)bytes, unmap_finalize, (void *)(uintptr_t)bytes, &result) != napi_ok) {
    munmap(base, (size_t)bytes);
    throw_napi_error(env, "ram: napi_create_external_arraybuffer");
    return NULL;
  }
  return result;
}

/* ---- socketQueues(fd) ------------------------------------------------------------------------ */

/*
 * A TCP socket's kernel queues, bytes: [received and not yet read (SIOCINQ), written and not yet
 * acknowledged by the peer (SIOCOUTQ)]. What a live stream holds between its two ends.
 */
static napi_value js_socket_queues(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  uint64_t fd;
  if (!get_uint(env, argv[0], "fd", &fd)) return NULL;
  int inq = 0, outq = 0;
  if (ioctl((int)fd, SIOCINQ, &inq) != 0) return throw_errno(env, "socketQueues: SIOCINQ", errno);
  if (ioctl((int)fd, SIOCOUTQ, &outq) != 0) return throw_errno(env, "socketQueues: SIOCOUTQ", errno);
  napi_value result, v;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)inq, &v));
  NAPI_CALL(env, napi_set_element(env, result, 0, v));
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)outq, &v));
  NAPI_CALL(env, napi_set_element(env, result, 1, v));
  return result;
}

/* ---- socketSend(fd, bytes, waitMs) ----------------------------------------------------------- */

/*
 * Writes bytes on a connected socket from the calling thread (the live fault thread's return
 * path, as QEMU's fault thread writes its requests itself): send() without SIGPIPE, waiting in
 * poll() while the buffer is full, at most waitMs without progress. Returns the bytes written
 * (all of them, or fewer when it waited waitMs in vain: the caller decides whether to go on), or
 * -1 when the connection is gone (reset, closed).
 */
static napi_value js_socket_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  uint64_t fd, wait_ms;
  if (!get_uint(env, argv[0], "fd", &fd)) return NULL;
  size_t len;
  void *data;
  if (!get_typed(env, argv[1], napi_uint8_array, "uffd: socketSend: bytes must be a Uint8Array", &data, &len)) return NULL;
  if (!get_uint(env, argv[2], "waitMs", &wait_ms)) return NULL;
  const uint8_t *p = (const uint8_t *)data;
  size_t done = 0;
  int64_t result = 0;
  while (done < len) {
    ssize_t n = send((int)fd, p + done, len - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += (size_t)n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      result = -1;
      break;
    }
    struct pollfd pfd = {.fd = (int)fd, .events = POLLOUT, .revents = 0};
    int rc;
    do rc = poll(&pfd, 1, (int)(wait_ms > 60000 ? 60000 : wait_ms));
    while (rc < 0 && errno == EINTR);
    if (rc < 0 || (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))) {
      result = -1;
      break;
    }
    if (rc == 0) break; /* no room for waitMs: say how far it got */
  }
  napi_value out;
  NAPI_CALL(env, napi_create_int64(env, result < 0 ? -1 : (int64_t)done, &out));
  return out;
}

/* ---- idleThread() ---------------------------------------------------------------------------- */

/*
 * Moves the calling thread to SCHED_IDLE: it runs only on a core nothing else wants, and any
 * other thread waking preempts it. Returns null, or why not (errno's text).
 */
static napi_value js_idle_thread(napi_env env, napi_callback_info info) {
  (void)info;
  struct sched_param param = {.sched_priority = 0};
  napi_value result;
  if (sched_setscheduler(0, SCHED_IDLE, &param) == 0) {
    NAPI_CALL(env, napi_get_null(env, &result));
  } else {
    const char *why = strerror(errno);
    NAPI_CALL(env, napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &result));
  }
  return result;
}

/* ---- pageSize() ------------------------------------------------------------------------------ */

static napi_value js_page_size(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)page_size(), &result));
  return result;
}

/* ---- module ---------------------------------------------------------------------------------- */

NAPI_MODULE_INIT() {
  env_data *d = (env_data *)calloc(1, sizeof *d);
  if (d && napi_set_instance_data(env, d, env_data_finalize, NULL) != napi_ok) {
    free(d);
  }
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"view", NULL, js_view, NULL, NULL, NULL, napi_enumerable, NULL},
      {"waitFaults", NULL, js_wait_faults, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copy", NULL, js_copy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"zero", NULL, js_zero, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"available", NULL, js_available, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pageSize", NULL, js_page_size, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ram", NULL, js_ram, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketQueues", NULL, js_socket_queues, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketSend", NULL, js_socket_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"idleThread", NULL, js_idle_thread, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
