// The dispatch example target: one handle(op) per argument (0 get, 1 put, 2 delete, other
// numbers unknown ops), then a summary: "get=G put=P delete=D other=O".
#include <stdio.h>
#include <stdlib.h>

static volatile long served;

__attribute__((noinline)) int handle(int op) {
  served += op;
  return op;
}

int main(int argc, char **argv) {
  int n[4] = { 0 };
  for (int i = 1; i < argc; i++) {
    int op = atoi(argv[i]);
    handle(op);
    n[op >= 0 && op <= 2 ? op : 3]++;
  }
  printf("get=%d put=%d delete=%d other=%d\n", n[0], n[1], n[2], n[3]);
  fflush(stdout);
  return 0;
}
