/* bpfvm-native: batch runner for differential tests and benchmarks.
 *
 * Usage: bpfvm-native [--ro BYTES] [--rw BYTES] < batch
 * Each input line is one job (blank lines and lines starting with '#' are ignored):
 *   run   CODEHEX MEMHEX|- [BUDGET]      -> "ok R0 INSNS" | "fault KIND PC ADDR" | "load PC MESSAGE"
 *   bench CODEHEX MEMHEX|- REPEAT [BUDGET] -> "bench R0 INSNS_PER_RUN NS_TOTAL" (or fault/load as above)
 *   hash  KS VS MAX OPSHEX               -> the C hash map (hashmap.c) through bpfvm_hash_op: each op
 *         is 2 bytes (1 lookup, 2 update, 3 delete; flags) + key + value; prints one result per
 *         op ("-" or the value's hex for lookups, else the return code), then "n=ENTRIES"
 *   iso   CODEHEX MEMHEX|- [BUDGET]      -> as run, then " changed=N": the isolation fuzz layout
 *         (iso_layout below), N = bytes changed outside the program's stack, context and values
 * CODEHEX is the program's bytes (8 per instruction, little-endian) in hex; MEMHEX the bytes
 * copied into the rw arena and passed as r1 (address) / r2 (length); "-" means no memory (r1 = 0).
 * Every job starts from a freshly initialised VM with the conformance test helpers 0..5.
 */
#define _POSIX_C_SOURCE 200809L
#include "bpfvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint32_t g_ro = 65536, g_rw = 65536;

static int in_rw(uint64_t a, uint64_t len) {
  return a >= bpfvm_rw_lo() && a <= bpfvm_rw_hi() && len <= bpfvm_rw_hi() - a;
}
static int in_any(uint64_t a, uint64_t len) {
  return a >= bpfvm_ro_lo() && a <= bpfvm_rw_hi() && len <= bpfvm_rw_hi() - a;
}

static uint64_t h_gather(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  return ((a & 0xff) << 32) | ((b & 0xff) << 24) | ((c & 0xff) << 16) | ((d & 0xff) << 8) | (e & 0xff);
}
static uint64_t h_memfrob(uint64_t p, uint64_t len, uint64_t c, uint64_t d, uint64_t e) {
  (void)c; (void)d; (void)e;
  if (!in_rw(p, len)) { bpfvm_request_fault(); return 0; }
  uint8_t *q = bpfvm_host_ptr(p);
  for (uint64_t i = 0; i < len; i++) q[i] ^= 42;
  return 0;
}
static uint64_t h_noop(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return 0;
}
static uint64_t isqrt64(uint64_t a) {
  uint64_t lo = 0, hi = 0xffffffffull;
  while (lo < hi) { /* largest x with x*x <= a */
    uint64_t mid = lo + (hi - lo + 1) / 2;
    if (mid * mid <= a) lo = mid; else hi = mid - 1;
  }
  return lo;
}
static uint64_t h_sqrti(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b; (void)c; (void)d; (void)e;
  return isqrt64(a);
}
static uint64_t h_strcmp(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)c; (void)d; (void)e;
  for (uint64_t i = 0;; i++) {
    if (!in_any(a + i, 1) || !in_any(b + i, 1)) { bpfvm_request_fault(); return 0; }
    uint8_t x = *bpfvm_host_ptr(a + i), y = *bpfvm_host_ptr(b + i);
    if (x != y) return (uint64_t)(int64_t)((int)x - (int)y);
    if (!x) return 0;
  }
}
static uint64_t h_unwind(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b; (void)c; (void)d; (void)e;
  if (a == 0) bpfvm_request_exit(0);
  return a;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
static uint8_t *unhex(const char *s, size_t *len) {
  size_t n = strlen(s);
  if (n % 2) return NULL;
  uint8_t *out = malloc(n / 2 + 8);
  for (size_t i = 0; i < n / 2; i++) {
    int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
    if (h < 0 || l < 0) { free(out); return NULL; }
    out[i] = (uint8_t)(h * 16 + l);
  }
  *len = n / 2;
  return out;
}

static const char *kind_name(int st) {
  switch (st) {
  case BPFVM_FAULT_MEMORY: return "memory";
  case BPFVM_FAULT_BUDGET: return "budget";
  case BPFVM_FAULT_HELPER: return "helper";
  case BPFVM_FAULT_STACK: return "stack";
  case BPFVM_FAULT_TAIL_CALL: return "tail_call";
  default: return "internal";
  }
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The isolation fuzz layout (test/unit/vmIsolationFuzz.test.ts builds the same for wasm):
 * after the stack, the context at +0, map 1 (2 values of 16 bytes, 32 apart) at +256, map 2
 * (one 8-byte value) at +512; every other rw byte is a 0xa5 canary; helper 1 is
 * bpf_map_lookup_elem on maps 1 and 2 with a u32 key. */
#define ISO_A 256u
#define ISO_B 512u
static uint64_t g_iso_base;
static uint64_t h_iso_lookup(uint64_t map, uint64_t key, uint64_t c, uint64_t d, uint64_t e) {
  (void)c; (void)d; (void)e;
  if (!bpfvm_accessible(key, 4, 0)) return 0;
  uint32_t k;
  memcpy(&k, bpfvm_host_ptr(key), 4);
  if (map == 1 && k < 2) return g_iso_base + ISO_A + 32u * k;
  if (map == 2 && k < 1) return g_iso_base + ISO_B;
  return 0;
}
static int iso_allowed(uint64_t a, uint64_t ctx, uint64_t mlen) {
  if (a >= bpfvm_rw_lo() && a < bpfvm_alloc_start()) return 1; /* the stack */
  if (a >= ctx && a < ctx + mlen) return 1;
  uint64_t o = a - g_iso_base;
  if (o >= ISO_A && o < ISO_A + 64 && (o - ISO_A) % 32 < 16) return 1;
  return o >= ISO_B && o < ISO_B + 8;
}

static void job(int bench, char *code_hex, char *mem_hex, long repeat, uint64_t budget) {
  int iso = bench == 2;
  if (iso) bench = 0;
  size_t clen = 0, mlen = 0;
  uint8_t *code = unhex(code_hex, &clen);
  uint8_t *mem = strcmp(mem_hex, "-") ? unhex(mem_hex, &mlen) : NULL;
  if (!code || clen % 8 || (strcmp(mem_hex, "-") && !mem)) {
    printf("error bad hex\n");
    free(code); free(mem);
    return;
  }
  if (bpfvm_init(g_ro, g_rw) != 0) { printf("error init\n"); exit(2); }
  static const bpfvm_helper_fn fns[6] = {h_gather, h_memfrob, h_noop, h_sqrti, h_strcmp, h_unwind};
  for (uint32_t i = 0; i < 6; i++) { bpfvm_register_helper(i); bpfvm_set_helper_fn(i, fns[i]); }
  bpfvm_set_budget(budget);
  uint64_t *raw = malloc(clen + 8);
  memcpy(raw, code, clen);
  g_iso_base = (bpfvm_alloc_start() + 7u) & ~7u;
  if (iso) {
    bpfvm_region_t regions[2] = {
        {1, (uint32_t)g_iso_base + ISO_A, 64, 32, 16, BPFVM_REGION_VALUES, 0},
        {2, (uint32_t)g_iso_base + ISO_B, 8, 8, 8, BPFVM_REGION_VALUES, 0},
    };
    bpfvm_set_load_env(regions, 2, 0, 0);
    bpfvm_set_helper_fn(1, h_iso_lookup);
    memset(bpfvm_host_ptr(bpfvm_alloc_start()), 0xa5, bpfvm_rw_hi() - bpfvm_alloc_start());
    memset(bpfvm_host_ptr(g_iso_base + ISO_A), 0, 64);
    memset(bpfvm_host_ptr(g_iso_base + ISO_B), 0, 8);
  }
  int32_t h = bpfvm_load(raw, (uint32_t)(clen / 8));
  free(raw);
  free(code);
  if (h < 0) {
    printf("load %u %s\n", bpfvm_err_pc(), bpfvm_err_msg());
    free(mem);
    return;
  }
  uint64_t ctx = 0;
  if (mem && mlen) {
    ctx = (bpfvm_alloc_start() + 7u) & ~7u;
    if (!in_rw(ctx, mlen)) { printf("error mem too large\n"); free(mem); return; }
    memcpy(bpfvm_host_ptr(ctx), mem, mlen);
  }
  uint8_t *snap = NULL;
  size_t rw_len = bpfvm_rw_hi() - bpfvm_ro_lo();
  if (iso) {
    snap = malloc(rw_len);
    memcpy(snap, bpfvm_host_ptr(bpfvm_ro_lo()), rw_len);
  }
  double t0 = now_ns();
  int st = 0;
  long i;
  for (i = 0; i < (bench ? repeat : 1); i++) {
    st = bpfvm_run((uint32_t)h, ctx, mlen);
    if (st) break;
  }
  double t1 = now_ns();
  if (iso) {
    const uint8_t *now = bpfvm_host_ptr(bpfvm_ro_lo());
    unsigned long changed = 0;
    for (size_t i = 0; i < rw_len; i++)
      if (now[i] != snap[i] && !iso_allowed(bpfvm_ro_lo() + i, ctx, mlen)) changed++;
    free(snap);
    if (st) printf("fault %s %u %llu changed=%lu\n", kind_name(st), bpfvm_fault_pc(), (unsigned long long)bpfvm_fault_addr(), changed);
    else printf("ok %llu %llu changed=%lu\n", (unsigned long long)bpfvm_result(), (unsigned long long)bpfvm_insn_count(), changed);
  } else if (st) printf("fault %s %u %llu\n", kind_name(st), bpfvm_fault_pc(), (unsigned long long)bpfvm_fault_addr());
  else if (bench) printf("bench %llu %llu %.0f\n", (unsigned long long)bpfvm_result(), (unsigned long long)bpfvm_insn_count(), t1 - t0);
  else printf("ok %llu %llu\n", (unsigned long long)bpfvm_result(), (unsigned long long)bpfvm_insn_count());
  free(mem);
}

static void hash_job(uint32_t ks, uint32_t vs, uint32_t max, const char *ops_hex) {
  size_t n = 0;
  uint8_t *ops = unhex(ops_hex, &n);
  if (!ops || bpfvm_init(g_ro, g_rw) != 0 || bpfvm_register_hash_map(7, ks, vs, max, bpfvm_alloc_start()) != 0) {
    printf("error hash setup\n");
    free(ops);
    return;
  }
  size_t step = 2 + ks + vs;
  for (size_t i = 0; i + step <= n; i += step) {
    const uint8_t *key = ops + i + 2, *value = key + ks;
    int64_t r = bpfvm_hash_op(7, ops[i], key, value, ops[i + 1]);
    if (ops[i] != 1) printf("%lld ", (long long)r);
    else if (r == 0) printf("- ");
    else {
      const uint8_t *v = bpfvm_host_ptr((uint64_t)r);
      for (uint32_t j = 0; j < vs; j++) printf("%02x", v[j]);
      printf(" ");
    }
  }
  uint8_t *keys = malloc((size_t)ks * max + 1);
  uint32_t *slots = malloc(sizeof(uint32_t) * max + 4);
  printf("n=%d\n", bpfvm_hash_entries(7, keys, slots, max));
  free(keys), free(slots), free(ops);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ro") && i + 1 < argc) g_ro = (uint32_t)strtoul(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--rw") && i + 1 < argc) g_rw = (uint32_t)strtoul(argv[++i], NULL, 0);
    else { fprintf(stderr, "usage: %s [--ro BYTES] [--rw BYTES] < batch\n", argv[0]); return 2; }
  }
  size_t cap = 0;
  char *line = NULL;
  ssize_t got;
  while ((got = getline(&line, &cap, stdin)) >= 0) {
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r\n", &save);
    if (!cmd || cmd[0] == '#') continue;
    char *code = strtok_r(NULL, " \t\r\n", &save);
    char *mem = strtok_r(NULL, " \t\r\n", &save);
    char *a3 = strtok_r(NULL, " \t\r\n", &save);
    char *a4 = strtok_r(NULL, " \t\r\n", &save);
    if (!strcmp(cmd, "hash")) {
      if (!code || !mem || !a3 || !a4) { printf("error bad line\n"); continue; }
      hash_job((uint32_t)strtoul(code, NULL, 0), (uint32_t)strtoul(mem, NULL, 0), (uint32_t)strtoul(a3, NULL, 0), a4);
      fflush(stdout);
      continue;
    }
    if (!code || !mem) { printf("error bad line\n"); continue; }
    if (!strcmp(cmd, "run")) job(0, code, mem, 1, a3 ? strtoull(a3, NULL, 0) : 1000000);
    else if (!strcmp(cmd, "iso")) job(2, code, mem, 1, a3 ? strtoull(a3, NULL, 0) : 1000000);
    else if (!strcmp(cmd, "bench")) job(1, code, mem, a3 ? strtol(a3, NULL, 0) : 1, a4 ? strtoull(a4, NULL, 0) : 1000000000000ull);
    else printf("error unknown command\n");
    fflush(stdout);
  }
  free(line);
  return 0;
}
