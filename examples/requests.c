// The newclients example target: one handle_request() per client id given, then how many
// distinct ids it saw: "clients=N distinct=D". With -n N it sends ids 0..N-1 twice.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned long last_client, handled;

__attribute__((noinline)) void handle_request(unsigned long client) {
  last_client = client;
  handled++;
}

int main(int argc, char **argv) {
  unsigned long ids[4096];
  int n = 0;
  if (argc == 3 && strcmp(argv[1], "-n") == 0) {
    int k = atoi(argv[2]);
    for (int r = 0; r < 2; r++)
      for (int i = 0; i < k && n < 4096; i++) ids[n++] = (unsigned long)i * 2654435761u;
  } else {
    for (int i = 1; i < argc && n < 4096; i++) ids[n++] = strtoul(argv[i], NULL, 0);
  }
  int distinct = 0;
  for (int i = 0; i < n; i++) {
    int dup = 0;
    for (int j = 0; j < i && !dup; j++) dup = ids[j] == ids[i];
    distinct += !dup;
    handle_request(ids[i]);
  }
  printf("clients=%d distinct=%d\n", n, distinct);
  fflush(stdout);
  return 0;
}
