/*
 * The per-thread state of syscall tracing, for both mechanisms' callouts (syscallFilter.c,
 * rewriteHandlers.c): the kernel's tracepoint records (struct trace_event_raw_sys_enter /
 * _sys_exit), which JS copies into the VM's context area as they are, and the block JS
 * reads them from. TS in threadState.ts holds the offsets; thread_state_layout() reports
 * them for checkLayout (THREAD_STATE_LAYOUT).
 */
typedef struct { guint16 type; guint8 flags; guint8 preempt_count; gint32 pid; } TraceEntry;
typedef struct { TraceEntry ent; gint64 id; guint64 args[6]; } EnterRecord;
typedef struct { TraceEntry ent; gint64 id; gint64 ret; } ExitRecord;

typedef struct {
  EnterRecord enter;
  ExitRecord exit;
  gint64 nr;
  gint64 override_set;
  gint64 override_value;
  gint32 slot;
  gint32 tid;
  gint32 cpu;
  volatile gint32 in_syscall; /* between on_enter and on_exit: blocked threads hold Stalker's code */
  guint64 user_ip; /* the syscall instruction and the thread's stack, for bpf_get_stack */
  guint64 user_sp;
  guint64 user_bp;
} ThreadState;

/* Writes the layout words from out[i] on, in THREAD_STATE_LAYOUT's order; returns the next index. */
static int
thread_state_layout (guint32 * out, int i)
{
  out[i++] = sizeof (EnterRecord);
  out[i++] = sizeof (ExitRecord);
  out[i++] = G_STRUCT_OFFSET (ThreadState, enter);
  out[i++] = G_STRUCT_OFFSET (ThreadState, exit);
  out[i++] = G_STRUCT_OFFSET (ThreadState, nr);
  out[i++] = G_STRUCT_OFFSET (ThreadState, override_set);
  out[i++] = G_STRUCT_OFFSET (ThreadState, override_value);
  out[i++] = G_STRUCT_OFFSET (ThreadState, slot);
  out[i++] = G_STRUCT_OFFSET (ThreadState, tid);
  out[i++] = G_STRUCT_OFFSET (ThreadState, cpu);
  out[i++] = G_STRUCT_OFFSET (ThreadState, in_syscall);
  out[i++] = G_STRUCT_OFFSET (ThreadState, user_ip);
  out[i++] = G_STRUCT_OFFSET (ThreadState, user_sp);
  out[i++] = G_STRUCT_OFFSET (ThreadState, user_bp);
  out[i++] = sizeof (ThreadState);
  return i;
}
