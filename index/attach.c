/* Registers the index hooks on an engine and upgrades older stores. */
#include "index.h"
#include "index_internal.h"

int index_attach(engine *e)
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
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++) {
        int rc = engine_add_hook(e, &hooks[i]);
        if (rc != 0)
            return rc;
    }
    return index__key_upgrade(e);
}
