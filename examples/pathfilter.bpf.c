// SPDX-License-Identifier: MIT
/* Longest-prefix rules on paths (an LPM trie keyed by path bytes): each access_path(path)
 * counts under the most specific rule whose prefix the path starts with. The rules are the
 * manifest's map entries (pathfilter.manifest.json): {"prefixlen": 8 * strlen(prefix), "path": prefix}.
 *   bpftime-ts run examples/pathfilter.manifest.json */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_PATH 64

struct path_key {
	u32 prefixlen;
	char path[MAX_PATH];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__type(key, struct path_key);
	__type(value, u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} rules SEC(".maps");

/* rule id → accesses it matched */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} rule_hits SEC(".maps");

u64 unmatched;

SEC("uprobe/fileaccess:access_path")
int BPF_KPROBE(on_access, const char *path)
{
	struct path_key key = { .prefixlen = MAX_PATH * 8 };
	u64 one = 1, *n;
	u32 *rule;

	bpf_probe_read_user_str(key.path, sizeof(key.path), path);
	rule = bpf_map_lookup_elem(&rules, &key);
	if (!rule) {
		__sync_fetch_and_add(&unmatched, 1);
		return 0;
	}
	n = bpf_map_lookup_elem(&rule_hits, rule);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&rule_hits, rule, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
