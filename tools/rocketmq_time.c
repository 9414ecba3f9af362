/* The date text RocketMQ's tools accept (see rocketmq_time.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rocketmq_time.h"

int rocketmq_time_parse(const char *s, int64_t *ms)
{
    struct tm tm;
    int millis = 0, used = -1;

    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2d#%2d:%2d:%2d:%3d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &used) != 7 ||
        used < 0 || s[used] != '\0')
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || millis < 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1; /* local time, daylight saving as it falls */
    time_t secs = mktime(&tm);
    if (secs == (time_t)-1)
        return -1;
    *ms = (int64_t)secs * 1000 + millis;
    return 0;
}
