/* The native library's own memory and string routines, built with -mgeneral-regs-only
 * like the rest of libbpfvm.so (vm/Makefile).
 *
 * Programs run on the target's threads in the middle of its code: at a rewritten syscall
 * site, whose caller may keep values in any vector register across the `syscall` (the
 * kernel keeps them all). glibc's memcpy and friends pick AVX-512 versions here that use
 * zmm16-31, which no register-saving stub of ours saves: a traced getpid changed a
 * victim's zmm16-31 (test/fixtures/victims/sysvec.c). So nothing this library runs may
 * touch a vector register, libc's string functions included; these definitions are hidden,
 * so the library's own calls bind to them and the target's libc is left alone.
 *
 * Plain loops, 8 bytes at a time where both sides allow. -fno-tree-loop-distribute-patterns
 * (Makefile) keeps gcc from turning them back into calls to themselves. */
#ifndef __wasm__
#include <stddef.h>
#include <stdint.h>

#define HIDDEN __attribute__((visibility("hidden")))

HIDDEN void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  for (; n >= 8; n -= 8, d += 8, s += 8) {
    uint64_t w;
    __builtin_memcpy(&w, s, 8); /* an 8-byte load: inlined, never a call */
    __builtin_memcpy(d, &w, 8);
  }
  while (n--) *d++ = *s++;
  return dst;
}

HIDDEN void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d <= s || d >= s + n) return memcpy(dst, src, n);
  while (n--) d[n] = s[n];
  return dst;
}

HIDDEN void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  uint64_t w = 0x0101010101010101ull * (unsigned char)c;
  for (; n >= 8; n -= 8, d += 8) __builtin_memcpy(d, &w, 8);
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

HIDDEN int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  for (; n >= 8; n -= 8, p += 8, q += 8) {
    uint64_t x, y;
    __builtin_memcpy(&x, p, 8);
    __builtin_memcpy(&y, q, 8);
    if (x != y) break;
  }
  for (; n; n--, p++, q++)
    if (*p != *q) return *p < *q ? -1 : 1;
  return 0;
}

HIDDEN size_t strnlen(const char *s, size_t max) {
  size_t n = 0;
  while (n < max && s[n]) n++;
  return n;
}
#endif
