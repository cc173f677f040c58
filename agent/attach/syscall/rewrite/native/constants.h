/*
 * The handlers' constants. Their one definition is TypeScript (rewriteHandlers.ts names
 * each source); gcc needs them at build time, so they are repeated here and
 * rewrite_handlers_layout() reports them: the agent refuses a build whose values differ
 * (checkLayout, HANDLERS_LAYOUT), as it does for the struct layouts.
 */
#define MAX_TIDS 1024
#define SLOTS 512
#define CFG_ENTER 0
#define CFG_EXIT 512
#define CFG_ANY_ENTER 1024
#define CFG_ANY_EXIT 1025
#define CFG_TID_OFFSET 1028
#define NATIVE_MAX_PROGS 8
#define HOOK_THREADS_SLOT0 8
#define HOOK_THREAD_SLOTS 4096
#define HOOK_THREAD_STATE_SIZE 1552
#define HOOK_THREAD_BUSY 8
#define HOOK_PROBE_LIMIT 64
#define AGENT_TEXT_RANGES 4
#define NR_MMAP 9
#define NR_MUNMAP 11
#define NR_MREMAP 25
#define NR_MADVISE 28
