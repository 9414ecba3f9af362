/* The one logger (log.h): a level, a sink, and stderr lines by default. */
#include "log.h"

#include "clock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LINE_MAX_BYTES 2048

static proto_log_sink *sink_fn;
static void *sink_arg;
static atomic_int current_level = -1; /* -1: not read from the environment yet */

void proto_log_set_sink(proto_log_sink *fn, void *arg)
{
    sink_fn = fn;
    sink_arg = arg;
}

void proto_log_set_level(int level) { atomic_store(&current_level, level); }

static int level_now(void)
{
    int lv = atomic_load(&current_level);
    if (lv < 0) {
        const char *env = getenv("LSMQ_LOG_LEVEL");
        lv = env && *env >= '0' && *env <= '3' ? *env - '0' : PROTO_LOG_WARN;
        atomic_store(&current_level, lv);
    }
    return lv;
}

bool proto_log_enabled(int level) { return level <= level_now(); }

static void write_stderr(int level, const char *line)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    int64_t now_ms = proto_wall_ms();
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    /* One fprintf per line, so lines of different threads do not mix. */
    fprintf(stderr, "%s.%03d %s %s\n", stamp, (int)(now_ms % 1000), names[level & 3], line);
}

void proto_log(int level, const char *fmt, ...)
{
    if (!proto_log_enabled(level))
        return;
    char line[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (sink_fn)
        sink_fn(level, line, sink_arg);
    else
        write_stderr(level, line);
}
