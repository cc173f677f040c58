// SPDX-License-Identifier: MIT
/* statsnoop, libbpf-tools style, on the kernel's names for the stat syscalls: syscall 4 is
 * `stat` in the table but its tracepoints are sys_{enter,exit}_newstat. One record per call,
 * sent through a perf event array from a stack struct (DWARF-only too).
 *   bpftime-ts spawn -o examples/build/statsnoop.bpf.o examples/build/opener /etc/hostname */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MAX_PATH 128

struct stat_event {
	__u32 pid;
	int ret;
	char path[MAX_PATH];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, const char *);
} paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} stat_events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_newstat")
int handle_stat_entry(struct trace_event_raw_sys_enter *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	const char *path = (const char *)ctx->args[0];

	bpf_map_update_elem(&paths, &tid, &path, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_newstat")
int handle_stat_return(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	const char **pathp = bpf_map_lookup_elem(&paths, &tid);
	struct stat_event e = {};

	if (!pathp)
		return 0;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.ret = ctx->ret;
	bpf_probe_read_user_str(e.path, sizeof(e.path), *pathp);
	bpf_perf_event_output(ctx, &stat_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	bpf_map_delete_elem(&paths, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
