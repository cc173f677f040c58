/* Bench-only kernel uprobe peer: loads one program of a clang-built eBPF object into the
 * kernel with libbpf, attaches it as a uprobe on BINARY:FUNC for every process, runs
 * COMMAND under it and reports how often the program ran. The same object and program the
 * bpftime-ts rows use, so the benchmark compares the same counter on both sides.
 *
 * usage: kuprobe OBJECT PROGRAM BINARY FUNC COMMAND [ARGS...]
 * stdout: the command's own output; stderr, last line: "kernel_hits N".
 * Exit 77 (with one line on stderr) when kernel eBPF is not usable here, so callers can skip. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SKIP 77

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap) {
  (void)level, (void)fmt, (void)ap;
  return 0; /* libbpf's own chatter would bury the one line that says why we skip */
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: kuprobe OBJECT PROGRAM BINARY FUNC COMMAND [ARGS...]\n");
    return 2;
  }
  const char *object = argv[1], *program = argv[2], *binary = argv[3], *func = argv[4];
  libbpf_set_print(quiet);
  struct bpf_object *obj = bpf_object__open_file(object, NULL);
  if (!obj) {
    fprintf(stderr, "kuprobe: cannot open %s: %s\n", object, strerror(errno));
    return SKIP;
  }
  /* Only the counter: the object's other programs (an override) are not for uprobes in the kernel. */
  struct bpf_program *prog = NULL, *p;
  bpf_object__for_each_program(p, obj) {
    int mine = strcmp(bpf_program__name(p), program) == 0;
    bpf_program__set_autoload(p, mine);
    if (mine) prog = p;
  }
  if (!prog) {
    fprintf(stderr, "kuprobe: no program %s in %s\n", program, object);
    return 2;
  }
  int err = bpf_object__load(obj);
  if (err) {
    fprintf(stderr, "kuprobe: the kernel refused to load %s: %s\n", program, strerror(-err));
    return SKIP;
  }
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func);
  struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, -1, binary, 0, &opts);
  if (!link) {
    fprintf(stderr, "kuprobe: cannot attach a kernel uprobe to %s:%s: %s\n", binary, func, strerror(errno));
    return SKIP;
  }
  pid_t child = fork();
  if (child == 0) {
    execv(argv[5], argv + 5);
    fprintf(stderr, "kuprobe: cannot run %s: %s\n", argv[5], strerror(errno));
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  /* The program counts in element 0 of its first array map. */
  unsigned long long hits = 0;
  struct bpf_map *map;
  bpf_object__for_each_map(map, obj) {
    if (bpf_map__type(map) != BPF_MAP_TYPE_ARRAY) continue;
    unsigned int zero = 0;
    bpf_map_lookup_elem(bpf_map__fd(map), &zero, &hits);
    break;
  }
  bpf_link__destroy(link);
  bpf_object__close(obj);
  fprintf(stderr, "kernel_hits %llu\n", hits);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
