/*
 * Name server configuration with RocketMQ's key names, from a properties
 * file (-c FILE: key=value lines, # comments) and --key=value arguments;
 * later settings win. Files may carry upstream keys lsmq does not use: they
 * are reported and skipped. Unknown keys on the command line are errors.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_file.h"
#include "namesrv.h"

void namesrv_config_init(namesrv_config *c)
{
    memset(c, 0, sizeof *c);
    c->listen_port = 9876;
    c->broker_expire_ms = 120000;
    c->scan_interval_ms = 5000;
    c->controller_scan_ms = 1000;
    const char *home = getenv("HOME");
    snprintf(c->controller_store_path, sizeof c->controller_store_path, "%s/lsmq/controller",
             home && *home ? home : ".");
}

static void say(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static int copy_value(char *dst, size_t cap, const char *v)
{
    if (!*v || strlen(v) >= cap)
        return LSMQ_EINVAL;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* Upstream writes controllerDLegerPeers as "n0-host:port;n1-host:port":
 * the first '-' of each entry (ids have none) becomes our '='. */
static int copy_peers(char *dst, size_t cap, const char *v)
{
    int rc = copy_value(dst, cap, v);
    for (char *e = dst; rc == 0 && e && *e; e = strchr(e, ';') ? strchr(e, ';') + 1 : NULL) {
        size_t len = strcspn(e, ";");
        char *eq = memchr(e, '=', len), *dash = memchr(e, '-', len);
        if (!eq && dash)
            *dash = '=';
    }
    return rc;
}

static int parse_num(const char *v, unsigned long max, unsigned long *out)
{
    if (!isdigit((unsigned char)*v))
        return LSMQ_EINVAL;
    errno = 0;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || *end || x > max)
        return LSMQ_EINVAL;
    *out = x;
    return 0;
}

/* One key; LSMQ_ENOTFOUND for a key we do not know. */
static int set_key(namesrv_config *c, const char *key, const char *value, char *errbuf,
                   size_t errlen)
{
    unsigned long n = 0;
    int rc = 0;
    if (strcmp(key, "listenPort") == 0) {
        if ((rc = parse_num(value, 65535, &n)) == 0)
            c->listen_port = (int)n;
    } else if (strcmp(key, "brokerChannelExpiredTime") == 0) {
        if ((rc = parse_num(value, UINT32_MAX, &n)) == 0 && n == 0)
            rc = LSMQ_EINVAL;
        if (rc == 0)
            c->broker_expire_ms = (uint32_t)n;
    } else if (strcmp(key, "scanNotActiveBrokerInterval") == 0) {
        if ((rc = parse_num(value, UINT32_MAX, &n)) == 0 && n == 0)
            rc = LSMQ_EINVAL;
        if (rc == 0)
            c->scan_interval_ms = (uint32_t)n;
    } else if (strcmp(key, "orderMessageEnable") == 0) {
        if (strcasecmp(value, "true") == 0)
            c->order_message_enable = 1;
        else if (strcasecmp(value, "false") == 0)
            c->order_message_enable = 0;
        else
            rc = LSMQ_EINVAL;
    } else if (strcmp(key, "enableControllerInNamesrv") == 0) {
        rc = server_config_parse_bool(value, &c->enable_controller);
    } else if (strcmp(key, "controllerPeers") == 0 || strcmp(key, "controllerDLegerPeers") == 0) {
        rc = copy_peers(c->controller_peers, sizeof c->controller_peers, value);
    } else if (strcmp(key, "controllerSelfId") == 0 ||
               strcmp(key, "controllerDLegerSelfId") == 0) {
        rc = copy_value(c->controller_self_id, sizeof c->controller_self_id, value);
    } else if (strcmp(key, "controllerStorePath") == 0) {
        rc = copy_value(c->controller_store_path, sizeof c->controller_store_path, value);
    } else if (strcmp(key, "scanInactiveMasterInterval") == 0) {
        if ((rc = parse_num(value, UINT32_MAX, &n)) == 0 && n == 0)
            rc = LSMQ_EINVAL;
        if (rc == 0)
            c->controller_scan_ms = (uint32_t)n;
    } else if (strcmp(key, "enableElectUncleanMaster") == 0) {
        bool unclean = false;
        if ((rc = server_config_parse_bool(value, &unclean)) == 0 && unclean) {
            /* Electing outside the sync state set loses acknowledged messages. */
            say(errbuf, errlen, "enableElectUncleanMaster=true is not supported");
            return LSMQ_EINVAL;
        }
    } else {
        say(errbuf, errlen, "unknown configuration key '%s'", key);
        return LSMQ_ENOTFOUND;
    }
    if (rc != 0)
        say(errbuf, errlen, "bad value for %s: '%s'", key, value);
    return rc;
}

static int set_key_cb(void *cfg, const char *key, const char *value, char *why,
                      size_t why_len)
{
    return set_key(cfg, key, value, why, why_len);
}

/* Whether id names an entry of the peer list ("id=addr" between ';' or ','). */
static bool peers_have(const char *peers, const char *id)
{
    size_t n = strlen(id);
    for (const char *e = peers; *e;) {
        size_t len = strcspn(e, ";,");
        if (len > n && strncmp(e, id, n) == 0 && e[n] == '=')
            return true;
        e += len;
        e += *e ? 1 : 0;
    }
    return false;
}

static int check_controller(const namesrv_config *c, char *errbuf, size_t errlen)
{
    if (!c->enable_controller)
        return 0;
    if (!c->controller_peers[0]) {
        say(errbuf, errlen, "enableControllerInNamesrv=true needs controllerPeers "
                            "(n0=host:port;n1=host:port;n2=host:port)");
        return LSMQ_EINVAL;
    }
    if (!c->controller_self_id[0]) {
        say(errbuf, errlen, "enableControllerInNamesrv=true needs controllerSelfId (e.g. n0)");
        return LSMQ_EINVAL;
    }
    if (!peers_have(c->controller_peers, c->controller_self_id)) {
        say(errbuf, errlen, "controllerSelfId '%s' is not among controllerPeers '%s'",
            c->controller_self_id, c->controller_peers);
        return LSMQ_EINVAL;
    }
    return 0;
}

int namesrv_config_parse_args(namesrv_config *c, int argc, char **argv, char *errbuf,
                              size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) {
                say(errbuf, errlen, "-c needs a file name");
                return LSMQ_EINVAL;
            }
            rc = server_config_file_load(argv[++i], set_key_cb, c, errbuf, errlen);
        } else if ((rc = server_config_apply_option(a, set_key_cb, c, errbuf, errlen)) != 0) {
            rc = rc > 0 ? 0 : rc;
        } else {
            say(errbuf, errlen, "unknown argument '%s' (use -c FILE or --key=value)", a);
            rc = LSMQ_EINVAL;
        }
        if (rc != 0)
            return rc;
    }
    return check_controller(c, errbuf, errlen);
}
