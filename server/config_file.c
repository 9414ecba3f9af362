#include "config_file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "errors.h"
#include "log.h"

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = 0;
    return s;
}

int server_config_file_load(const char *path, config_setter set, void *cfg, char *errbuf,
                     size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int err = errno;
        snprintf(errbuf, errlen, "cannot read %s: %s", path, strerror(err));
        return -err;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *eq = strpbrk(s, "=:");
        if (!eq) {
            snprintf(errbuf, errlen, "%s:%d: expected key=value", path, lineno);
            rc = LSMQ_EINVAL;
            break;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        char why[256] = "";
        rc = set(cfg, key, value, why, sizeof why);
        if (rc == LSMQ_ENOTFOUND) {
            proto_log(PROTO_LOG_WARN, "config: %s:%d: ignoring unsupported key %s", path, lineno, key);
            rc = 0;
        } else if (rc != 0) {
            snprintf(errbuf, errlen, "%s:%d: %s", path, lineno, why);
        }
    }
    fclose(f);
    return rc;
}

int server_config_apply_option(const char *arg, config_setter set, void *cfg, char *errbuf,
                        size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) != 0 || !eq)
        return 0;
    char key[128];
    size_t klen = (size_t)(eq - arg - 2);
    if (klen == 0 || klen >= sizeof key) {
        snprintf(errbuf, errlen, "bad option '%s'", arg);
        return LSMQ_EINVAL;
    }
    memcpy(key, arg + 2, klen);
    key[klen] = 0;
    int rc = set(cfg, key, eq + 1, errbuf, errlen);
    return rc == 0 ? 1 : rc;
}

int server_config_parse_bool(const char *v, bool *out)
{
    if (strcasecmp(v, "true") == 0)
        *out = true;
    else if (strcasecmp(v, "false") == 0)
        *out = false;
    else
        return LSMQ_EINVAL;
    return 0;
}
