// The opensnoop / statsnoop example target: opens and stat()s each path it is given, with
// the stat going through syscall 4 itself (glibc's stat() uses newfstatat), and says what
// each call returned: "open PATH -> FD_OR_-ERRNO", "stat PATH -> 0_OR_-ERRNO".
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    int fd = open(argv[i], O_RDONLY);
    printf("open %s -> %d\n", argv[i], fd < 0 ? -errno : fd);
    if (fd >= 0) close(fd);
    struct stat st;
    long r = syscall(SYS_stat, argv[i], &st);
    printf("stat %s -> %ld\n", argv[i], r < 0 ? (long)-errno : r);
  }
  fflush(stdout);
  return 0;
}
