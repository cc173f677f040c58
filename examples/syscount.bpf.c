/* syscount: how many times each syscall is entered, by syscall number, like bpftrace's
 * `tracepoint:raw_syscalls:sys_enter { @[args->id] = count(); }`. An array map and no
 * other helper, so bpftime-ts runs it straight from its syscall hooks, without JavaScript. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u64);
} syscalls SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int count_syscalls(struct trace_event_raw_sys_enter *ctx)
{
	__u32 id = ctx->id;
	__u64 *n = bpf_map_lookup_elem(&syscalls, &id);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
