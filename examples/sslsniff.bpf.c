// SPDX-License-Identifier: MIT
/* sslsniff-style: one program on both SSL_read and SSL_write (the manifest lists two attach
 * points for it; sslsniff.manifest.json), sharing its maps. The cookie of each attach point
 * says which direction it is. Records carry the first bytes of the buffer.
 *   bpftime-ts run examples/sslsniff.manifest.json */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_BUF 32

enum dir { DIR_READ = 0, DIR_WRITE = 1 };

struct tls_event {
	u32 pid;
	enum dir rw;
	u32 len;
	u8 buf[MAX_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} tls_events SEC(".maps");

/* bytes per direction */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} bytes SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(probe_ssl_rw, void *ssl, const void *buf, int num)
{
	u32 rw = bpf_get_attach_cookie(ctx);
	struct tls_event *e;
	u64 *total;

	total = bpf_map_lookup_elem(&bytes, &rw);
	if (total)
		__sync_fetch_and_add(total, num);
	e = bpf_ringbuf_reserve(&tls_events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->rw = rw;
	e->len = num;
	__builtin_memset(e->buf, 0, sizeof(e->buf));
	bpf_probe_read_user(e->buf, num < MAX_BUF ? num & (MAX_BUF - 1) : MAX_BUF, buf);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
