// The usdtreq example target: a "server" with USDT probes (sys/sdt.h), as applications
// ship them: request_start(id, path), request_done(id, status, bytes) and, behind a
// semaphore (only prepared while a tracer is attached), debug(id, cost).
// usage: sdt_app N   Serves N requests; prints each: "request ID PATH STATUS BYTES", and
// at the end how often the debug probe was enabled: "debug=K".
//        sdt_app 0 [THREADS [PAUSE_US]]   Serves requests forever on THREADS threads (PAUSE_US
// apart), quietly, after printing "ready PID" (a process to attach to and detach from).
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/sdt.h>

#define SEMAPHORE(n) __extension__ unsigned short app_##n##_semaphore __attribute__((unused)) __attribute__((section(".probes")))
SEMAPHORE(request_start);
SEMAPHORE(request_done);
SEMAPHORE(debug);

static const char *paths[] = { "/index.html", "/api/items", "/missing", "/api/items/7" };
static long debug_fired;
static int quiet;

__attribute__((noinline)) long serve(int id) {
  const char *path = paths[id % 4];
  DTRACE_PROBE2(app, request_start, id, path);
  int status = id % 4 == 2 ? 404 : 200;
  long bytes = status == 200 ? 100 * (id % 4 + 1) : 0;
  if (app_debug_semaphore) {
    long cost = (long)id * id;
    DTRACE_PROBE2(app, debug, id, cost);
    debug_fired++;
  }
  DTRACE_PROBE3(app, request_done, id, status, bytes);
  if (!quiet) printf("request %d %s %d %ld\n", id, path, status, bytes);
  return bytes;
}

static long pause_us;

static void *serve_forever(void *arg) {
  for (int id = 0;; id++) {
    serve(id);
    if (pause_us) usleep(pause_us);
  }
  return arg;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 8;
  if (n == 0) {
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    pause_us = argc > 3 ? atol(argv[3]) : 0;
    quiet = 1;
    printf("ready %d\n", getpid());
    fflush(stdout);
    pthread_t t;
    for (int i = 1; i < threads; i++) pthread_create(&t, NULL, serve_forever, NULL);
    serve_forever(NULL);
  }
  for (int i = 0; i < n; i++) serve(i);
  printf("debug=%ld\n", debug_fired);
  fflush(stdout);
  return 0;
}
