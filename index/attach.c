/* Registers the index hooks on an engine. */
#include "index.h"
#include "index_internal.h"

int index_attach(engine *e)
{
    engine_hook id_hook = {
        .name = "idx_id",
        .ctx = e,
        .on_append = index__id_on_append,
    };
    engine_hook time_hook = {
        .name = "idx_time",
        .ctx = e,
        .on_append = index__time_on_append,
        .on_remove = index__time_on_remove,
        .on_topic_delete = index__time_on_topic_delete,
    };
    int rc = engine_add_hook(e, &id_hook);
    return rc ? rc : engine_add_hook(e, &time_hook);
}
