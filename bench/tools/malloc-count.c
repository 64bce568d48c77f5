/* LD_PRELOAD malloc counter for bench/alloc-check.sh: counts malloc, calloc, realloc,
 * posix_memalign and aligned_alloc calls of the whole process. On SIGUSR2 it writes the
 * current count to the file named by MALLOC_COUNT_FILE. Async-signal-safe on the read side. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_ulong count;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);

/* dlsym may call calloc before real_calloc is known: serve it from a static arena */
static char arena[4096];
static size_t arena_used;

static void dump(int sig) {
  (void)sig;
  const char *path = getenv("MALLOC_COUNT_FILE");
  if (!path) return;
  char buf[32];
  unsigned long v = atomic_load(&count);
  int n = 0;
  char tmp[32];
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  buf[n++] = '\n';
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) { (void)!write(fd, buf, n); close(fd); }
}

__attribute__((constructor)) static void init(void) {
  real_malloc = dlsym(RTLD_NEXT, "malloc");
  real_calloc = dlsym(RTLD_NEXT, "calloc");
  real_realloc = dlsym(RTLD_NEXT, "realloc");
  real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = dump;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
}

void *malloc(size_t n) {
  if (!real_malloc) init();
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_malloc(n);
}

void *calloc(size_t a, size_t b) {
  if (!real_calloc) {
    size_t n = (a * b + 15) & ~(size_t)15;
    if (arena_used + n > sizeof arena) return NULL;
    void *p = arena + arena_used;
    arena_used += n;
    return p;
  }
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_calloc(a, b);
}

void *realloc(void *p, size_t n) {
  if (!real_realloc) init();
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_realloc(p, n);
}

int posix_memalign(void **p, size_t a, size_t n) {
  if (!real_posix_memalign) init();
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_posix_memalign(p, a, n);
}

void *aligned_alloc(size_t a, size_t n) {
  if (!real_aligned_alloc) init();
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_aligned_alloc(a, n);
}

void free(void *p) {
  static void (*real_free)(void *);
  if ((char *)p >= arena && (char *)p < arena + sizeof arena) return;
  if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
  real_free(p);
}
