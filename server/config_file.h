/*
 * Properties-style configuration shared by mqbroker and mqnamesrv: key=value
 * lines (also key:value, # and ! comments) from a file, and --key=value on
 * the command line, each applied through the program's own setter.
 */
#ifndef LSMQ_SERVER_CONFIG_FILE_H
#define LSMQ_SERVER_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* Apply one key; 0, LSMQ_ENOTFOUND for an unknown key, or an error; why says which. */
typedef int (*config_setter)(void *cfg, const char *key, const char *value, char *why,
                             size_t why_len);

/*
 * Load a file. Keys the setter does not know are reported on stderr and
 * skipped: upstream files carry many keys lsmq has no use for.
 */
int server_config_file_load(const char *path, config_setter set, void *cfg, char *errbuf,
                     size_t errlen);

/*
 * If arg is "--key=value", apply it (unknown keys are errors here) and return
 * 1 or a negative error; return 0 when arg has another shape.
 */
int server_config_apply_option(const char *arg, config_setter set, void *cfg, char *errbuf,
                        size_t errlen);

/* "true" or "false" (any case) as upstream's configs write them: 0, or LSMQ_EINVAL. */
int server_config_parse_bool(const char *v, bool *out);

#endif
