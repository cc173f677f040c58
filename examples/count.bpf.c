// Count calls of target_add per thread, and print the first few arguments.
// Attaches by section name alone: `bpftime-ts spawn -o count.bpf.o ./victim`.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, __u64);
} calls SEC(".maps");

SEC("uprobe/victim:target_add")
int BPF_KPROBE(count_add, long a, long b)
{
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  __u64 one = 1, *n = bpf_map_lookup_elem(&calls, &tid);
  if (n)
    __sync_fetch_and_add(n, 1);
  else
    bpf_map_update_elem(&calls, &tid, &one, BPF_ANY);
  if (a < 3)
    bpf_printk("target_add(%ld, %ld)", a, b);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
