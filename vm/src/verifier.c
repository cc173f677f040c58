/* Load-time verifier: an abstract interpretation of every register and 8-byte stack slot as
 * "scalar", "pointer into <region> at <offset>" or "unknown" (the join of different kinds),
 * in the spirit of the kernel verifier and PREVAIL but path-insensitive (one state per basic
 * block start, joined). It rejects accesses it can prove wrong (constant offsets outside the
 * stack frame, the context or a map value; stores into read-only data; dereferences of
 * scalars) and gives every memory instruction the narrowest run-time check that keeps it
 * inside its pointer's region (none when the offset is proven in bounds). */
#include "bpfvm_internal.h"

enum { AV_SCALAR = 0, AV_TOP, AV_STACK, AV_CTX, AV_MAP, AV_RB };
#define F_NULL 1u  /* pointer: may be NULL (lookup / reserve result not yet tested) */
#define F_VAR 2u   /* pointer: offset unknown (off is meaningless) */
#define F_CONST 4u /* scalar: value known (in off) */

typedef struct {
  uint8_t kind, flags;
  uint16_t region; /* AV_MAP / AV_RB: index into prog_t.regions */
  uint32_t id;     /* AV_MAP / AV_RB: 1 + pc of the helper call that produced it (0: lddw);
                    * AV_STACK: frame level (0: own frame, 1: the caller's, ...) */
  uint32_t size;   /* AV_RB: bytes reserved (0: unknown) */
  uint32_t pad;
  int64_t off;     /* pointer: offset from the region's start (stack: from r10); scalar: value */
} aval;

#define NSLOTS (BPFVM_FRAME_STACK / 8)
typedef struct {
  aval r[11];
  aval s[NSLOTS]; /* s[i] = bytes [r10 - 512 + 8i, +8) */
} vstate;

static const aval TOP_V = {AV_TOP, 0, 0, 0, 0, 0, 0};
static const aval SCALAR_V = {AV_SCALAR, 0, 0, 0, 0, 0, 0};
static aval scalar_const(int64_t v) { aval a = {AV_SCALAR, F_CONST, 0, 0, 0, 0, v}; return a; }
static int is_ptr(const aval *a) { return a->kind >= AV_STACK; }
static int maybe_stack(const aval *a) { return a->kind == AV_STACK || a->kind == AV_TOP; }

static int av_eq(const aval *a, const aval *b) {
  return a->kind == b->kind && a->flags == b->flags && a->region == b->region && a->id == b->id && a->size == b->size && a->off == b->off;
}

static aval av_join(aval a, aval b) {
  if (a.kind != b.kind) return TOP_V;
  if (a.kind == AV_TOP) return TOP_V;
  if (a.kind == AV_SCALAR) return (a.flags & b.flags & F_CONST) && a.off == b.off ? a : SCALAR_V;
  if (a.region != b.region || a.id != b.id) return TOP_V;
  aval r = a;
  r.flags = a.flags | b.flags;
  if (r.size > b.size) r.size = b.size;
  if (a.off != b.off) r.flags |= F_VAR;
  if (r.flags & F_VAR) r.off = 0;
  return r;
}

/* Offsets stay small; anything that could overflow is treated as unknown. */
static void ptr_add(aval *p, const aval *s, int neg) {
  if (p->flags & F_VAR) return;
  if (!(s->flags & F_CONST)) { p->flags |= F_VAR; p->off = 0; return; }
  int64_t v = s->off;
  if (v > (1 << 30) || v < -(1 << 30)) { p->flags |= F_VAR; p->off = 0; return; }
  p->off += neg ? -v : v;
  if (p->off > (1 << 30) || p->off < -(1 << 30)) { p->flags |= F_VAR; p->off = 0; }
}

typedef struct {
  prog_t *p;
  int final; /* last pass: report errors and record checks */
} vctx;

#define VFAIL(...) do { if (v->final) return bpfvm_load_error(__VA_ARGS__); } while (0)

static const char *region_kind(uint32_t kind) {
  return kind == AV_STACK ? "stack" : kind == AV_CTX ? "ctx" : kind == AV_MAP ? "map value" : "ringbuf record";
}

/* Checks one access of `sz` bytes at base register `breg` + d->off; sets d->chk in the last pass. */
static int32_t check_access(vctx *v, vstate *st, uint32_t pc, dinsn *d, uint32_t breg, uint32_t sz, int write) {
  const aval *b = &st->r[breg];
  int64_t a = b->off + d->off;
  uint32_t chk = CHK_OWNED, aux = 0;
  switch (b->kind) {
  case AV_SCALAR:
    if (v->final) {
      bpfvm_load_error(pc, "R", 1, breg, 0, " invalid mem access 'scalar' (");
      bpfvm_msg_cat(write ? "store" : "load");
      bpfvm_msg_cat(" through a register that holds no pointer)");
      return -1;
    }
    break;
  case AV_TOP: break;
  case AV_STACK: {
    /* Offsets are from the own r10; frame level L spans [512 * (L - 1), 512 * L). */
    int64_t lo = (int64_t)BPFVM_FRAME_STACK * ((int64_t)b->id - 1), hi = lo + BPFVM_FRAME_STACK;
    aux = b->id;
    if (b->flags & F_VAR) { chk = CHK_STACK; break; }
    if (a < lo || a + sz > hi) {
      if (v->final) {
        bpfvm_load_error(pc, write ? "invalid write to stack R" : "invalid read from stack R", 1, breg, 0, " off=");
        bpfvm_msg_num(a);
        bpfvm_msg_cat(" size=");
        bpfvm_msg_num(sz);
        bpfvm_msg_cat(b->id ? " (a caller's frame)" : " (the frame is [r10-512, r10))");
        return -1;
      }
      break;
    }
    chk = CHK_NONE;
    break;
  }
  case AV_CTX:
    if (write && (v->p->ctx_flags & BPFVM_CTX_RO)) VFAIL(pc, "cannot write into ctx (read-only context) R", 1, breg, 0, 0);
    chk = CHK_CTX;
    if (b->flags & F_VAR) break;
    if (a < 0 || (v->p->ctx_size && a + sz > v->p->ctx_size)) {
      if (v->final) {
        bpfvm_load_error(pc, "invalid ctx access off=", 0, 0, 0, 0);
        bpfvm_msg_num(a);
        bpfvm_msg_cat(" size=");
        bpfvm_msg_num(sz);
        if (v->p->ctx_size) { bpfvm_msg_cat(" (the context is "); bpfvm_msg_num(v->p->ctx_size); bpfvm_msg_cat(" bytes)"); }
        return -1;
      }
    }
    break;
  case AV_MAP: {
    const bpfvm_region_t *r = &v->p->regions[b->region];
    if (write && (r->flags & BPFVM_REGION_RO)) VFAIL(pc, "write into read-only map value (region #", 1, b->region, 0, ")");
    aux = b->region;
    chk = CHK_ELEM;
    if (b->flags & F_VAR) break;
    if (a < 0 || a + sz > r->value_size) {
      if (v->final) {
        bpfvm_load_error(pc, "invalid access to map value off=", 0, 0, 0, 0);
        bpfvm_msg_num(a);
        bpfvm_msg_cat(" size=");
        bpfvm_msg_num(sz);
        bpfvm_msg_cat(" value_size=");
        bpfvm_msg_num(r->value_size);
        bpfvm_msg_cat(" (region #");
        bpfvm_msg_num(b->region);
        bpfvm_msg_cat(")");
        return -1;
      }
      break;
    }
    if (!(b->flags & F_NULL)) chk = CHK_NONE;
    else if (a + sz < BPFVM_ARENA_VADDR) chk = CHK_NULL;
    break;
  }
  case AV_RB:
    if ((b->flags & F_VAR) || b->size == 0) { chk = CHK_RECORD; break; } /* no bounds known at run time */
    if (a < 0 || a + sz > b->size) {
      if (v->final) {
        bpfvm_load_error(pc, "invalid access to ringbuf record off=", 0, 0, 0, 0);
        bpfvm_msg_num(a);
        bpfvm_msg_cat(" size=");
        bpfvm_msg_num(sz);
        bpfvm_msg_cat(" (reserved ");
        bpfvm_msg_num(b->size);
        bpfvm_msg_cat(" bytes)");
        return -1;
      }
      break;
    }
    chk = (b->flags & F_NULL) ? CHK_NULL : CHK_NONE;
    break;
  }
  if (v->final) {
    d->chk = (uint8_t)chk;
    d->imm = (int64_t)(((uint64_t)aux << 32) | (uint32_t)d->imm);
  }
  (void)region_kind;
  return 0;
}

static void slots_to(vstate *st, aval val, int only_ptrs) {
  for (int i = 0; i < NSLOTS; i++)
    if (!only_ptrs || st->s[i].kind != AV_SCALAR) st->s[i] = val;
}

/* Stack effects of a store of `sz` bytes through `b` + off (`val`: the stored register, or 0). */
static void stack_store(vstate *st, const aval *b, int64_t off, uint32_t sz, const aval *val) {
  if (b->kind == AV_STACK && b->id) return; /* a caller's frame: the caller forgets its slots after the call */
  if (b->kind == AV_TOP || (b->kind == AV_STACK && (b->flags & F_VAR))) {
    slots_to(st, TOP_V, 1); /* may hit any slot: spilled pointers lose their provenance */
    return;
  }
  if (b->kind != AV_STACK) return;
  int64_t a = b->off + off;
  if (a < -(int64_t)BPFVM_FRAME_STACK || a + sz > 0) return; /* rejected in the last pass */
  int64_t i0 = (a + BPFVM_FRAME_STACK) / 8, i1 = (a + sz - 1 + BPFVM_FRAME_STACK) / 8;
  if (sz == 8 && (a & 7) == 0 && val) { st->s[i0] = *val; return; }
  for (int64_t i = i0; i <= i1; i++) st->s[i] = SCALAR_V;
}

/* The value an 8-byte (or smaller) load through `b` + off produces. */
static aval stack_load(const vstate *st, const aval *b, int64_t off, uint32_t sz) {
  if (sz != 8) return SCALAR_V;
  if (b->kind == AV_TOP || (b->kind == AV_STACK && ((b->flags & F_VAR) || b->id))) return TOP_V; /* maybe a spill */
  if (b->kind != AV_STACK) return SCALAR_V; /* pointers stored anywhere else reload as scalars */
  int64_t a = b->off + off;
  if ((a & 7) || a < -(int64_t)BPFVM_FRAME_STACK || a + 8 > 0) return SCALAR_V;
  return st->s[(a + BPFVM_FRAME_STACK) / 8];
}

static int32_t find_region(const prog_t *p, uint64_t handle, uint32_t flag) {
  for (uint32_t i = 0; i < p->nregions; i++)
    if (p->regions[i].handle == handle && (p->regions[i].flags & flag)) return (int32_t)i;
  return -1;
}

static void helper_call(vctx *v, vstate *st, uint32_t pc, dinsn *d, uint32_t id) {
  /* A ringbuf record passed to the helper (bpf_get_current_comm(e->comm, ..)): the call may
   * let the helper touch the record's bytes from the pointer on (dinsn chk = the register,
   * off = the bytes left), which the run-time check of helper buffers cannot know. */
  if (v->final && d) {
    d->chk = 0;
    d->off = 0;
    for (uint32_t i = 1; i <= 5; i++) {
      const aval *x = &st->r[i];
      if (x->kind == AV_RB && !(x->flags & F_VAR) && x->size && x->off >= 0 && x->off < x->size) {
        d->chk = (uint8_t)i;
        d->off = (int32_t)(x->size - x->off);
        break;
      }
    }
  }
  const bpfvm_helper_info *info = bpfvm_helper_info_of(id);
  if (!info) { /* not in the helper table: it may write anywhere it is given a pointer to */
    for (int i = 1; i <= 5; i++)
      if (maybe_stack(&st->r[i])) { slots_to(st, TOP_V, 0); break; }
  }
  for (uint32_t a = 0; info && a < 5; a++) {
    const aval *x = &st->r[a + 1];
    if (info->arg[a] == BPFVM_ARG_WRITE) {
      const aval *sz = info->size[a] ? &st->r[info->size[a]] : 0;
      if (x->kind == AV_STACK && !x->id && !(x->flags & F_VAR) && sz && (sz->flags & F_CONST) && sz->off > 0 && sz->off <= BPFVM_FRAME_STACK)
        stack_store(st, x, 0, (uint32_t)sz->off, 0); /* the bytes written are data */
      else if (maybe_stack(x))
        slots_to(st, TOP_V, 0);
    } else if (info->arg[a] == BPFVM_ARG_RELEASE && x->kind == AV_RB) { /* submit / discard: the record is gone */
      uint32_t rid = x->id;
      for (int i = 0; i < 11 + NSLOTS; i++) {
        aval *y = i < 11 ? &st->r[i] : &st->s[i - 11];
        if (y->kind == AV_RB && y->id == rid) *y = SCALAR_V;
      }
    }
  }
  aval r0 = info && info->ret == BPFVM_RET_SCALAR ? SCALAR_V : TOP_V;
  const aval *h = &st->r[1];
  if (info && info->ret == BPFVM_RET_MAP_VALUE && h->kind == AV_SCALAR && (h->flags & F_CONST)) {
    int32_t ri = find_region(v->p, (uint64_t)h->off, BPFVM_REGION_VALUES);
    if (ri >= 0) { aval m = {AV_MAP, F_NULL, (uint16_t)ri, pc + 1, 0, 0, 0}; r0 = m; }
  } else if (info && info->ret == BPFVM_RET_RECORD && h->kind == AV_SCALAR && (h->flags & F_CONST)) {
    int32_t ri = find_region(v->p, (uint64_t)h->off, BPFVM_REGION_RINGBUF);
    const aval *n = &st->r[2];
    uint32_t size = (n->flags & F_CONST) && n->off > 0 && n->off < (1 << 30) ? (uint32_t)n->off : 0;
    if (ri >= 0) { aval m = {AV_RB, F_NULL, (uint16_t)ri, pc + 1, size, 0, 0}; r0 = m; }
  }
  st->r[0] = r0;
}

/* A call into code that may change the caller's stack and r0-r5 (subprogram, bpf_loop). */
static void local_call(vstate *st) {
  for (int i = 1; i <= 9; i++)
    if (maybe_stack(&st->r[i])) { slots_to(st, TOP_V, 0); break; }
  for (int i = 0; i <= 5; i++) st->r[i] = TOP_V;
}

static void alu(vstate *st, const dinsn *d) {
  uint32_t k = d->op - OP_ADD64_IMM, name = k / 4, var = k % 4; /* var: 0 64imm 1 64reg 2 32imm 3 32reg */
  aval *dst = &st->r[d->dst / 8];
  aval s = var & 1 ? st->r[d->src / 8] : scalar_const(var == 0 ? d->imm : (int64_t)(uint32_t)d->imm);
  enum { ADD = 0, SUB = 1, MOV = 13 };
  if (var >= 2) { /* 32-bit results are scalars; constants only for mov */
    *dst = name == MOV && (s.flags & F_CONST) ? scalar_const((int64_t)(uint32_t)s.off) : SCALAR_V;
    return;
  }
  if (name == MOV) { *dst = s; return; }
  if (name == ADD || name == SUB) {
    if (is_ptr(dst) && s.kind == AV_SCALAR) { ptr_add(dst, &s, name == SUB); return; }
    if (name == ADD && dst->kind == AV_SCALAR && is_ptr(&s)) { aval p = s; ptr_add(&p, dst, 0); *dst = p; return; }
    if (dst->kind == AV_SCALAR && s.kind == AV_SCALAR) {
      *dst = (dst->flags & s.flags & F_CONST) ? scalar_const(name == ADD ? (int64_t)((uint64_t)dst->off + (uint64_t)s.off) : (int64_t)((uint64_t)dst->off - (uint64_t)s.off)) : SCALAR_V;
      return;
    }
    if (is_ptr(dst) && is_ptr(&s)) { *dst = SCALAR_V; return; } /* pointer difference */
    *dst = TOP_V;
    return;
  }
  *dst = SCALAR_V; /* other arithmetic on pointers yields numbers, as in the kernel */
}

/* Null-pointer refinement of `if reg ==/!= 0`: on the taken (eq) or fall-through edge. */
static void refine_null(vstate *st, uint32_t reg, int is_null) {
  aval *x = &st->r[reg];
  if ((x->kind != AV_MAP && x->kind != AV_RB) || !(x->flags & F_NULL) || x->id == 0) return;
  uint32_t id = x->id, kind = x->kind;
  for (int i = 0; i < 11 + NSLOTS; i++) {
    aval *y = i < 11 ? &st->r[i] : &st->s[i - 11];
    if (y->kind != kind || y->id != id) continue;
    if (is_null) *y = scalar_const(0);
    else y->flags &= (uint8_t)~F_NULL;
  }
}

typedef struct {
  vstate **at;     /* state at each block start (leader), or 0 */
  uint8_t *leader;
  uint32_t *work;
  uint8_t *queued;
  uint32_t nwork;
  uint32_t n;
} vwork;

static int32_t join_into(vwork *w, uint32_t pc, const vstate *st) {
  vstate *t = w->at[pc];
  int changed = 0;
  if (!t) {
    t = w->at[pc] = bpfvm_sys_alloc(sizeof(vstate));
    if (!t) return -1;
    *t = *st;
    changed = 1;
  } else {
    for (int i = 0; i < 11 + NSLOTS; i++) {
      aval *a = i < 11 ? &t->r[i] : &t->s[i - 11];
      const aval *b = i < 11 ? &st->r[i] : &st->s[i - 11];
      aval j = av_join(*a, *b);
      if (!av_eq(&j, a)) { *a = j; changed = 1; }
    }
  }
  if (changed && !w->queued[pc]) { w->queued[pc] = 1; w->work[w->nwork++] = pc; }
  return 0;
}

static int is_mem(uint32_t op) { return (op >= OP_LDXB && op <= OP_STXDW) || (op >= OP_AADD64 && op <= OP_CMPXCHG32); }
static uint32_t mem_size(uint32_t op) {
  switch (op) {
  case OP_LDXB: case OP_LDXSB: case OP_STB: case OP_STXB: return 1;
  case OP_LDXH: case OP_LDXSH: case OP_STH: case OP_STXH: return 2;
  case OP_LDXW: case OP_LDXSW: case OP_STW: case OP_STXW: return 4;
  case OP_LDXDW: case OP_STDW: case OP_STXDW: return 8;
  default: return (op - OP_AADD64) % 2 ? 4 : 8; /* atomics: 64, 32 alternate */
  }
}

/* Runs the block starting at leader `pc` from its state; -1 on a load error or no memory. */
static int32_t run_block(vctx *v, vwork *w, uint32_t pc) {
  vstate st = *w->at[pc];
  dinsn *code = v->p->code;
  for (;;) {
    dinsn *d = &code[pc];
    uint32_t op = d->op, next = pc + 1;
    if (op >= OP_ADD64_IMM && op <= OP_MOV32_REG) {
      alu(&st, d);
    } else if (op >= OP_NEG64 && op <= OP_BSWAP64) {
      if (op != OP_NOP) st.r[d->dst / 8] = SCALAR_V;
    } else if (op == OP_LDDW) {
      aval x = scalar_const(d->imm);
      if (d->chk == 1) x = SCALAR_V; /* a subprogram address */
      else if (d->chk == 2 && v->p->nregions) { /* a map value address resolved by the loader */
        int32_t ri = -1;
        uint64_t addr = (uint64_t)d->imm;
        for (uint32_t i = 0; i < v->p->nregions; i++) {
          const bpfvm_region_t *r = &v->p->regions[i];
          if ((r->flags & BPFVM_REGION_VALUES) && addr >= r->base && addr < (uint64_t)r->base + r->size) { ri = (int32_t)i; break; }
        }
        if (ri < 0) VFAIL(pc, "lddw map value address ", 1, addr, 1, " is not inside a map of this object");
        else {
          const bpfvm_region_t *r = &v->p->regions[ri];
          aval m = {AV_MAP, 0, (uint16_t)ri, 0, 0, 0, (int64_t)((addr - r->base) % r->stride)};
          x = m;
        }
      }
      st.r[d->dst / 8] = x;
      next = pc + 2;
    } else if (is_mem(op)) {
      uint32_t sz = mem_size(op);
      int is_load = op >= OP_LDXB && op <= OP_LDXSW;
      uint32_t breg = (is_load ? d->src : d->dst) / 8;
      if (check_access(v, &st, pc, d, breg, sz, !is_load) < 0) return -1;
      if (is_load) {
        aval x = stack_load(&st, &st.r[breg], d->off, sz);
        st.r[d->dst / 8] = x;
      } else if (op >= OP_STB && op <= OP_STXDW) {
        stack_store(&st, &st.r[breg], d->off, sz, op >= OP_STXB ? &st.r[d->src / 8] : 0);
      } else { /* atomic */
        stack_store(&st, &st.r[breg], d->off, sz, 0);
        if (op == OP_CMPXCHG64 || op == OP_CMPXCHG32) st.r[0] = SCALAR_V;
        else if ((op >= OP_FADD64 && op <= OP_XCHG32)) st.r[d->src / 8] = SCALAR_V;
      }
    } else if (op == OP_CALL) {
      helper_call(v, &st, pc, d, (uint32_t)d->imm);
    } else if (op == OP_CALLX) {
      helper_call(v, &st, pc, 0, 0xffffffffu);
    } else if (op == OP_CALL_LOCAL) {
      /* The callee starts with the arguments as seen from its own frame: a pointer into a
       * frame of level L here is one into level L + 1 there, 512 bytes further up. */
      vstate callee;
      for (int i = 0; i < 11; i++) callee.r[i] = TOP_V;
      for (int i = 1; i <= 5; i++) {
        aval x = st.r[i];
        if (x.kind == AV_STACK) {
          if (x.id >= BPFVM_MAX_FRAMES - 1) x = TOP_V;
          else { x.id++; if (!(x.flags & F_VAR)) x.off += BPFVM_FRAME_STACK; }
        }
        callee.r[i] = x;
      }
      aval sp = {AV_STACK, 0, 0, 0, 0, 0, 0};
      callee.r[10] = sp;
      for (int i = 0; i < NSLOTS; i++) callee.s[i] = SCALAR_V;
      if (join_into(w, (uint32_t)d->off, &callee) < 0) return -1;
      local_call(&st);
    } else if (op == OP_BPF_LOOP) {
      local_call(&st);
    } else if (op == OP_EXIT) {
      return 0;
    } else if (op == OP_JA) {
      return join_into(w, (uint32_t)d->off, &st);
    } else if (op >= OP_JEQ_IMM && op <= OP_JSLE32_REG) {
      vstate taken = st;
      if ((op == OP_JEQ_IMM || op == OP_JNE_IMM) && d->imm == 0) {
        refine_null(&taken, d->dst / 8, op == OP_JEQ_IMM);
        refine_null(&st, d->dst / 8, op == OP_JNE_IMM);
      }
      if (join_into(w, (uint32_t)d->off, &taken) < 0) return -1;
      return join_into(w, next, &st);
    } else if (op == OP_INVALID) {
      return 0; /* faults when run */
    }
    if (next >= w->n) return 0;
    if (w->leader[next]) return join_into(w, next, &st);
    pc = next;
  }
}

static void entry_state(vstate *st, int main_entry) {
  for (int i = 0; i < 11; i++) st->r[i] = main_entry ? scalar_const(0) : TOP_V;
  for (int i = 0; i < NSLOTS; i++) st->s[i] = SCALAR_V;
  aval sp = {AV_STACK, 0, 0, 0, 0, 0, 0};
  st->r[10] = sp;
  if (main_entry) {
    aval ctx = {AV_CTX, 0, 0, 0, 0, 0, 0};
    st->r[1] = ctx;
    st->r[2] = SCALAR_V;
  }
}

int32_t bpfvm_verify(prog_t *p) {
  uint32_t n = p->len;
  dinsn *code = p->code;
  for (uint32_t pc = 0; pc < n; pc++) /* unreachable code keeps the most general check */
    if (is_mem(code[pc].op)) code[pc].chk = CHK_OWNED;
  vwork w = {0};
  w.n = n;
  w.at = bpfvm_sys_alloc(n * (uint32_t)sizeof(vstate *));
  w.leader = bpfvm_sys_alloc(n);
  w.work = bpfvm_sys_alloc(n * 4u);
  w.queued = bpfvm_sys_alloc(n);
  int32_t rc = -1;
  if (!w.at || !w.leader || !w.work || !w.queued) { rc = bpfvm_load_error(0, "out of memory (verifier)", 0, 0, 0, 0); goto out; }
  w.leader[0] = 1;
  uint8_t *entry = w.queued; /* reused below; marks entries first */
  for (uint32_t pc = 0; pc < n; pc++) {
    dinsn *d = &code[pc];
    if ((d->op >= OP_JEQ_IMM && d->op <= OP_JSLE32_REG) || d->op == OP_JA) {
      w.leader[d->off] = 1;
      if (pc + 1 < n) w.leader[pc + 1] = 1;
    } else if (d->op == OP_CALL_LOCAL) {
      w.leader[d->off] = 1; /* its entry state comes from the call sites */
    } else if (d->op == OP_LDDW && d->chk == 1) {
      uint32_t t = (uint32_t)(d->imm & 0xffffffffu);
      if (t < n) { w.leader[t] = 1; entry[t] = 1; }
    }
  }
  vstate st;
  vctx v = {p, 0};
  entry_state(&st, 1);
  uint32_t nentries = 0;
  for (uint32_t pc = 1; pc < n; pc++) nentries += entry[pc];
  uint32_t *entries = bpfvm_sys_alloc((nentries + 1) * 4u);
  if (!entries) { rc = bpfvm_load_error(0, "out of memory (verifier)", 0, 0, 0, 0); goto out; }
  nentries = 0;
  for (uint32_t pc = 1; pc < n; pc++) if (entry[pc]) entries[nentries++] = pc;
  for (uint32_t pc = 0; pc < n; pc++) w.queued[pc] = 0;
  int failed = join_into(&w, 0, &st) < 0;
  entry_state(&st, 0);
  for (uint32_t i = 0; i < nentries; i++) failed |= join_into(&w, entries[i], &st) < 0;
  bpfvm_sys_free(entries);
  if (failed) goto oom;
  while (w.nwork) {
    uint32_t pc = w.work[--w.nwork];
    w.queued[pc] = 0;
    if (run_block(&v, &w, pc) < 0) goto oom;
  }
  v.final = 1;
  for (uint32_t pc = 0; pc < n; pc++) {
    if (!w.at[pc]) continue;
    if (run_block(&v, &w, pc) < 0) goto out;
  }
  rc = 0;
  goto out;
oom:
  rc = bpfvm_load_error(0, "out of memory (verifier)", 0, 0, 0, 0);
out:
  if (w.at) for (uint32_t pc = 0; pc < n; pc++) bpfvm_sys_free(w.at[pc]);
  bpfvm_sys_free(w.at);
  bpfvm_sys_free(w.leader);
  bpfvm_sys_free(w.work);
  bpfvm_sys_free(w.queued);
  return rc;
}
