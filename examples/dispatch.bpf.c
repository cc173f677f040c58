// SPDX-License-Identifier: MIT
/* A tail-call dispatcher: handle(op) jumps to the program in slot `op` of a prog_array.
 * Slots 0 and 1 are declared in the object (libbpf's .values); slot 2 is filled by
 * dispatch.manifest.json, by program name. An empty slot falls through, as in the kernel.
 *   bpftime-ts run examples/dispatch.manifest.json */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

int op_get(struct pt_regs *ctx);
int op_put(struct pt_regs *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(u32));
	__array(values, int(struct pt_regs *));
} ops SEC(".maps") = {
	.values = {
		[0] = (void *)&op_get,
		[1] = (void *)&op_put,
	},
};

u64 gets, puts, deletes, unknown;

SEC("uprobe")
int op_get(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&gets, 1);
	return 0;
}

SEC("uprobe")
int op_put(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&puts, 1);
	return 0;
}

SEC("uprobe")
int op_delete(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&deletes, 1);
	return 0;
}

SEC("uprobe/./build/kvstore:handle")
int BPF_KPROBE(dispatch, int op)
{
	bpf_tail_call(ctx, &ops, op);
	/* Only reached when slot `op` is empty. */
	__sync_fetch_and_add(&unknown, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
