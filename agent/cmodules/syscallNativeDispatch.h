/* Needs syscallNativeTable.h, `extern NativeTable native_table;` and `js_native_fault (guint32, gint32)`. */
/*
 * The native path: when every program for this syscall (its own and the raw set) calls no
 * JS helper, run them here through the VM's bpfvm_run_with_ctx, without entering JS.
 * Returns 1 when it did. JS changes the table only between native_quiesce() and
 * native_activate(); the inflight count tells quiesce when no caller is still reading it
 * (and, at detach, still calling into the VM library).
 */
static void
run_native_list (NativeTable * nt, const guint16 * list, const void * rec, guint64 len, gint64 * override, guint32 * fault_h, gint32 * fault_st)
{
  int i;
  for (i = 0; i < NATIVE_MAX_PROGS && list[i] != 0; i++)
  {
    guint32 h = list[i] - 1;
    gint32 st;
    if (!nt->enabled[h])
      continue;
    st = nt->run (h, nt->ctx_addr, rec, len, override);
    if (st != 0 && *fault_st == 0)
    {
      *fault_h = h;
      *fault_st = st;
    }
  }
}

/*
 * A locked add, inline: TinyCC makes g_atomic_int_add a call into Frida's glib, and a
 * traced syscall made four of them (7% of its time in the profile of a getpid counter).
 * Returns the old value; a full fence like g_atomic_int_add.
 */
static gint
locked_add (volatile gint * p, gint v)
{
  __asm__ __volatile__ ("lock; xaddl %0, %1" : "+r" (v), "+m" (*p) : : "memory", "cc");
  return v;
}

/*
 * Whether this thread is inside a VM run, where a program's helper (a JS one, through V8 and
 * Frida) made this syscall: it is ours, not the target's, and runs no program (the VM would
 * refuse the nested run as a fault, and reporting it entered JS from inside the helper:
 * a JS-path uprobe beside a getpid program killed the target under rewrite).
 */
static int
in_vm_run (void)
{
  NativeTable * nt = &native_table;
  int busy = 0;
  locked_add (&nt->inflight, 1);
  if (nt->active && nt->in_run != NULL)
    busy = nt->in_run ();
  locked_add (&nt->inflight, -1);
  return busy;
}

/*
 * Runs this syscall's programs natively when they all may (see above), in one inflight
 * window with the in_vm_run check (two locked adds a syscall, not four). Returns 1 when it
 * ran them, 0 when they need the JS path, -1 when this thread is inside a VM run (the
 * syscall is a helper's: nothing runs for it). override: the thread's {override_set,
 * override_value}, where bpf_override_return writes.
 */
static int
run_native_unless_nested (int phase, gint64 nr, const void * rec, guint64 len, gint64 * override)
{
  NativeTable * nt = &native_table;
  guint32 fault_h = 0;
  gint32 fault_st = 0;
  int done = 0;
  locked_add (&nt->inflight, 1);
  if (nt->active && nt->in_run != NULL && nt->in_run ())
    done = -1;
  else if (nt->active && nr >= 0 && nr < SLOTS && nt->native_only[phase][nr])
  {
    run_native_list (nt, nt->progs[phase][nr], rec, len, override, &fault_h, &fault_st);
    run_native_list (nt, nt->progs[phase][SLOTS], rec, len, override, &fault_h, &fault_st);
    done = 1;
  }
  locked_add (&nt->inflight, -1);
  /* Outside the inflight window: JS may be quiescing under the JS lock. */
  if (fault_st != 0)
    js_native_fault (fault_h, fault_st);
  return done;
}

/* run_native_unless_nested for callers that asked in_vm_run already: 1 ran, 0 JS path. */
static int
run_native (int phase, gint64 nr, const void * rec, guint64 len, gint64 * override)
{
  NativeTable * nt = &native_table;
  if (!nt->active || nr < 0 || nr >= SLOTS || !nt->native_only[phase][nr])
    return 0;
  return run_native_unless_nested (phase, nr, rec, len, override) == 1;
}

void
native_quiesce (void)
{
  if (native_table.active)
    locked_add (&native_table.active, -1); /* a full fence before the reads below */
  while (native_table.inflight != 0)
    ;
}

void
native_activate (void)
{
  locked_add (&native_table.active, 1);
}
