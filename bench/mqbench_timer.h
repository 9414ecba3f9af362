/*
 * mqbench's timer mode (delayed delivery), in mqbench_timer.c: mqbench.c
 * hands it "mqbench timer ..." whole.
 */
#ifndef LSMQ_MQBENCH_TIMER_H
#define LSMQ_MQBENCH_TIMER_H

/* Run "mqbench timer ARGS"; argv[1] is "timer". The exit status. */
int mqbench_timer_main(int argc, char **argv);

/* The timer lines of mqbench's usage text, on stderr. */
void mqbench_timer_usage(void);

#endif
