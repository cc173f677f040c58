// SPDX-License-Identifier: MIT
/* Requests of an application through its USDT probes, with libbpf's usdt.bpf.h as is:
 * BPF_USDT() declares the probe's arguments; bpf_usdt_cookie() is the manifest's cookie.
 * One program names its probe in the section (usdt/BINARY:PROVIDER:NAME), one is a bare
 * SEC("usdt") attached by usdtreq.manifest.json, one sits behind the app's semaphore.
 *   bpftime-ts run examples/usdtreq.manifest.json */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

struct req_event {
	u32 id;
	u32 tag;
	char path[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} requests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} by_status SEC(".maps");

u64 bytes_total;
u64 debug_cost;

SEC("usdt")
int BPF_USDT(on_start, int id, const char *path)
{
	struct req_event *r = bpf_ringbuf_reserve(&requests, sizeof(*r), 0);

	if (!r)
		return 0;
	r->id = id;
	r->tag = bpf_usdt_cookie(ctx);
	bpf_probe_read_user_str(r->path, sizeof(r->path), path);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("usdt/./build/sdt_app:app:request_done")
int BPF_USDT(on_done, int id, int status, long bytes)
{
	u32 key = status;
	u64 one = 1, *n = bpf_map_lookup_elem(&by_status, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&by_status, &key, &one, BPF_ANY);
	__sync_fetch_and_add(&bytes_total, bytes);
	return 0;
}

SEC("usdt/./build/sdt_app:app:debug")
int BPF_USDT(on_debug, int id, long cost)
{
	__sync_fetch_and_add(&debug_cost, cost);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
