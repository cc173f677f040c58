/* SPDX-License-Identifier: MIT */
/* The record opensnoop.bpf.c sends, shared with a loader the way libbpf-tools share theirs.
 * The program only ever holds it through a ring-buffer pointer, so clang puts it in DWARF,
 * not BTF: bpftime-ts reads it from there. */
#ifndef OPENSNOOP_H
#define OPENSNOOP_H

#define TASK_COMM_LEN 16
#define NAME_MAX 255

struct event {
	__u32 pid;
	__u32 uid;
	int ret;
	int flags;
	char comm[TASK_COMM_LEN];
	char fname[NAME_MAX];
};

#endif
