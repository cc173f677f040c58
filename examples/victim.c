// The demo target: an ordinary program with a function worth tracing.
// usage: victim [CALLS]   Calls target_add CALLS times (default 1000); every call does a
// little work whose length varies, so latency histograms have a shape. CALLS 0 runs until
// killed, one call per millisecond (a process to `bpftime-ts attach` to).
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) long target_add(long a, long b) {
  volatile long spin = 0;
  long rounds = (a % 7) * (a % 7) * 200; // 0 .. 7200 rounds: a spread of latencies
  for (long i = 0; i < rounds; i++) spin += i;
  return a + b;
}

int main(int argc, char **argv) {
  long calls = argc > 1 ? atol(argv[1]) : 1000;
  long sum = 0;
  for (long i = 0; calls == 0 || i < calls; i++) {
    sum = target_add(i, sum) % 1000003;
    if (calls == 0) usleep(1000);
  }
  printf("victim: %ld calls, sum %ld\n", calls, sum);
  return 0;
}
