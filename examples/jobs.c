// The jobqueue example target: submits N jobs (ids 1..N, priority id*10), then runs K of
// them, and says so: "submit ID PRIO", "run".
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void submit_job(unsigned id, unsigned prio) {
  printf("submit %u %u\n", id, prio);
}

__attribute__((noinline)) void run_next(void) {
  printf("run\n");
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 6;
  int k = argc > 2 ? atoi(argv[2]) : 2;
  for (int i = 1; i <= n; i++) submit_job(i, i * 10);
  for (int i = 0; i < k; i++) run_next();
  fflush(stdout);
  return 0;
}
