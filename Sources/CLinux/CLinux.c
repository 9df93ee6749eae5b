#include "CLinux.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

int c_epoll_create1(int flags) { return epoll_create1(flags); }

int c_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

int c_epoll_wait(int epfd, uint32_t *events, uint64_t *tokens, int maxevents, int timeout_ms) {
    struct epoll_event buffer[256];
    if (maxevents > 256) maxevents = 256;
    int n = epoll_wait(epfd, buffer, maxevents, timeout_ms);
    for (int i = 0; i < n; i++) {
        events[i] = buffer[i].events;
        tokens[i] = buffer[i].data.u64;
    }
    return n;
}

int c_signalfd_for(const int *signals, int count, int flags) {
    sigset_t mask;
    sigemptyset(&mask);
    for (int i = 0; i < count; i++) sigaddset(&mask, signals[i]);
    // Blocked signals stay pending for the signalfd instead of running a handler.
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) return -1;
    return signalfd(-1, &mask, flags);
}

int c_signalfd_read(int fd, int32_t *pid_out, int32_t *value_out) {
    struct signalfd_siginfo info;
    for (;;) {
        ssize_t n = read(fd, &info, sizeof info);
        if (n == (ssize_t)sizeof info) {
            if (pid_out) *pid_out = (int32_t)info.ssi_pid;
            if (value_out) *value_out = info.ssi_int;
            return (int)info.ssi_signo;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
}

int c_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int c_sigrtmin(void) { return SIGRTMIN; }

int c_sigqueue(int pid, int sig, int value) {
    union sigval payload;
    payload.sival_int = value;
    return sigqueue((pid_t)pid, sig, payload) == 0 ? 0 : errno;
}

int c_accept4(int fd, char *peer, int peer_len, int flags) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int client = accept4(fd, (struct sockaddr *)&addr, &len, flags);
    if (client >= 0 && peer && peer_len > 0) {
        peer[0] = 0;
        char host[INET6_ADDRSTRLEN] = {0};
        int port = 0;
        if (addr.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&addr;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (addr.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
        snprintf(peer, (size_t)peer_len, "%s:%d", host, port);
    }
    return client;
}

int c_wait_status(int status, int *code) {
    if (WIFEXITED(status)) { *code = WEXITSTATUS(status); return 0; }
    if (WIFSIGNALED(status)) { *code = WTERMSIG(status); return 1; }
    return -1;
}

#include <sys/prctl.h>

// fork and exec with PR_SET_PDEATHSIG set in the child before exec, which posix_spawn cannot do. Only
// async-signal-safe calls run in the child; exec errors come back through a close-on-exec pipe.
static int spawn_killed_with_parent(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                                    const int *fd_map, int fd_map_count, int new_process_group, int search_path,
                                    const char *cwd) {
    int error_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) return errno;
    sigset_t all, previous, empty;
    sigfillset(&all);
    sigemptyset(&empty);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        int error = 0;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) { error = errno; goto failed; }
        if (getppid() != parent) _exit(127);  // the parent died before the death signal was armed
        if (new_process_group && setpgid(0, 0) != 0) { error = errno; goto failed; }
        for (int i = 0; i < fd_map_count; i++) {
            int source = fd_map[2 * i], target = fd_map[2 * i + 1];
            if (source == target) {
                int fd_flags = fcntl(target, F_GETFD);
                if (fd_flags < 0 || fcntl(target, F_SETFD, fd_flags & ~FD_CLOEXEC) != 0) { error = errno; goto failed; }
            } else if (dup2(source, target) < 0) {
                error = errno;
                goto failed;
            }
        }
        for (int signal_number = 1; signal_number < NSIG; signal_number++) {
            if (signal_number != SIGKILL && signal_number != SIGSTOP) signal(signal_number, SIG_DFL);
        }
        sigprocmask(SIG_SETMASK, &empty, NULL);
        if (cwd != NULL && chdir(cwd) != 0) { error = errno; goto failed; }
        if (search_path) execvpe(path, argv, envp); else execve(path, argv, envp);
        error = errno;
    failed:
        (void)!write(error_pipe[1], &error, sizeof error);
        _exit(127);
    }
    int fork_error = child < 0 ? errno : 0;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(error_pipe[1]);
    if (fork_error != 0) {
        close(error_pipe[0]);
        return fork_error;
    }
    int exec_error = 0;
    ssize_t got;
    do {
        got = read(error_pipe[0], &exec_error, sizeof exec_error);
    } while (got < 0 && errno == EINTR);
    close(error_pipe[0]);
    if (got == (ssize_t)sizeof exec_error) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return exec_error != 0 ? exec_error : ENOEXEC;
    }
    *pid = child;
    return 0;
}

int c_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
            const int *fd_map, int fd_map_count, int flags_in, const char *cwd) {
    int new_process_group = flags_in & 1;
    int search_path = flags_in & 2;
    if (flags_in & 4) {
        return spawn_killed_with_parent(pid, path, argv, envp, fd_map, fd_map_count, new_process_group,
                                        search_path, cwd);
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&actions); return rc; }

    // dup2 clears close-on-exec on the target, so only the mapped fds survive exec.
    for (int i = 0; i < fd_map_count && rc == 0; i++) {
        int source = fd_map[2 * i], target = fd_map[2 * i + 1];
        // glibc >= 2.29 clears FD_CLOEXEC even when source == target (BZ #23640), as POSIX now requires.
        rc = posix_spawn_file_actions_adddup2(&actions, source, target);
    }

    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (new_process_group) flags |= POSIX_SPAWN_SETPGROUP;
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0 && new_process_group) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0) rc = posix_spawnattr_setflags(&attr, flags);
    if (rc == 0 && cwd != NULL) rc = posix_spawn_file_actions_addchdir_np(&actions, cwd);
    if (rc == 0) {
        rc = search_path ? posix_spawnp(pid, path, &actions, &attr, argv, envp)
                         : posix_spawn(pid, path, &actions, &attr, argv, envp);
    }

    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

int c_set_limits(uint64_t address_space_bytes, uint64_t cpu_seconds) {
    struct rlimit limit;
    if (address_space_bytes > 0) {
        limit.rlim_cur = limit.rlim_max = address_space_bytes;
        if (setrlimit(RLIMIT_AS, &limit) != 0) return -1;
    }
    if (cpu_seconds > 0) {
        limit.rlim_cur = cpu_seconds;
        limit.rlim_max = cpu_seconds + 1;
        if (setrlimit(RLIMIT_CPU, &limit) != 0) return -1;
    }
    return 0;
}
int c_flock(int fd, int operation) { return flock(fd, operation); }

int c_execvpe(const char *file, char *const argv[], char *const envp[]) { return execvpe(file, argv, envp); }

int c_local_port(int fd) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) return -1;
    if (addr.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&addr)->sin_port);
    if (addr.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return -1;
}

#include <netdb.h>
int c_resolve(const char *host, char *out, int max) {
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &found);
    if (rc != 0) return rc == EAI_AGAIN ? -EAGAIN : (rc == EAI_SYSTEM ? -errno : -ENOENT);
    int count = 0;
    for (struct addrinfo *entry = found; entry != NULL && count < max; entry = entry->ai_next) {
        char *slot = out + 64 * count;
        const void *raw = NULL;
        if (entry->ai_family == AF_INET) raw = &((struct sockaddr_in *)entry->ai_addr)->sin_addr;
        else if (entry->ai_family == AF_INET6) raw = &((struct sockaddr_in6 *)entry->ai_addr)->sin6_addr;
        if (raw != NULL && inet_ntop(entry->ai_family, raw, slot, 64) != NULL) count++;
    }
    freeaddrinfo(found);
    return count;
}

#include <sys/un.h>
int c_send_unix_datagram(const char *path, const void *bytes, size_t length) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t path_length = strlen(path);
    if (path_length == 0 || path_length >= sizeof addr.sun_path) return EINVAL;
    memcpy(addr.sun_path, path, path_length);
    if (path[0] == '@') addr.sun_path[0] = 0;  // abstract namespace
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    socklen_t size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length);
    ssize_t sent;
    do {
        sent = sendto(fd, bytes, length, MSG_NOSIGNAL, (struct sockaddr *)&addr, size);
    } while (sent < 0 && errno == EINTR);
    int error = sent < 0 ? errno : 0;
    close(fd);
    return error;
}

int c_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0); }
int c_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0, 0, 0); }
int c_is_child_subreaper(void) {
    int value = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, (unsigned long)&value, 0, 0, 0) != 0) return -1;
    return value != 0;
}

#include <sys/syscall.h>
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
int c_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    errno = ENOSYS;
    return -1;
#endif
}

int c_cloexec_from(int first) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
#endif
    // Older kernels: walk the possible descriptors.
    long maximum = sysconf(_SC_OPEN_MAX);
    if (maximum < 0 || maximum > 1 << 20) maximum = 1 << 20;
    for (int fd = first; fd < maximum; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
}

#include <malloc.h>
int c_malloc_trim(void) { return malloc_trim(0); }
