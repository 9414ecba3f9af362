/* RocketMQ tools' date text, shared by mqadmin and mqdump. */
#ifndef LSMQ_TOOLS_ROCKETMQ_TIME_H
#define LSMQ_TOOLS_ROCKETMQ_TIME_H

#include <stdint.h>

/*
 * "yyyy-MM-dd#HH:mm:ss:SSS" (UtilAll.YYYY_MM_DD_HH_MM_SS_SSS) as local time
 * to ms since the epoch; 0, or -1 when s is not exactly that.
 */
int rocketmq_time_parse(const char *s, int64_t *ms);

#endif
