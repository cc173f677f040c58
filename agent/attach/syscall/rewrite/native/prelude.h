/*
 * What Frida's TinyCC runtime gives a CModule for free, for these handlers, which gcc
 * builds instead (Makefile): the glib names the shared fragments of agent/cmodules use.
 * TinyCC does not optimise; the handlers run on every traced syscall, and their TinyCC
 * build took about a third of one (the per-thread table scans, mostly).
 */
#include <stddef.h>
#include <stdint.h>

typedef int8_t gint8;
typedef uint8_t guint8;
typedef int16_t gint16;
typedef uint16_t guint16;
typedef int32_t gint32;
typedef uint32_t guint32;
typedef int64_t gint64;
typedef uint64_t guint64;
typedef int gint;
typedef unsigned int guint;
typedef long glong;
typedef unsigned long gsize;
typedef void * gpointer;
typedef const void * gconstpointer;

#define G_STRUCT_OFFSET(type, field) ((glong) offsetof (type, field))
