// The stackcount example target: leaf() reached A times through alpha() and B times
// through beta() → gamma(). Built with frame pointers. Prints "alpha=A beta=B leaf=0x...".
#include <stdio.h>
#include <stdlib.h>

static volatile long work;

__attribute__((noinline)) void leaf(void) { work++; }
__attribute__((noinline)) void alpha(void) { leaf(); work++; }
__attribute__((noinline)) void gamma_(void) { leaf(); work++; }
__attribute__((noinline)) void beta(void) { gamma_(); work++; }

int main(int argc, char **argv) {
  int a = argc > 1 ? atoi(argv[1]) : 30;
  int b = argc > 2 ? atoi(argv[2]) : 20;
  for (int i = 0; i < a; i++) alpha();
  for (int i = 0; i < b; i++) beta();
  printf("alpha=%d beta=%d leaf=%p\n", a, b, (void *)leaf);
  fflush(stdout);
  return 0;
}
