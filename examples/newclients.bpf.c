// SPDX-License-Identifier: MIT
/* First-time clients through a bloom filter: handle_request(client) checks whether the
 * client was seen (bpf_map_peek_elem: 0 = maybe, -ENOENT = certainly not); new ones are
 * pushed and counted. A bloom filter never misses a value it was given, but may say
 * "seen" of one it was not: here (8192 bits for 1000 entries, 3 hash functions) about
 * 0.1 % of the time once 300 clients are in, so new_clients can come out a little low.
 *   bpftime-ts spawn -o examples/build/newclients.bpf.o examples/build/requests 7 3 7 9 3 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 1000);
	__type(value, u64);
	__uint(map_extra, 3);
} seen SEC(".maps");

u64 new_clients;
u64 repeat_requests;

SEC("uprobe/requests:handle_request")
int BPF_KPROBE(on_request, u64 client)
{
	if (bpf_map_peek_elem(&seen, &client) == 0) {
		__sync_fetch_and_add(&repeat_requests, 1);
		return 0;
	}
	bpf_map_push_elem(&seen, &client, BPF_ANY);
	__sync_fetch_and_add(&new_clients, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
