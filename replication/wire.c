/*
 * The HA protocol's bodies (README.md): shipped batches, each tagged with
 * (epoch, seq, count), and the file list of a checkpoint.
 */
#include <errno.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "record.h"
#include "repl_internal.h"

void repl__batch_put(proto_buf *out, uint64_t epoch, const engine_log_batch *b)
{
    uint8_t head[REPL_BATCH_HEAD];

    proto_put_u64(head, epoch);
    proto_put_u64(head + 8, b->seq);
    proto_put_u32(head + 16, b->count);
    proto_put_u32(head + 20, (uint32_t)b->len);
    proto_buf_reserve(out, sizeof head + b->len);
    proto_buf_put(out, head, sizeof head);
    proto_buf_put(out, b->data, b->len);
}

int repl__batch_next(const uint8_t *body, size_t len, size_t *pos, repl_batch *out)
{
    size_t at = *pos;

    if (at == len)
        return 0;
    if (len - at < REPL_BATCH_HEAD)
        return LSMQ_ECORRUPT;
    const uint8_t *h = body + at;
    uint32_t n = proto_get_u32(h + 20);
    if (len - at - REPL_BATCH_HEAD < n)
        return LSMQ_ECORRUPT;
    out->epoch = proto_get_u64(h);
    out->b.seq = proto_get_u64(h + 8);
    out->b.count = proto_get_u32(h + 16);
    out->b.data = h + REPL_BATCH_HEAD;
    out->b.len = n;
    if (out->b.count == 0 || out->b.seq == 0)
        return LSMQ_ECORRUPT;
    *pos = at + REPL_BATCH_HEAD + n;
    return 1;
}

bool repl__safe_name(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n < sizeof(((repl_file *)0)->name) && strchr(name, '/') == NULL &&
           strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int repl__list_files(const char *dir, proto_buf *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        char *path;

        if (!repl__safe_name(de->d_name))
            continue;
        path = proto_xasprintf("%s/%s", dir, de->d_name);
        int rc = stat(path, &st);
        free(path);
        if (rc != 0) {
            rc = -errno;
            closedir(d);
            return rc;
        }
        if (S_ISREG(st.st_mode))
            proto_buf_printf(out, "%" PRIu64 " %s\n", (uint64_t)st.st_size, de->d_name);
    }
    closedir(d);
    return 0;
}

int repl__parse_files(const uint8_t *body, size_t len, repl_file **out, size_t *n)
{
    repl_file *files = NULL;
    size_t count = 0, cap = 0;
    const char *p = (const char *)body, *end = p + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *sp = nl ? memchr(p, ' ', (size_t)(nl - p)) : NULL;
        char num[24];
        char *num_end;

        if (!sp || sp == p || (size_t)(sp - p) >= sizeof num ||
            (size_t)(nl - sp - 1) >= sizeof files->name)
            goto bad;
        memcpy(num, p, (size_t)(sp - p));
        num[sp - p] = '\0';
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            files = proto_xrealloc(files, cap * sizeof *files);
        }
        repl_file *f = &files[count];
        errno = 0;
        f->size = strtoull(num, &num_end, 10);
        if (errno || *num_end || num[0] < '0' || num[0] > '9')
            goto bad;
        memcpy(f->name, sp + 1, (size_t)(nl - sp - 1));
        f->name[nl - sp - 1] = '\0';
        if (!repl__safe_name(f->name))
            goto bad;
        count++;
        p = nl + 1;
    }
    *out = files;
    *n = count;
    return 0;
bad:
    free(files);
    return LSMQ_ECORRUPT;
}
