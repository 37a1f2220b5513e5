// eio_preload.c — an LD_PRELOAD interposer that makes fsync, fdatasync,
// write, pwrite (pwrite64), writev, pwritev and msync fail with EIO on
// demand, so tests can check what memosd does when the disk reports an I/O
// error (docs/design.md, "Durability contract": a commit that fails other
// than for space is fatal; fsync is never retried).
//
// Configured by environment variables, read once:
//   MEMOS_EIO_TRIGGER  a path: nothing fails until a file exists there (the
//                      test creates it when it wants the errors to start).
//   MEMOS_EIO_PREFIX   only files whose path (readlink of /proc/self/fd/N)
//                      starts with this fail (the data folder); sockets,
//                      pipes and the log never do. Required: unset, nothing
//                      is injected.
//   MEMOS_EIO_CALLS    which calls fail, comma-separated among fsync,
//                      fdatasync, write, msync (write covers pwrite, writev
//                      and pwritev). Default: fsync,fdatasync.
//   MEMOS_EIO_LOG      a file that gets one line per injected error
//                      ("fdatasync /path"), so the test can count them.
// Once triggered every matching call fails: a disk that reported an error
// is not trusted again, and a daemon that retried would be caught.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

enum { CALL_FSYNC = 1, CALL_FDATASYNC = 2, CALL_WRITE = 4, CALL_MSYNC = 8 };

struct config {
  int loaded;
  int calls;
  char trigger[4096];
  char prefix[4096];
  char log[4096];
};

static struct config cfg;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

static void copy_env(const char* name, char* out, size_t size) {
  const char* v = getenv(name);
  if (v && strlen(v) < size) strcpy(out, v);
}

static void load_config(void) {
  copy_env("MEMOS_EIO_TRIGGER", cfg.trigger, sizeof cfg.trigger);
  copy_env("MEMOS_EIO_PREFIX", cfg.prefix, sizeof cfg.prefix);
  copy_env("MEMOS_EIO_LOG", cfg.log, sizeof cfg.log);
  const char* calls = getenv("MEMOS_EIO_CALLS");
  if (!calls) calls = "fsync,fdatasync";
  // Whole words: "fsync" is also the end of "fdatasync".
  for (const char* p = calls; *p;) {
    const char* end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 5 && !strncmp(p, "fsync", n)) cfg.calls |= CALL_FSYNC;
    if (n == 9 && !strncmp(p, "fdatasync", n)) cfg.calls |= CALL_FDATASYNC;
    if (n == 5 && !strncmp(p, "write", n)) cfg.calls |= CALL_WRITE;
    if (n == 5 && !strncmp(p, "msync", n)) cfg.calls |= CALL_MSYNC;
    p += n;
    if (*p == ',') ++p;
  }
  cfg.loaded = 1;
}

// Appends "CALL PATH\n" to the log with raw system calls (never through the
// interposed write).
static void note(const char* call, const char* path) {
  if (!cfg.log[0]) return;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, cfg.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                        0600);
  if (fd < 0) return;
  char line[4200];
  int n = snprintf(line, sizeof line, "%s %s\n", call, path);
  if (n > 0) syscall(SYS_write, fd, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line));
  syscall(SYS_close, fd);
}

static int triggered(void) {
  return cfg.trigger[0] && syscall(SYS_faccessat, AT_FDCWD, cfg.trigger, F_OK) == 0;
}

// Whether this call on `fd` is to fail (and then it is noted).
static int should_fail(int call, const char* name, int fd) {
  pthread_once(&cfg_once, load_config);
  if (!(cfg.calls & call) || !cfg.prefix[0] || !triggered()) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  if (strncmp(path, cfg.prefix, strlen(cfg.prefix)) != 0) return 0;
  note(name, path);
  return 1;
}

// msync names memory, not a file: it fails for any mapping once triggered
// (memosd maps only LMDB's file, and never writes through the map).
static int should_fail_msync(void) {
  pthread_once(&cfg_once, load_config);
  if (!(cfg.calls & CALL_MSYNC) || !cfg.prefix[0] || !triggered()) return 0;
  note("msync", "(mapping)");
  return 1;
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

int fsync(int fd) {
  if (should_fail(CALL_FSYNC, "fsync", fd)) return errno = EIO, -1;
  return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd) {
  if (should_fail(CALL_FDATASYNC, "fdatasync", fd)) return errno = EIO, -1;
  return REAL("fdatasync", int (*)(int))(fd);
}

ssize_t write(int fd, const void* buf, size_t n) {
  if (should_fail(CALL_WRITE, "write", fd)) return errno = EIO, -1;
  return REAL("write", ssize_t(*)(int, const void*, size_t))(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  if (should_fail(CALL_WRITE, "pwrite", fd)) return errno = EIO, -1;
  return REAL("pwrite", ssize_t(*)(int, const void*, size_t, off_t))(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  if (should_fail(CALL_WRITE, "pwrite64", fd)) return errno = EIO, -1;
  return REAL("pwrite64", ssize_t(*)(int, const void*, size_t, off_t))(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  if (should_fail(CALL_WRITE, "writev", fd)) return errno = EIO, -1;
  return REAL("writev", ssize_t(*)(int, const struct iovec*, int))(fd, iov, count);
}

ssize_t pwritev(int fd, const struct iovec* iov, int count, off_t off) {
  if (should_fail(CALL_WRITE, "pwritev", fd)) return errno = EIO, -1;
  return REAL("pwritev", ssize_t(*)(int, const struct iovec*, int, off_t))(fd, iov, count, off);
}

ssize_t pwritev64(int fd, const struct iovec* iov, int count, off_t off) {
  if (should_fail(CALL_WRITE, "pwritev64", fd)) return errno = EIO, -1;
  return REAL("pwritev64", ssize_t(*)(int, const struct iovec*, int, off_t))(fd, iov, count, off);
}

int msync(void* addr, size_t length, int flags) {
  if (should_fail_msync()) return errno = EIO, -1;
  return REAL("msync", int (*)(void*, size_t, int))(addr, length, flags);
}
