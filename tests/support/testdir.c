#include "testsupport.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/lsmq-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    return strdup(dir);
}

void test_rmdir_free(char *path)
{
    if (!path)
        return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", path);
    free(path);
}

uint64_t test_dir_bytes(const char *dir, int depth)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1200];
        struct stat st;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof path || stat(path, &st) != 0)
            continue; /* gone meanwhile: the directory may be changing */
        if (S_ISDIR(st.st_mode) && depth > 0)
            total += test_dir_bytes(path, depth - 1);
        else if (S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return total;
}

void test_engine_config(engine_config *c, const char *path)
{
    engine_config_init(c);
    c->store_path = path;
    c->store_host.ip[0] = 127;
    c->store_host.ip[3] = 1;
    c->store_host.port = 10911;
    c->block_cache_bytes = 8u << 20;
}

engine *test_engine_open(const engine_config *c)
{
    engine_config with_index = *c;
    assert_int_equal(index_declare(&with_index, NULL), 0);
    engine *e = NULL;
    char err[256] = "";
    int rc = engine_open(&with_index, &e, err, sizeof err);
    if (rc != 0)
        fail_msg("engine_open(%s): %s", c->store_path, err);
    return e;
}

void test_topic_create(engine *e, const char *topic, uint32_t queues)
{
    engine_topic_config tc;
    memset(&tc, 0, sizeof tc);
    snprintf(tc.name, sizeof tc.name, "%s", topic);
    tc.read_queue_nums = queues;
    tc.write_queue_nums = queues;
    tc.perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE;
    assert_int_equal(engine_topic_put(e, &tc, NULL), 0);
}

engine_msg test_msg(const char *body, const char *props)
{
    engine_msg m;
    memset(&m, 0, sizeof m);
    m.body = body;
    m.body_len = (uint32_t)strlen(body);
    m.props = props;
    m.props_len = props ? (uint32_t)strlen(props) : 0;
    m.born_timestamp = 1;
    m.born_host.ip[0] = 127;
    m.born_host.ip[3] = 1;
    m.born_host.port = 40000;
    return m;
}
