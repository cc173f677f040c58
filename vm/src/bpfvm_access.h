/* Run-time memory ownership checks and helper dispatch: static inline, so that the
 * interpreter (interp.c) inlines them on its hot path; bpfvm_accessible (bpfvm.c) is the
 * exported form of the same check for helpers. */
#ifndef BPFVM_ACCESS_H
#define BPFVM_ACCESS_H

#include "bpfvm_internal.h"

#ifdef __wasm__
__attribute__((import_module("env"), import_name("call_helper")))
extern uint64_t env_call_helper(uint32_t id);
#endif

/* Whether [a, a + len) lies inside the one region the program owns that pointer `base`
 * points into (a == base for helper buffers): a live stack frame (the current one or a
 * caller's), the context, or one element of a value region. A pointer one past a region's
 * end with a negative offset (r10 - 8) belongs to that region. */
static inline int owned(const prog_t *p, uint64_t base, uint64_t a, uint64_t len, int write, uint64_t fp, uint64_t ctx, uint64_t ctx_len) {
  uint64_t stack_top = g_rw_lo + BPFVM_STACK_BYTES, lo = fp - BPFVM_FRAME_STACK;
  uint64_t probe = a < base ? base - 1 : base;
  if (probe >= lo && probe < stack_top) {
    uint64_t frame = lo + (probe - lo) / BPFVM_FRAME_STACK * BPFVM_FRAME_STACK;
    return a >= frame && a - frame <= BPFVM_FRAME_STACK && len <= BPFVM_FRAME_STACK - (a - frame);
  }
  if (ctx_len && probe >= ctx && probe - ctx < ctx_len)
    return a >= ctx && a - ctx <= ctx_len && len <= ctx_len - (a - ctx) && (!write || !(p->ctx_flags & BPFVM_CTX_RO));
  for (int pass = 0; pass < 2; pass++) {
    uint64_t q = pass ? probe : base;
    if (pass && q == base) break;
    for (uint32_t i = 0; i < p->nregions; i++) {
      const bpfvm_region_t *r = &p->regions[i];
      if (!(r->flags & BPFVM_REGION_VALUES) || q < r->base || q - r->base >= r->size) continue;
      if (write && (r->flags & BPFVM_REGION_RO)) return 0;
      uint64_t elem = r->base + (q - r->base) / r->stride * r->stride;
      return a >= elem && a - elem <= r->value_size && len <= r->value_size - (a - elem);
    }
  }
  return 0;
}

/* Whether a helper of the run in progress is asking: another thread's question (outside
 * any run) is about the arena, not about that run's regions. */
#ifdef __wasm__
#define IN_OWN_HELPER() (g_running && g_in_helper)
#else
#define IN_OWN_HELPER() (g_running && g_in_helper && bpfvm_self_holds_lock())
#endif

/* bpfvm_accessible: whether the running program may touch [addr, addr + len) (helpers check
 * their buffers with it); outside a run, whether it lies in the arena. */
static inline int32_t accessible(uint64_t addr, uint64_t len, uint32_t write) {
  const int own = IN_OWN_HELPER();
  if (own && g_run.rec_len && addr >= g_run.rec && addr - g_run.rec <= g_run.rec_len && len <= g_run.rec_len - (addr - g_run.rec))
    return 1;
  if (own && g_run.prog) return owned(g_run.prog, addr, addr, len, (int)write, g_run.fp, g_run.ctx, g_run.ctx_len);
  uint64_t lo = write ? g_rw_lo : g_ro_lo;
  return addr >= lo && addr <= g_rw_hi && len <= g_rw_hi - addr;
}

/* Whether map `handle` belongs to the running program's object (always, for programs loaded
 * without regions: the VM then knows no maps to tell apart). */
static inline int owns_handle(uint64_t handle) {
  const prog_t *p = g_run.prog;
  if (!p || !p->nregions) return 1;
  for (uint32_t i = 0; i < p->nregions; i++) if (p->regions[i].handle == handle) return 1;
  return 0;
}

/* 1 and *out set when `map` is a registered array map and the key is readable. */
static inline int array_lookup(uint64_t map, uint64_t key, uint64_t *out) {
  for (uint32_t i = 0; i < g_narray_maps; i++) {
    if (g_array_maps[i].handle != map) continue;
    if (!accessible(key, 4, 0)) return 0; /* the host helper reports the bad key */
    uint32_t idx;
    __builtin_memcpy(&idx, HP(key), 4);
    *out = idx < g_array_maps[i].max ? (uint64_t)g_array_maps[i].base + (uint64_t)idx * g_array_maps[i].stride : 0;
    return 1;
  }
  return 0;
}
/* The helper argument that is a map handle (g_map_arg): a program names only its own
 * object's maps. */
static inline uint32_t map_arg(uint32_t id) { return id < BPFVM_MAX_HELPERS ? g_map_arg[id] : 0; }

/* Calls helper `id` for the running program `cur`: array and hash map operations and
 * bpf_override_return are answered here, the rest by the host. */
static inline uint64_t call_helper(const prog_t *cur, uint32_t id, uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  uint64_t v;
  uint32_t ma;
  /* Another object's map (or no map): the helper's error for a bad map, and nothing touched. */
  if (cur->nregions && (ma = map_arg(id)) && !owns_handle(ma == 1 ? a : b))
    return id == BPFVM_HELPER_MAP_LOOKUP_ELEM || id == BPFVM_HELPER_RINGBUF_RESERVE ? 0 : (uint64_t)-22; /* NULL / -EINVAL */
  if (id == BPFVM_HELPER_MAP_LOOKUP_ELEM && g_narray_maps && array_lookup(a, b, &v)) return v;
#ifndef __wasm__
  if (id <= BPFVM_HELPER_MAP_DELETE_ELEM && bpfvm_nhash_maps && bpfvm_hash_helper(id, a, b, c, d, &v)) return v;
  if (id == BPFVM_HELPER_OVERRIDE_RETURN && bpfvm_override) {
    bpfvm_override[0] = 1;
    bpfvm_override[1] = (int64_t)b;
    return 0;
  }
#endif
#ifdef __wasm__
  g_hargs[0] = a; g_hargs[1] = b; g_hargs[2] = c; g_hargs[3] = d; g_hargs[4] = e;
  return env_call_helper(id);
#else
  return g_helper_fns[id](a, b, c, d, e);
#endif
}

/* The run-time half of isolation: the check the verifier chose for this instruction. */
static inline int mem_ok(const dinsn *I, const prog_t *cur, uint64_t base, uint64_t a, uint32_t sz, int write, uint64_t fp, uint64_t ctx, uint64_t ctx_len) {
  switch (I->chk) {
  case CHK_NULL: return a >= BPFVM_ARENA_VADDR;
  case CHK_STACK: return a - (fp + (uint64_t)BPFVM_FRAME_STACK * MEM_AUX(I) - BPFVM_FRAME_STACK) <= BPFVM_FRAME_STACK - sz;
  case CHK_RECORD: return 0;
  case CHK_CTX: return ctx_len >= sz && a - ctx <= ctx_len - sz;
  case CHK_ELEM: {
    const bpfvm_region_t *r = &cur->regions[MEM_AUX(I)];
    uint64_t d = a - r->base;
    return d < r->size && d % r->stride + sz <= r->value_size;
  }
  case CHK_ARENA: {
    uint64_t lo = write ? g_rw_lo : g_ro_lo;
    return a - lo <= (g_rw_hi - lo) - sz;
  }
  default: return owned(cur, base, a, sz, write, fp, ctx, ctx_len);
  }
}

#endif
