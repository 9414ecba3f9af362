/* index/'s queries for tests that hold an engine, each under a view of its own. */
#include "testsupport.h"

static engine_view *view_of(engine *e)
{
    engine_view *v = NULL;
    assert_int_equal(engine_view_open(e, &v), 0);
    return v;
}

int test_locate(engine *e, uint64_t log_position, uint32_t *topic_id, uint32_t *queue_id,
                uint64_t *queue_offset)
{
    engine_view *v = view_of(e);
    int rc = index_locate(v, log_position, topic_id, queue_id, queue_offset);
    engine_view_close(v);
    return rc;
}

int test_get_by_position(engine *e, uint64_t log_position, uint8_t **rec, size_t *len)
{
    engine_view *v = view_of(e);
    int rc = index_get_by_position(v, log_position, rec, len);
    engine_view_close(v);
    return rc;
}

int test_search_time(engine *e, uint32_t topic_id, uint32_t queue_id, int64_t ts_ms,
                     index_time_boundary boundary, uint64_t *offset)
{
    engine_view *v = view_of(e);
    int rc = index_search_time(v, topic_id, queue_id, ts_ms, boundary, offset);
    engine_view_close(v);
    return rc;
}

int test_query_key(engine *e, uint32_t topic_id, const char *key, size_t key_len,
                   unsigned kinds, int64_t begin_ms, int64_t end_ms, size_t max_hits,
                   index_key_hit **hits, size_t *n)
{
    engine_view *v = view_of(e);
    int rc = index_query_key(v, topic_id, key, key_len, kinds, begin_ms, end_ms, max_hits,
                             hits, n);
    engine_view_close(v);
    return rc;
}
