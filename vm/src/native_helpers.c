/* Helpers the native build implements in C (bpfvm_use_builtin_helper): time, CPU, task ids
 * and comm, probe_read_user(_str); programs calling only these run without JavaScript. */
#define _GNU_SOURCE /* sched_getcpu, process_vm_readv */
#include "bpfvm_internal.h"
#ifndef __wasm__
#include <string.h>
/* Helpers whose kernel semantics need nothing from the host, in C: a program that calls
 * only these (and VM-resolved map lookups) runs without the host's JavaScript, and the
 * host's own runs skip a call into it. The thread and CPU are the caller's, as in the
 * kernel: hooks run programs on the thread that hit them. */
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static uint64_t clock_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
static uint64_t h_ktime_get_ns(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  return clock_ns(CLOCK_MONOTONIC);
}
static uint64_t h_ktime_get_boot_ns(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  return clock_ns(CLOCK_BOOTTIME);
}
static uint64_t h_get_smp_processor_id(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  int cpu = sched_getcpu();
  return cpu < 0 ? 0 : (uint64_t)cpu;
}
static uint64_t h_get_current_pid_tgid(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  return ((uint64_t)(uint32_t)getpid() << 32) | (uint32_t)syscall(SYS_gettid);
}

static uint64_t h_get_current_uid_gid(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  return ((uint64_t)(uint32_t)getgid() << 32) | (uint32_t)getuid();
}

#define HELPER_MAX_SIZE (1u << 30)
#define EFAULT_RC ((uint64_t)-14)
#define EINVAL_RC ((uint64_t)-22)

/* get_current_comm(buf, size): the calling thread's name, NUL-terminated and padded. */
static uint64_t h_get_current_comm(uint64_t buf, uint64_t size, uint64_t c, uint64_t d, uint64_t e) {
  (void)c, (void)d, (void)e;
  char comm[17] = {0};
  if (size == 0 || size > HELPER_MAX_SIZE) return EINVAL_RC;
  if (!vm_writable(buf, size)) return EFAULT_RC;
  prctl(PR_GET_NAME, comm, 0, 0, 0);
  size_t len = strnlen(comm, 15);
  if (len > size - 1) len = size - 1;
  memcpy(HP(buf), comm, len);
  memset(HP(buf) + len, 0, size - len);
  return 0;
}

/* Reads of the process's own memory that fail instead of faulting: process_vm_readv on
 * ourselves returns short for unmapped or unreadable pages. */
static uint64_t read_self(void *dst, uint64_t src, uint64_t len) {
  struct iovec local = {dst, len}, remote = {(void *)(uintptr_t)src, len};
  ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  return got < 0 ? 0 : (uint64_t)got;
}

/* probe_read_user(dst, size, src): all or nothing; on failure dst is zeroed, -EFAULT. */
static uint64_t h_probe_read_user(uint64_t dst, uint64_t size, uint64_t src, uint64_t d, uint64_t e) {
  (void)d, (void)e;
  if (size > HELPER_MAX_SIZE) return EINVAL_RC;
  if (size == 0) return 0;
  if (!vm_writable(dst, size)) return EFAULT_RC;
  if (src == 0 || read_self(HP(dst), src, size) < size) {
    memset(HP(dst), 0, size);
    return EFAULT_RC;
  }
  return 0;
}

/* probe_read_user_str(dst, size, src): up to size - 1 bytes and a NUL, read a page at a
 * time (a string may end just before an unmapped page); returns the length with the NUL. */
static uint64_t h_probe_read_user_str(uint64_t dst, uint64_t size, uint64_t src, uint64_t d, uint64_t e) {
  (void)d, (void)e;
  uint8_t chunk[4096];
  uint64_t got = 0, len = 0;
  int ended = 0;
  if (size > HELPER_MAX_SIZE) return EINVAL_RC;
  if (size == 0) return 0;
  if (!vm_writable(dst, size)) return EFAULT_RC;
  uint8_t *out = HP(dst);
  while (src != 0 && got < size && !ended) {
    uint64_t to_page_end = 4096 - ((src + got) & 4095), n = size - got < to_page_end ? size - got : to_page_end;
    uint64_t k = read_self(chunk, src + got, n);
    if (k < n) break;
    for (uint64_t i = 0; i < n; i++) {
      if (chunk[i] == 0) {
        ended = 1;
        break;
      }
      if (len < size - 1) out[len] = chunk[i];
      len++;
    }
    got += n;
  }
  if (got == 0) {
    memset(out, 0, size);
    return EFAULT_RC;
  }
  if (len > size - 1) len = size - 1;
  out[len] = 0;
  return len + 1;
}

int32_t bpfvm_use_builtin_helper(uint32_t id) {
  bpfvm_helper_fn fn = 0;
  switch (id) {
    case BPFVM_HELPER_KTIME_GET_NS: fn = h_ktime_get_ns; break;
    case BPFVM_HELPER_GET_SMP_PROCESSOR_ID: fn = h_get_smp_processor_id; break;
    case BPFVM_HELPER_GET_CURRENT_PID_TGID: fn = h_get_current_pid_tgid; break;
    case BPFVM_HELPER_GET_CURRENT_UID_GID: fn = h_get_current_uid_gid; break;
    case BPFVM_HELPER_GET_CURRENT_COMM: fn = h_get_current_comm; break;
    case BPFVM_HELPER_PROBE_READ_USER: fn = h_probe_read_user; break;
    case BPFVM_HELPER_PROBE_READ_USER_STR: fn = h_probe_read_user_str; break;
    case BPFVM_HELPER_KTIME_GET_BOOT_NS: fn = h_ktime_get_boot_ns; break;
    default: return 0;
  }
  bpfvm_set_helper_fn(id, fn);
  return 1;
}
#endif
