/*
 * child-rescue PID: frees a forked child of the target that Frida's own exit hook holds
 * forever, by resuming the call it was making as if the hook were not there.
 *
 * Why: a child forked while Frida's agent is being injected or torn down inherits an agent
 * whose exit monitor (a listener on _exit/exit) does not know it runs in a child; at exit
 * it waits with sched_yield for the agent's main thread, which only exists in the parent
 * (measured: one stuck child per attach and per detach of a process forking every ~1 ms,
 * with an empty script too, Frida 17.25.2 and 17.26.2). The parent then waits for it for good.
 *
 * How: the child is single-threaded, so once it is stopped nothing runs beside us. Frida's
 * enter thunk keeps the caller's registers on the stack (GumCpuContext: rip, r15..r8, rdi,
 * rsi, rbp, rsp, rbx, rdx, rcx, rax); its rsp field points at the return address of the
 * hooked call. We find that frame, find the hooked function from the call instruction before
 * the return address (through the PLT), put the function's first bytes back from its file
 * (the child's pages are its own copy), and restart the function with those registers.
 * Only calls of exit functions (_exit, exit, abort...) are restarted: they have not begun
 * when the enter hook holds them, and they end the child. Anything else is left alone.
 *
 * Exit: 0 resumed (prints the function's address), 1 not a child held by a Frida hook
 * (untouched), 2 error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK_BYTES 8192
#define PATCH_BYTES 16
#define MAX_MAPS 4096

struct mapping {
  uint64_t lo, hi, offset;
  int exec;
  char path[256];
};

static struct mapping maps[MAX_MAPS];
static int n_maps;
static int mem_fd = -1;

static int read_maps(pid_t pid) {
  char name[64];
  snprintf(name, sizeof name, "/proc/%d/maps", pid);
  FILE *f = fopen(name, "r");
  if (!f) return -1;
  char line[512];
  while (n_maps < MAX_MAPS && fgets(line, sizeof line, f)) {
    struct mapping *m = &maps[n_maps];
    char perms[8] = "";
    m->path[0] = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %255[^\n]", &m->lo, &m->hi, perms, &m->offset, m->path) < 4) continue;
    m->exec = perms[2] == 'x';
    n_maps++;
  }
  fclose(f);
  return 0;
}

static const struct mapping *mapping_of(uint64_t addr) {
  for (int i = 0; i < n_maps; i++)
    if (addr >= maps[i].lo && addr < maps[i].hi) return &maps[i];
  return NULL;
}

static int is_frida(const struct mapping *m) { return m && strstr(m->path, "frida-agent") != NULL; }

/* Code of a file-backed executable mapping that is not Frida's: where callers live. */
static int is_file_code(const struct mapping *m) { return m && m->exec && m->path[0] == '/' && !is_frida(m); }

static int peek(uint64_t addr, void *buf, size_t len) {
  return pread(mem_fd, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -1;
}

static uint64_t peek64(uint64_t addr, int *ok) {
  uint64_t v = 0;
  if (peek(addr, &v, 8) != 0) *ok = 0;
  return v;
}

static int32_t rel32(const uint8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* The function a `call` ending at `ret` went to, through a PLT stub if it is one; 0 if unknown. */
static uint64_t callee_of(uint64_t ret) {
  uint8_t b[6];
  int ok = 1;
  uint64_t target = 0;
  if (peek(ret - 6, b, 6) != 0) return 0;
  if (b[1] == 0xe8) target = ret + (int64_t)rel32(b + 2);                              /* call rel32 */
  else if (b[0] == 0xff && b[1] == 0x15) target = peek64(ret + (int64_t)rel32(b + 2), &ok); /* call *[rip+d] */
  else return 0;
  if (!ok || !is_file_code(mapping_of(target))) return ok ? target : 0;
  uint8_t s[11];
  if (peek(target, s, sizeof s) != 0) return 0;
  int at = (s[0] == 0xf3 && s[1] == 0x0f && s[2] == 0x1e && s[3] == 0xfa) ? 4 : 0; /* endbr64 */
  if (s[at] == 0xf2) at++;                                                         /* bnd */
  if (s[at] == 0xff && s[at + 1] == 0x25) {                                        /* jmp *[rip+d]: a PLT slot */
    uint64_t got = target + at + 6 + (int64_t)rel32(s + at + 2);
    uint64_t fn = peek64(got, &ok);
    return ok ? fn : 0;
  }
  return target;
}

/* The first PATCH_BYTES of `fn` as its file has them; -1 when it is not file-backed. */
static int file_bytes(uint64_t fn, uint8_t *out) {
  const struct mapping *m = mapping_of(fn);
  if (!is_file_code(m) || fn + PATCH_BYTES > m->hi) return -1;
  int fd = open(m->path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = pread(fd, out, PATCH_BYTES, (off_t)(fn - m->lo + m->offset));
  close(fd);
  return n == PATCH_BYTES ? 0 : -1;
}

/*
 * Whether `fn` is one of the exit functions Frida's exit monitor hooks: only a call that has
 * not started yet and ends the process may be restarted (its name from the file's .dynsym).
 */
static int is_exit_function(uint64_t fn) {
  static const char *names[] = {"_exit", "_Exit", "exit", "quick_exit", "abort"};
  const struct mapping *m = mapping_of(fn);
  if (!is_file_code(m)) return 0;
  uint64_t vaddr = fn - m->lo + m->offset; /* text segments here have p_vaddr == p_offset */
  int fd = open(m->path, O_RDONLY), found = 0;
  if (fd < 0) return 0;
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) == sizeof eh && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_shentsize == sizeof(Elf64_Shdr)) {
    for (int i = 0; i < eh.e_shnum && !found; i++) {
      Elf64_Shdr sym, str;
      if (pread(fd, &sym, sizeof sym, (off_t)(eh.e_shoff + (uint64_t)i * sizeof sym)) != sizeof sym || sym.sh_type != SHT_DYNSYM) continue;
      if (pread(fd, &str, sizeof str, (off_t)(eh.e_shoff + (uint64_t)sym.sh_link * sizeof str)) != sizeof str) break;
      for (uint64_t o = 0; o + sizeof(Elf64_Sym) <= sym.sh_size && !found; o += sizeof(Elf64_Sym)) {
        Elf64_Sym e;
        if (pread(fd, &e, sizeof e, (off_t)(sym.sh_offset + o)) != sizeof e) break;
        if (e.st_value != vaddr || ELF64_ST_TYPE(e.st_info) != STT_FUNC) continue;
        char name[32] = "";
        if (pread(fd, name, sizeof name - 1, (off_t)(str.sh_offset + e.st_name)) <= 0) continue;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
          if (strcmp(name, names[k]) == 0) found = 1;
      }
    }
  }
  close(fd);
  return found;
}

enum { R_RIP, R_R15, R_R14, R_R13, R_R12, R_R11, R_R10, R_R9, R_R8, R_RDI, R_RSI, R_RBP, R_RSP, R_RBX, R_RDX, R_RCX, R_RAX, R_COUNT };

static int rescue(pid_t pid) {
  struct user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, pid, 0, &regs) != 0) return 2;
  /* Held by Frida: executing its code now, or in a syscall called straight from it. */
  int ok = 1;
  uint64_t top = peek64(regs.rsp, &ok);
  if (!is_frida(mapping_of(regs.rip)) && !(ok && is_frida(mapping_of(top)))) return 1;

  static uint64_t stack[STACK_BYTES / 8];
  size_t words = STACK_BYTES / 8;
  while (words > R_COUNT && peek(regs.rsp, stack, words * 8) != 0) words /= 2;
  for (size_t i = 0; i + R_COUNT < words; i++) {
    const uint64_t *ctx = &stack[i];
    uint64_t entry_rsp = ctx[R_RSP];
    uint64_t ctx_end = regs.rsp + 8 * (i + R_COUNT);
    if (entry_rsp < ctx_end || entry_rsp >= regs.rsp + 8 * words || (entry_rsp & 7) != 0) continue;
    uint64_t ret = stack[(entry_rsp - regs.rsp) / 8];
    if (!is_file_code(mapping_of(ret))) continue;
    uint64_t fn = callee_of(ret);
    uint8_t want[PATCH_BYTES], have[PATCH_BYTES];
    if (fn == 0 || file_bytes(fn, want) != 0 || peek(fn, have, PATCH_BYTES) != 0) continue;
    if (have[0] == want[0]) continue; /* not hooked at its entry: not the frame we look for */
    if (!is_exit_function(fn)) return 1; /* held somewhere we may not restart: leave it */
    if (pwrite(mem_fd, want, PATCH_BYTES, (off_t)fn) != PATCH_BYTES) return 2;
    regs.r15 = ctx[R_R15]; regs.r14 = ctx[R_R14]; regs.r13 = ctx[R_R13]; regs.r12 = ctx[R_R12];
    regs.r11 = ctx[R_R11]; regs.r10 = ctx[R_R10]; regs.r9 = ctx[R_R9]; regs.r8 = ctx[R_R8];
    regs.rdi = ctx[R_RDI]; regs.rsi = ctx[R_RSI]; regs.rbp = ctx[R_RBP]; regs.rbx = ctx[R_RBX];
    regs.rdx = ctx[R_RDX]; regs.rcx = ctx[R_RCX]; regs.rax = ctx[R_RAX];
    regs.rsp = entry_rsp;
    regs.rip = fn;
    regs.orig_rax = (uint64_t)-1; /* stopped in sched_yield: no syscall restart at the new rip */
    if (ptrace(PTRACE_SETREGS, pid, 0, &regs) != 0) return 2;
    printf("0x%lx\n", (unsigned long)fn);
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: child-rescue PID\n");
    return 2;
  }
  pid_t pid = (pid_t)atoi(argv[1]);
  if (read_maps(pid) != 0) return 2;
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) return 2;
  if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) return 2;
  int status;
  if (waitpid(pid, &status, __WALL) != pid) return 2;
  char name[64];
  snprintf(name, sizeof name, "/proc/%d/mem", pid);
  mem_fd = open(name, O_RDWR);
  int rc = mem_fd < 0 ? 2 : rescue(pid);
  ptrace(PTRACE_DETACH, pid, 0, 0);
  return rc;
}
