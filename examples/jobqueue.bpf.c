// SPDX-License-Identifier: MIT
/* A queue and a stack fed by the same probe: every submit_job(id, prio) is pushed to a FIFO
 * (jobs) and a LIFO (undo); every run_next() pops one of each, recording what came out.
 * At exit the maps show what is left, in the order pops would take it.
 *   bpftime-ts spawn -o examples/build/jobqueue.bpf.o examples/build/jobs 6 2 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct job {
	u32 id;
	u32 prio;
};

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 64);
	__type(value, struct job);
} jobs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 64);
	__type(value, struct job);
} undo SEC(".maps");

/* What the pops returned, in order (slot = pop number). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, struct job);
} popped_fifo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, struct job);
} popped_lifo SEC(".maps");

u32 pops;
u64 full_drops;

SEC("uprobe/jobs:submit_job")
int BPF_KPROBE(on_submit, u32 id, u32 prio)
{
	struct job j = { .id = id, .prio = prio };

	if (bpf_map_push_elem(&jobs, &j, BPF_ANY))
		full_drops++;
	bpf_map_push_elem(&undo, &j, BPF_ANY);
	return 0;
}

SEC("uprobe/jobs:run_next")
int BPF_KPROBE(on_run)
{
	struct job j;
	u32 slot = pops;

	if (bpf_map_pop_elem(&jobs, &j) == 0)
		bpf_map_update_elem(&popped_fifo, &slot, &j, BPF_ANY);
	if (bpf_map_pop_elem(&undo, &j) == 0)
		bpf_map_update_elem(&popped_lifo, &slot, &j, BPF_ANY);
	pops = slot + 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
