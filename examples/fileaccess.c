// The pathfilter example target: "accesses" each path given, once per argument, and
// prints them: "access PATH".
#include <stdio.h>

__attribute__((noinline)) int access_path(const char *path) {
  printf("access %s\n", path);
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) access_path(argv[i]);
  fflush(stdout);
  return 0;
}
