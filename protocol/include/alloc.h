/*
 * The out-of-memory idiom of every library in the tree (STYLE.md, Errors):
 * allocations whose size lsmq chooses (a struct, a header, a small string)
 * abort with one line on stderr when memory runs out, so callers need no
 * failure path for them. Sizes a peer or a user controls are allocated with
 * plain malloc and fail cleanly with LSMQ_ENOMEM instead.
 *
 * Conventions: what these return is the caller's, released with free().
 * Any thread.
 */
#ifndef LSMQ_PROTO_ALLOC_H
#define LSMQ_PROTO_ALLOC_H

#include <stddef.h>

/* Print "lsmq: out of memory (N bytes)" and abort; N 0 when a library did
 * not say (a JSON encoder returning NULL). */
_Noreturn void proto_oom(size_t n);

/* malloc/calloc/realloc that abort instead of returning NULL (0 bytes is 1). */
void *proto_xmalloc(size_t n);
void *proto_xcalloc(size_t n, size_t size);
void *proto_xrealloc(void *p, size_t n);
/* A copy of s, and of s[0..n) plus a NUL. */
char *proto_xstrdup(const char *s);
char *proto_xstrndup(const char *s, size_t n);
/* A printf-formatted string. */
char *proto_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
