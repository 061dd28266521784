/* A container's monitor: holds its stdout/stderr pipes and is the parent that reads its exit status.
 *
 * One runs per container (as conmon does for CRI-O and the shim for containerd), so a container's
 * logs and exit code do not depend on the long-lived supervisor: the supervisor may be killed and
 * restarted while the container runs and logs, and nothing is lost.
 *
 *   monitor EXIT_FILE LOG_PATH MAX_BYTES MAX_FILES [partial]
 *           (fd 3: stdout pipe or a TTY's master, fd 4: stderr pipe, fd 5: optional stdin holder)
 *
 * The supervisor's forked child becomes this program after forking the container's setup process
 * (runtime/monitor.py); being a child subreaper, it is the container's parent. It turns the pipes
 * into a CRI log file (`<RFC 3339 nanosecond time> <stdout|stderr> <F|P> <text>`, lines over 16 KiB
 * cut into P entries, size-based rotation to LOG_PATH.1 ... LOG_PATH.(MAX_FILES - 1)), the same
 * format the kubelet reads. Each child it reaps is appended to EXIT_FILE as `<pid> <wait status>`,
 * after what the pipes held at that moment is logged. It exits when both pipes are closed and it
 * has no child left. An empty LOG_PATH discards the output.
 *
 * `partial` (a TTY's output) logs what each read brought at once, the unfinished line as a P
 * entry, so that `attach` shows a shell's prompt and the echo of typing as they come. A container
 * with `stdin: true` keeps its stdin pipe open through fd 5, the write end this monitor holds;
 * SIGUSR1 closes it (stdinOnce: the first attach ended), and the container reads end of file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE (16 * 1024)
#define READ_CHUNK (64 * 1024)
#define DRAIN_CHUNKS_AT_EXIT 16
#define PREFIX_SIZE 64

struct stream {
    const char *name;
    int fd; /* -1 once closed */
    size_t pending;
    char work[MAX_LINE + READ_CHUNK];
};

static const char *log_path;
static int flush_partial;
#define STDIN_HOLDER_FD 5
static long long max_bytes;
static int max_files;
static int log_fd = -1;
static long long log_size;
static char *out;
static size_t out_length, out_capacity;

static void write_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return; /* a full disk loses log lines, never the container */
        }
        data += written;
        length -= (size_t)written;
    }
}

static void open_log(void) {
    struct stat status;
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    log_size = (log_fd >= 0 && fstat(log_fd, &status) == 0) ? status.st_size : 0;
}

static void flush_log(void) {
    if (out_length > 0 && log_fd >= 0)
        write_all(log_fd, out, out_length);
    log_size += (long long)out_length;
    out_length = 0;
}

static void rotate_log(void) {
    char older[4096], newer[4096];
    flush_log();
    if (log_fd >= 0)
        close(log_fd);
    for (int index = max_files - 1; index > 0; index--) {
        if (index == 1)
            snprintf(older, sizeof older, "%s", log_path);
        else
            snprintf(older, sizeof older, "%s.%d", log_path, index - 1);
        snprintf(newer, sizeof newer, "%s.%d", log_path, index);
        rename(older, newer); /* a missing older file is fine */
    }
    if (max_files == 1)
        unlink(log_path);
    open_log();
}

static void append(const char *data, size_t length) {
    if (out_length + length > out_capacity) {
        out_capacity = (out_length + length) * 2;
        out = realloc(out, out_capacity);
        if (out == NULL)
            _exit(70);
    }
    memcpy(out + out_length, data, length);
    out_length += length;
}

/* One entry: the shared timestamp, the stream, F (full) or P (partial), the text, a newline. */
static void entry(const char *timestamp, const char *stream, int partial, const char *text, size_t length) {
    char prefix[PREFIX_SIZE];
    int prefix_length = snprintf(prefix, sizeof prefix, "%s %s %c ", timestamp, stream, partial ? 'P' : 'F');
    size_t line_length = (size_t)prefix_length + length + 1;
    long long size = log_size + (long long)out_length;
    if (size > 0 && size + (long long)line_length > max_bytes)
        rotate_log();
    append(prefix, (size_t)prefix_length);
    append(text, length);
    append("\n", 1);
}

static void timestamp_now(char *buffer, size_t size) {
    struct timespec now;
    struct tm utc;
    char seconds[32];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    strftime(seconds, sizeof seconds, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(buffer, size, "%s.%09ldZ", seconds, now.tv_nsec);
}

/* A line of any length: partial entries of MAX_LINE bytes, then a full one with the rest. */
static void long_line(const char *timestamp, const char *stream, const char *text, size_t length) {
    while (length > MAX_LINE) {
        entry(timestamp, stream, 1, text, MAX_LINE);
        text += MAX_LINE;
        length -= MAX_LINE;
    }
    entry(timestamp, stream, 0, text, length);
}

/* Log what was read (already appended to work after the pending bytes); keep an unfinished line. */
static void feed(struct stream *stream, size_t received) {
    char timestamp[48];
    size_t length = stream->pending + received, start = 0;
    if (log_path[0] == '\0') {
        stream->pending = 0;
        return;
    }
    timestamp_now(timestamp, sizeof timestamp);
    for (size_t index = stream->pending; index < length; index++) {
        if (stream->work[index] == '\n') {
            long_line(timestamp, stream->name, stream->work + start, index - start);
            start = index + 1;
        }
    }
    while (length - start >= MAX_LINE) {
        entry(timestamp, stream->name, 1, stream->work + start, MAX_LINE);
        start += MAX_LINE;
    }
    if (flush_partial && length > start) {
        entry(timestamp, stream->name, 1, stream->work + start, length - start);
        start = length;
    }
    memmove(stream->work, stream->work + start, length - start);
    stream->pending = length - start;
    flush_log();
}

/* At end of output an unterminated last line is still a full line. */
static void finish(struct stream *stream) {
    char timestamp[48];
    if (stream->pending > 0 && log_path[0] != '\0') {
        timestamp_now(timestamp, sizeof timestamp);
        long_line(timestamp, stream->name, stream->work, stream->pending);
        flush_log();
    }
    stream->pending = 0;
    close(stream->fd);
    stream->fd = -1;
}

/* Read once; returns 0 when nothing more can be read now (would block, or closed). */
static int read_once(struct stream *stream) {
    ssize_t received;
    if (stream->fd < 0)
        return 0;
    received = read(stream->fd, stream->work + stream->pending, READ_CHUNK);
    if (received > 0) {
        feed(stream, (size_t)received);
        return 1;
    }
    if (received == 0 || (errno != EAGAIN && errno != EINTR))
        finish(stream);
    return 0;
}

static void record_exit(const char *exit_file, pid_t pid, int status) {
    char line[64];
    int length = snprintf(line, sizeof line, "%d %d\n", (int)pid, status);
    int fd = open(exit_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        write_all(fd, line, (size_t)length);
        close(fd);
    }
}

static struct stream streams[2];

int main(int argc, char **argv) {
    sigset_t child_signals;
    struct signalfd_siginfo info;
    int signal_fd, children_left = 1;
    if (argc != 5 && argc != 6)
        return 64;
    flush_partial = argc == 6 && strcmp(argv[5], "partial") == 0;
    log_path = argv[2];
    max_bytes = atoll(argv[3]);
    max_files = atoi(argv[4]) > 0 ? atoi(argv[4]) : 1;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigemptyset(&child_signals);
    sigaddset(&child_signals, SIGCHLD);
    sigaddset(&child_signals, SIGUSR1);
    sigprocmask(SIG_BLOCK, &child_signals, NULL);
    signal_fd = signalfd(-1, &child_signals, SFD_CLOEXEC | SFD_NONBLOCK);
    streams[0].name = "stdout";
    streams[0].fd = 3;
    streams[1].name = "stderr";
    streams[1].fd = 4;
    for (int index = 0; index < 2; index++)
        fcntl(streams[index].fd, F_SETFL, fcntl(streams[index].fd, F_GETFL) | O_NONBLOCK);
    if (log_path[0] != '\0')
        open_log();
    while (streams[0].fd >= 0 || streams[1].fd >= 0 || children_left) {
        struct pollfd polled[3] = {{signal_fd, POLLIN, 0}, {streams[0].fd, POLLIN, 0}, {streams[1].fd, POLLIN, 0}};
        /* Reap first: a child may have exited before the signal mask was set. */
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid < 0) {
                children_left = 0;
                break;
            }
            if (pid == 0)
                break;
            /* What the container wrote before it died is in the log before its exit is recorded. */
            for (int index = 0; index < 2; index++)
                for (int chunk = 0; chunk < DRAIN_CHUNKS_AT_EXIT && read_once(&streams[index]); chunk++) {
                }
            record_exit(argv[1], pid, status);
        }
        if (streams[0].fd < 0 && streams[1].fd < 0 && !children_left)
            break;
        if (poll(polled, 3, -1) < 0)
            continue;
        if (polled[0].revents)
            while (read(signal_fd, &info, sizeof info) > 0) {
                if (info.ssi_signo == SIGUSR1)
                    close(STDIN_HOLDER_FD); /* EBADF when there is none: nothing to do */
            }
        for (int index = 0; index < 2; index++)
            if (polled[index + 1].revents)
                read_once(&streams[index]);
    }
    return 0;
}
