/* Registers the index hooks on an engine and upgrades older stores. */
#include "index.h"
#include "index_internal.h"

int index_attach(engine *e)
{
    index_options o = {.key_index = 1};
    return index_attach_with(e, &o);
}

int index_attach_with(engine *e, const index_options *o)
{
    const engine_hook hooks[] = {
        {
            .name = "idx_id",
            .ctx = e,
            .on_append = index__id_on_append,
        },
        {
            .name = "idx_time",
            .ctx = e,
            .on_append = index__time_on_append,
            .on_remove = index__time_on_remove,
            .on_topic_delete = index__time_on_topic_delete,
        },
        {
            .name = "idx_key",
            .ctx = e,
            .on_append = index__key_on_append,
            .on_remove = index__key_on_remove,
            .on_topic_delete = index__key_on_topic_delete,
        },
    };
    size_t n = sizeof hooks / sizeof hooks[0] - (o->key_index ? 0 : 1);
    for (size_t i = 0; i < n; i++) {
        int rc = engine_add_hook(e, &hooks[i]);
        if (rc != 0)
            return rc;
    }
    return o->key_index ? index__key_upgrade(e) : 0;
}
