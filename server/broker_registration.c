/*
 * The registration row of the module table: it owns the registrar that
 * talks to the name servers (broker_register.c) and the bookkeeping around
 * it on the loop thread. Registrations are numbered (generations); a topic
 * creation asks for one at once, and answers that must follow a
 * registration (a send that auto-created its topic) wait here until it has
 * finished. Once registration has stopped nothing waits any more: the
 * waiters run at stop, and later ones run at once. A replica also learns
 * its master from the answers; that news is handed to one listener.
 */
#include <stdlib.h>

#include "alloc.h"
#include "broker_internal.h"

typedef struct register_waiter {
    struct register_waiter *next;
    uint64_t gen;
    void (*fn)(void *arg);
    void *arg;
} register_waiter;

struct broker_registration {
    broker_registrar *registrar; /* NULL without name servers, and once stopped */
    bool stopped;
    uint64_t topics_gen;         /* asked for by the latest topic creation */
    uint64_t registered_gen;     /* the latest finished */
    register_waiter *waiters;
    broker_master_fn master_fn;  /* a replica's master heard of (the ha-serve row) */
    void *master_ctx;
};

/* Run the waiters of generations up to gen (all of them when gen is UINT64_MAX). */
static void run_waiters(broker_registration *r, uint64_t gen)
{
    register_waiter **pp = &r->waiters, *ready = NULL;
    while (*pp) {
        register_waiter *w = *pp;
        if (w->gen <= gen) {
            *pp = w->next;
            w->next = ready;
            ready = w;
        } else {
            pp = &w->next;
        }
    }
    while (ready) {
        register_waiter *w = ready;
        ready = w->next;
        w->fn(w->arg);
        free(w);
    }
}

void broker_registration_after(broker_registration *r, uint64_t gen, void (*fn)(void *),
                               void *arg)
{
    if (gen <= r->registered_gen || r->stopped) {
        fn(arg);
        return;
    }
    register_waiter *w = proto_xmalloc(sizeof *w);
    *w = (register_waiter){r->waiters, gen, fn, arg};
    r->waiters = w;
}

void broker__registered(broker_registration *r, uint64_t gen)
{
    if (gen > r->registered_gen)
        r->registered_gen = gen;
    run_waiters(r, r->registered_gen);
}

void broker_registration_on_master(broker_registration *r, broker_master_fn fn, void *ctx)
{
    r->master_fn = fn;
    r->master_ctx = ctx;
}

void broker__master_heard(broker_registration *r, const char *master_addr, const char *ha_addr)
{
    if (r->master_fn && !r->stopped)
        r->master_fn(r->master_ctx, master_addr, ha_addr);
}

void broker_registration_again(broker_registration *r)
{
    if (!r->stopped)
        broker_register_now(r->registrar);
}

uint64_t broker_registration_topics_gen(broker_registration *r) { return r->topics_gen; }

void broker_registration_topics_changed(broker_registration *r, bool created)
{
    uint64_t gen = broker_register_now(r->registrar);
    if (created && gen > r->topics_gen)
        r->topics_gen = gen;
}

int broker_registration_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_registration *r = proto_xcalloc(1, sizeof *r);
    r->registrar = broker_registrar_start(&m->ctx, r);
    m->registration = r;
    return 0;
}

/* Before the store closes: the registrar reads topic configs from it. */
void broker_registration_stop(broker_modules *m)
{
    broker_registration *r = m->registration;
    broker_registrar_stop(r->registrar);
    r->registrar = NULL;
    r->stopped = true;
    run_waiters(r, UINT64_MAX); /* answer what still waited for a registration */
}

/* After stop, which ran every waiter; none could be queued since (stopped). */
void broker_registration_destroy(broker_modules *m)
{
    free(m->registration);
    m->registration = NULL;
}
