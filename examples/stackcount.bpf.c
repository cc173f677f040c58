// SPDX-License-Identifier: MIT
/* stackcount, libbpf-tools style: count the user stacks leading to a function, keyed by
 * bpf_get_stackid() into a stack-trace map that bpftime-ts prints symbolised at exit, like
 * bpftrace's ustack. bpf_get_stack() keeps the most recent stack as raw addresses too.
 * The target needs frame pointers (-fno-omit-frame-pointer), as with kernel eBPF.
 *   bpftime-ts spawn -o examples/build/stackcount.bpf.o examples/build/callpaths 30 20 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_DEPTH 16

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(u32));
	__uint(value_size, MAX_DEPTH * sizeof(u64));
	__uint(max_entries, 128);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

u64 last_stack[4];
s64 last_stack_bytes;
u64 stackid_errors;

SEC("uprobe/callpaths:leaf")
int BPF_KPROBE(on_leaf)
{
	u64 one = 1, *n;
	long id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	u32 key;

	if (id < 0) {
		__sync_fetch_and_add(&stackid_errors, 1);
		return 0;
	}
	key = id;
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	last_stack_bytes = bpf_get_stack(ctx, last_stack, sizeof(last_stack), BPF_F_USER_STACK);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
