/*
 * The native run table both syscall mechanisms share (nativeDispatch.ts): the programs each
 * syscall runs without entering JS. Needs SLOTS and NATIVE_MAX_PROGS, #defined by the TS
 * that creates the module from its one definition. NATIVE in nativeDispatch.ts holds the
 * offsets; native_table_layout() reports them for checkLayout (NATIVE_LAYOUT).
 */
typedef gint32 (* RunFn) (guint32 handle, guint64 ctx, const void * src, guint64 len, gint64 * override);
typedef gint32 (* InRunFn) (void);

typedef struct {
  RunFn run;
  guint64 ctx_addr;
  volatile guint8 * enabled;
  volatile gint active;
  volatile gint inflight;
  InRunFn in_run;
  guint16 progs[2][SLOTS + 1][NATIVE_MAX_PROGS];
  guint8 native_only[2][SLOTS];
} NativeTable;

/* Writes the layout words from out[i] on, in NATIVE_LAYOUT's order; returns the next index. */
static int
native_table_layout (guint32 * out, int i)
{
  out[i++] = G_STRUCT_OFFSET (NativeTable, run);
  out[i++] = G_STRUCT_OFFSET (NativeTable, ctx_addr);
  out[i++] = G_STRUCT_OFFSET (NativeTable, enabled);
  out[i++] = G_STRUCT_OFFSET (NativeTable, active);
  out[i++] = G_STRUCT_OFFSET (NativeTable, inflight);
  out[i++] = G_STRUCT_OFFSET (NativeTable, in_run);
  out[i++] = G_STRUCT_OFFSET (NativeTable, progs);
  out[i++] = G_STRUCT_OFFSET (NativeTable, native_only);
  out[i++] = sizeof (NativeTable);
  return i;
}
