/*
 * mqdump's output: one big buffer in front of write(2), so a full scan
 * makes few system calls, and the progress bar on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mqdump.h"
#include "clock.h"

#define OUT_BUF_BYTES (4u << 20)
#define PIPE_BYTES (1 << 20) /* the default /proc/sys/fs/pipe-max-size */
#define PROGRESS_EVERY_MS 200
#define PROGRESS_WIDTH 30

static char out_buf[OUT_BUF_BYTES];
static size_t out_len;
static int out_error; /* errno of the failed write, 0 while fine */

/* A pipe's default 64 KiB buffer costs a context switch per 64 KiB; ask for more. */
static void grow_pipe(void)
{
    static int done;
    struct stat st;
    if (done++)
        return;
    if (fstat(STDOUT_FILENO, &st) == 0 && S_ISFIFO(st.st_mode))
        fcntl(STDOUT_FILENO, F_SETPIPE_SZ, PIPE_BYTES);
}

static void write_all(const char *p, size_t len)
{
    grow_pipe();
    while (len > 0 && !out_error) {
        ssize_t n = write(STDOUT_FILENO, p, len);
        if (n < 0) {
            if (errno == EINTR && !mqd_interrupted)
                continue;
            out_error = errno ? errno : EIO;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
}

int mqd_out_flush(void)
{
    write_all(out_buf, out_len);
    out_len = 0;
    if (out_error)
        errno = out_error;
    return out_error ? -1 : 0;
}

int mqd_out_failed(void) { return out_error != 0; }

void mqd_out(const void *p, size_t len)
{
    if (out_len + len > sizeof out_buf) {
        mqd_out_flush();
        if (len > sizeof out_buf) {
            write_all(p, len); /* a body bigger than the buffer goes straight out */
            return;
        }
    }
    memcpy(out_buf + out_len, p, len);
    out_len += len;
}

void mqd_out_str(const char *s) { mqd_out(s, strlen(s)); }

void mqd_out_char(char c)
{
    if (out_len == sizeof out_buf)
        mqd_out_flush();
    out_buf[out_len++] = c;
}

void mqd_out_u64(uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    mqd_out(tmp + i, sizeof tmp - i);
}

void mqd_out_i64(int64_t v)
{
    if (v < 0) {
        mqd_out_char('-');
        mqd_out_u64((uint64_t)0 - (uint64_t)v);
    } else {
        mqd_out_u64((uint64_t)v);
    }
}

/* ---- Progress ---- */

static struct {
    int on;
    uint64_t total, msgs, bytes;
    int64_t start_ms, last_ms;
    unsigned tick;
} prog;

static void progress_draw(void)
{
    int64_t now = proto_mono_ms();
    double secs = (double)(now - prog.start_ms) / 1000.0;
    double mbps = secs > 0 ? (double)prog.bytes / (1024.0 * 1024.0) / secs : 0;
    char bar[PROGRESS_WIDTH + 1];
    int filled = 0;
    if (prog.total) {
        uint64_t done = prog.msgs > prog.total ? prog.total : prog.msgs;
        filled = (int)(done * PROGRESS_WIDTH / prog.total);
    }
    for (int i = 0; i < PROGRESS_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[PROGRESS_WIDTH] = 0;
    if (prog.total)
        fprintf(stderr, "\r[%s] %3d%% %llu/%llu messages %.1f MiB/s ", bar,
                (int)(prog.msgs >= prog.total ? 100 : prog.msgs * 100 / prog.total),
                (unsigned long long)prog.msgs, (unsigned long long)prog.total, mbps);
    else
        fprintf(stderr, "\r%llu messages %.1f MiB/s ", (unsigned long long)prog.msgs, mbps);
    prog.last_ms = now;
}

void mqd_progress_start(int enabled, uint64_t total_msgs)
{
    memset(&prog, 0, sizeof prog);
    prog.on = enabled < 0 ? isatty(STDERR_FILENO) : enabled;
    prog.total = total_msgs;
    prog.start_ms = prog.last_ms = proto_mono_ms();
}

void mqd_progress_add(uint64_t msgs, uint64_t bytes)
{
    prog.msgs += msgs;
    prog.bytes += bytes;
    /* Look at the clock only now and then: this runs once per message. */
    if (!prog.on || (++prog.tick & 1023) != 0)
        return;
    if (proto_mono_ms() - prog.last_ms >= PROGRESS_EVERY_MS)
        progress_draw();
}

void mqd_progress_end(void)
{
    if (!prog.on)
        return;
    progress_draw();
    fputc('\n', stderr);
    prog.on = 0;
}
