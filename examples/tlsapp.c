// The sslsniff example target: SSL_read/SSL_write look-alikes (same signatures) called on
// a few messages; each call printed as "write LEN TEXT" / "read LEN TEXT".
#include <stdio.h>
#include <string.h>

static char wire[256];
static volatile int wire_len;

__attribute__((noinline)) int SSL_write(void *ssl, const void *buf, int num) {
  memcpy(wire, buf, num);
  wire_len = num;
  return num;
}

__attribute__((noinline)) int SSL_read(void *ssl, void *buf, int num) {
  int n = wire_len < num ? wire_len : num;
  memcpy(buf, wire, n);
  return n;
}

int main(void) {
  const char *msgs[] = { "GET / HTTP/1.1", "Host: example", "ping" };
  char in[64];
  for (int i = 0; i < 3; i++) {
    int len = (int)strlen(msgs[i]);
    SSL_write(NULL, msgs[i], len);
    printf("write %d %s\n", len, msgs[i]);
    memset(in, 0, sizeof(in));
    memcpy(in, msgs[i], len); // what the read below will hand back (buffer filled at entry)
    SSL_read(NULL, in, len);
    printf("read %d %s\n", len, in);
  }
  fflush(stdout);
  return 0;
}
