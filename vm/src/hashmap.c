/* BPF_MAP_TYPE_HASH inside the VM (native build): see the comment below. */
#include "bpfvm_internal.h"
#ifndef __wasm__
#include <stdlib.h>
#include <string.h>
/* ---------------------------------------------------------------- hash maps (native build)
 * BPF_MAP_TYPE_HASH with its index in C, so programs' lookup/update/delete never leave the
 * VM. Values live in the arena (preallocated, max_entries slots, as the kernel's default
 * hash maps), keys and the open-addressing index in the host heap. Programs reach them
 * through call_helper under the run lock; the host through bpfvm_hash_* below, which take it. */
typedef struct {
  uint64_t handle;
  uint32_t key_size, value_size, stride, max;
  uint64_t values; /* VM address of slot 0's value */
  uint32_t mask;   /* buckets - 1 */
  int32_t *buckets; /* -1 empty, -2 deleted, else slot */
  uint8_t *keys;
  uint8_t *used;
  uint32_t *free_slots;
  uint32_t free_top;
  uint32_t deleted; /* tombstones in buckets; rebuilt away once they outnumber max */
} hash_map_t;
static hash_map_t g_hash_maps[BPFVM_MAX_ARRAY_MAPS];
uint32_t bpfvm_nhash_maps;

static uint32_t hash_bytes(const uint8_t *k, uint32_t n) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; i++) h = (h ^ k[i]) * 16777619u;
  return h;
}

static hash_map_t *hash_map(uint64_t handle) {
  for (uint32_t i = 0; i < bpfvm_nhash_maps; i++)
    if (g_hash_maps[i].handle == handle) return &g_hash_maps[i];
  return 0;
}

/* Bucket index holding `key`, or -1; *ins gets the first reusable bucket on the way. */
static int64_t hash_find(const hash_map_t *m, const uint8_t *key, int64_t *ins) {
  uint32_t b = hash_bytes(key, m->key_size) & m->mask;
  *ins = -1;
  for (uint32_t n = 0; n <= m->mask; n++, b = (b + 1) & m->mask) {
    int32_t s = m->buckets[b];
    if (s == -1) {
      if (*ins < 0) *ins = b;
      return -1;
    }
    if (s == -2) {
      if (*ins < 0) *ins = b;
      continue;
    }
    if (memcmp(m->keys + (uint64_t)s * m->key_size, key, m->key_size) == 0) return b;
  }
  return -1;
}

static uint64_t hash_lookup(hash_map_t *m, const uint8_t *key) {
  int64_t ins, b = hash_find(m, key, &ins);
  return b < 0 ? 0 : m->values + (uint64_t)m->buckets[b] * m->stride;
}

static int64_t hash_update(hash_map_t *m, const uint8_t *key, const uint8_t *value, uint64_t flags) {
  if (flags > 2) return -22; /* EINVAL */
  int64_t ins, b = hash_find(m, key, &ins);
  if (b >= 0) {
    if (flags == 1) return -17; /* BPF_NOEXIST: EEXIST */
    memcpy(HP(m->values + (uint64_t)m->buckets[b] * m->stride), value, m->value_size);
    return 0;
  }
  if (flags == 2) return -2; /* BPF_EXIST: ENOENT */
  if (m->free_top == 0 || ins < 0) return -7; /* E2BIG */
  uint32_t slot = m->free_slots[--m->free_top];
  memcpy(m->keys + (uint64_t)slot * m->key_size, key, m->key_size);
  uint8_t *v = HP(m->values + (uint64_t)slot * m->stride);
  memset(v, 0, m->stride);
  memcpy(v, value, m->value_size);
  m->used[slot] = 1;
  m->buckets[ins] = (int32_t)slot;
  return 0;
}

/* Tombstones only lengthen probes; with churn (per-thread keys of short-lived threads)
 * they would fill every empty bucket. Rebuilding from the live slots drops them all. */
static void hash_rebuild(hash_map_t *m) {
  memset(m->buckets, 0xff, sizeof(int32_t) * (m->mask + 1));
  for (uint32_t s = 0; s < m->max; s++) {
    if (!m->used[s]) continue;
    uint32_t b = hash_bytes(m->keys + (uint64_t)s * m->key_size, m->key_size) & m->mask;
    while (m->buckets[b] != -1) b = (b + 1) & m->mask;
    m->buckets[b] = (int32_t)s;
  }
  m->deleted = 0;
}

static int64_t hash_delete(hash_map_t *m, const uint8_t *key) {
  int64_t ins, b = hash_find(m, key, &ins);
  if (b < 0) return -2; /* ENOENT */
  uint32_t slot = (uint32_t)m->buckets[b];
  m->used[slot] = 0;
  m->free_slots[m->free_top++] = slot;
  /* Before an empty bucket no probe needs to pass here: it can be empty too. */
  if (m->buckets[(b + 1) & m->mask] == -1) {
    m->buckets[b] = -1;
  } else {
    m->buckets[b] = -2;
    if (++m->deleted > m->max) hash_rebuild(m);
  }
  return 0;
}

/* Program side: 1 and *out set when `map` is a native hash map (bad pointers: -EFAULT). */
int bpfvm_hash_helper(uint32_t id, uint64_t map, uint64_t key, uint64_t value, uint64_t flags, uint64_t *out) {
  hash_map_t *m = hash_map(map);
  if (!m) return 0;
  if (!vm_readable(key, m->key_size)) {
    *out = id == BPFVM_HELPER_MAP_LOOKUP_ELEM ? 0 : (uint64_t)-14;
    return 1;
  }
  if (id == BPFVM_HELPER_MAP_LOOKUP_ELEM) {
    *out = hash_lookup(m, HP(key));
  } else if (id == BPFVM_HELPER_MAP_UPDATE_ELEM) {
    if (!vm_readable(value, m->value_size)) *out = (uint64_t)-14;
    else *out = (uint64_t)hash_update(m, HP(key), HP(value), flags);
  } else {
    *out = (uint64_t)hash_delete(m, HP(key));
  }
  return 1;
}

int32_t bpfvm_register_hash_map(uint64_t handle, uint32_t key_size, uint32_t value_size, uint32_t max, uint64_t values) {
  if (bpfvm_nhash_maps >= BPFVM_MAX_ARRAY_MAPS || !key_size || !value_size || !max) return -1;
  uint32_t stride = (value_size + 7u) & ~7u;
  if (!vm_writable(values, (uint64_t)stride * max)) return -2;
  uint32_t buckets = 16;
  while (buckets < 2u * max) buckets <<= 1;
  hash_map_t m = {handle, key_size, value_size, stride, max, values, buckets - 1,
                  malloc(sizeof(int32_t) * buckets), calloc(max, key_size), calloc(max, 1),
                  malloc(sizeof(uint32_t) * max), max, 0};
  if (!m.buckets || !m.keys || !m.used || !m.free_slots) {
    free(m.buckets), free(m.keys), free(m.used), free(m.free_slots);
    return -3;
  }
  memset(m.buckets, 0xff, sizeof(int32_t) * buckets);
  for (uint32_t i = 0; i < max; i++) m.free_slots[i] = max - 1 - i; /* low slots first */
  int32_t token = bpfvm_lock();
  g_hash_maps[bpfvm_nhash_maps++] = m;
  bpfvm_unlock(token);
  return 0;
}

/* Host side, under the run lock: op 1 lookup (returns the value's VM address or 0),
 * 2 update (value from host memory), 3 delete; -EINVAL (-22) for an unknown map. */
int64_t bpfvm_hash_op(uint64_t handle, uint32_t op, const uint8_t *key, const uint8_t *value, uint64_t flags) {
  int64_t r = -22;
  int32_t token = bpfvm_lock();
  hash_map_t *m = hash_map(handle);
  if (m) r = op == 1 ? (int64_t)hash_lookup(m, key) : op == 2 ? hash_update(m, key, value, flags) : hash_delete(m, key);
  bpfvm_unlock(token);
  return r;
}

/* Host side: copies up to `max_out` (key, slot) pairs of live entries, in slot order, into
 * keys_out (key_size each) and slots_out; returns how many. */
int32_t bpfvm_hash_entries(uint64_t handle, uint8_t *keys_out, uint32_t *slots_out, uint32_t max_out) {
  int32_t n = 0;
  int32_t token = bpfvm_lock();
  hash_map_t *m = hash_map(handle);
  for (uint32_t s = 0; m && s < m->max && (uint32_t)n < max_out; s++) {
    if (!m->used[s]) continue;
    memcpy(keys_out + (uint64_t)n * m->key_size, m->keys + (uint64_t)s * m->key_size, m->key_size);
    slots_out[n++] = s;
  }
  bpfvm_unlock(token);
  return n;
}

void bpfvm_hash_maps_free(void) {
  for (uint32_t i = 0; i < bpfvm_nhash_maps; i++) {
    free(g_hash_maps[i].buckets), free(g_hash_maps[i].keys), free(g_hash_maps[i].used), free(g_hash_maps[i].free_slots);
  }
  bpfvm_nhash_maps = 0;
}
#endif
