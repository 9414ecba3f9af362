/*
 * File chores of checkpoints on both sides: removing a directory tree,
 * making renames durable, checksums.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "alloc.h"
#include "repl_internal.h"

void (*repl__test_chunk_hook)(const char *file, uint64_t offset, uint8_t *data, size_t len);

int repl__remove_tree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *sub = proto_xasprintf("%s/%s", path, de->d_name);
        rc = repl__remove_tree(sub);
        free(sub);
    }
    closedir(d);
    if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

int repl__sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

uint32_t repl__crc(uint32_t crc, const void *p, size_t len)
{
    /* Callers pass chunks and read buffers, far below zlib's uInt limit. */
    return (uint32_t)crc32(crc, p, (uInt)len);
}

uint32_t repl__crc_combine(uint32_t a, uint32_t b, uint64_t b_len)
{
    return (uint32_t)crc32_combine(a, b, (z_off_t)b_len);
}

int repl__pread_full(int fd, void *buf, size_t len, uint64_t offset, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + *got, len - *got, (off_t)(offset + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

int repl__file_crc(const char *path, uint32_t *crc)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    size_t cap = 1u << 20, n;
    uint8_t *buf = proto_xmalloc(cap);
    uint64_t offset = 0;
    uint32_t c = 0;
    int rc;
    while ((rc = repl__pread_full(fd, buf, cap, offset, &n)) == 0 && n > 0) {
        c = repl__crc(c, buf, n);
        offset += n;
    }
    free(buf);
    close(fd);
    if (rc == 0)
        *crc = c;
    return rc;
}
