/*
 * Two stores compared family by family, key by key, through the engine's
 * extension API under one view of each: what a replica must hold after
 * applying its master's log. The replica's own bookkeeping (meta "A", the
 * master sequence applied, and "R", the master epoch it follows) is all
 * that may differ.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine_ext.h"
#include "testsupport.h"

typedef struct differ {
    size_t problems;
    size_t max_report;
} differ;

static void problem(differ *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(differ *d, const char *fmt, ...)
{
    if (d->problems++ >= d->max_report)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "store diff: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bool skipped(const char *family, engine_iter *it)
{
    size_t klen;
    const uint8_t *k = engine_iter_key(it, &klen);
    return strcmp(family, "meta") == 0 && klen == 1 && (k[0] == 'A' || k[0] == 'R');
}

static void skip_own(const char *family, engine_iter *it)
{
    while (engine_iter_valid(it) && skipped(family, it))
        engine_iter_next(it);
}

static void hex(char *out, size_t cap, const uint8_t *p, size_t len)
{
    size_t at = 0;
    for (size_t i = 0; i < len && at + 3 < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%02x", p[i]);
    if (cap)
        out[at < cap ? at : cap - 1] = 0;
}

static void compare_family(differ *d, const char *family, engine_view *va, engine_view *vb)
{
    engine_cf ca, cb;
    bool in_a = engine_family_find(va, family, &ca) == 0;
    bool in_b = engine_family_find(vb, family, &cb) == 0;
    if (!in_a || !in_b) {
        problem(d, "family %s only in store %s", family, in_a ? "a" : "b");
        return;
    }
    engine_iter *ia = engine_iter_create(va, ca, NULL, 0, NULL, 0, ENGINE_ITER_SCAN);
    engine_iter *ib = engine_iter_create(vb, cb, NULL, 0, NULL, 0, ENGINE_ITER_SCAN);
    engine_iter_seek(ia, NULL, 0);
    engine_iter_seek(ib, NULL, 0);
    for (;;) {
        skip_own(family, ia);
        skip_own(family, ib);
        bool va_ok = engine_iter_valid(ia), vb_ok = engine_iter_valid(ib);
        if (!va_ok && !vb_ok)
            break;
        size_t kal = 0, kbl = 0, val = 0, vbl = 0;
        const uint8_t *ka = va_ok ? engine_iter_key(ia, &kal) : NULL;
        const uint8_t *kb = vb_ok ? engine_iter_key(ib, &kbl) : NULL;
        int c = !va_ok ? 1 : !vb_ok ? -1 : 0;
        if (c == 0) {
            c = memcmp(ka, kb, kal < kbl ? kal : kbl);
            if (c == 0)
                c = (kal > kbl) - (kal < kbl);
        }
        char key[80];
        if (c != 0) {
            hex(key, sizeof key, c < 0 ? ka : kb, c < 0 ? kal : kbl);
            problem(d, "%s: key %s only in store %s", family, key, c < 0 ? "a" : "b");
            engine_iter_next(c < 0 ? ia : ib);
            continue;
        }
        const uint8_t *xa = engine_iter_value(ia, &val);
        const uint8_t *xb = engine_iter_value(ib, &vbl);
        if (val != vbl || memcmp(xa, xb, val) != 0) {
            hex(key, sizeof key, ka, kal);
            problem(d, "%s: key %s has different values (%zu and %zu bytes)", family, key, val,
                    vbl);
        }
        engine_iter_next(ia);
        engine_iter_next(ib);
    }
    char err[256];
    if (engine_iter_error(ia, err, sizeof err) != 0 || engine_iter_error(ib, err, sizeof err) != 0)
        problem(d, "%s: iterating: %s", family, err);
    engine_iter_destroy(ia);
    engine_iter_destroy(ib);
}

size_t test_store_diff(engine *a, engine *b, size_t max_report)
{
    differ d = {.max_report = max_report};
    engine_view *va = NULL, *vb = NULL;
    assert_int_equal(engine_view_open(a, &va), 0);
    assert_int_equal(engine_view_open(b, &vb), 0);
    size_t na, nb;
    const char *const *fa = engine_families(a, &na);
    const char *const *fb = engine_families(b, &nb);
    for (size_t i = 0; i < na; i++)
        compare_family(&d, fa[i], va, vb);
    for (size_t i = 0; i < nb; i++) {
        engine_cf cf;
        if (engine_family_find(va, fb[i], &cf) != 0)
            problem(&d, "family %s only in store b", fb[i]);
    }
    engine_view_close(va);
    engine_view_close(vb);
    return d.problems;
}

size_t test_store_dir_diff(const char *dir_a, const char *dir_b, size_t max_report)
{
    char err[256];
    engine *a = NULL, *b = NULL;
    if (engine_open_readonly(dir_a, &a, err, sizeof err) != 0)
        fail_msg("engine_open_readonly(%s): %s", dir_a, err);
    if (engine_open_readonly(dir_b, &b, err, sizeof err) != 0)
        fail_msg("engine_open_readonly(%s): %s", dir_b, err);
    size_t n = test_store_diff(a, b, max_report);
    engine_close(a);
    engine_close(b);
    return n;
}
