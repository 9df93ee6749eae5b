// Linux-only syscalls that Glibc's Swift module does not export, behind thin
// `c_`-prefixed wrappers. _GNU_SOURCE comes from Package.swift's cSettings:
// defining it here would change the headers the Glibc module already built.
#ifndef CLINUX_H
#define CLINUX_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/// epoll_create1(2).
int c_epoll_create1(int flags);
/// epoll_ctl(2) with the event mask and a 64-bit token.
int c_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
/// epoll_wait(2) into parallel arrays of masks and tokens (Swift need not know the packed struct layout).
int c_epoll_wait(int epfd, uint32_t *events, uint64_t *tokens, int maxevents, int timeout_ms);

/// signalfd(2) over the given signal numbers (count of them), after blocking them with sigprocmask.
int c_signalfd_for(const int *signals, int count, int flags);
/// Reads one signalfd_siginfo; returns the signal number, 0 for none (EAGAIN), -1 on error. `value_out` gets
/// the integer a sigqueue(3) sender attached (0 for an ordinary kill).
int c_signalfd_read(int fd, int32_t *pid_out, int32_t *value_out);
/// SIGRTMIN as this libc defines it (a function in glibc, not a constant).
int c_sigrtmin(void);
/// sigqueue(3) with an integer payload; 0 or errno.
int c_sigqueue(int pid, int sig, int value);

/// pipe2(2).
int c_pipe2(int fds[2], int flags);
/// accept4(2), discarding the peer address; the peer's IPv4/IPv6 text goes to `peer` (may be truncated).
int c_accept4(int fd, char *peer, int peer_len, int flags);

/// Decodes a wait(2) status: returns 0 and sets *code when the child exited,
/// 1 and sets *code to the signal when it was killed, -1 otherwise (stopped or continued).
int c_wait_status(int status, int *code);

/// Spawns `path` with posix_spawn: `fd_map` holds pairs (source, target) that are dup2'ed in order; the child
/// gets an empty signal mask and default dispositions. `flags`: bit 0 its own process group (pgroup 0), bit 1
/// look `path` up in PATH (posix_spawnp), bit 2 the child gets SIGKILL when this process dies
/// (PR_SET_PDEATHSIG; done with fork and exec in C, for single-threaded callers only). `cwd` (may be NULL) is
/// its working directory.
/// Returns 0 and the pid, or the errno-style code posix_spawn* returned.
int c_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
            const int *fd_map, int fd_map_count, int flags, const char *cwd);

/// execvpe(3): replaces the process image; returns -1 with errno on failure.
int c_execvpe(const char *file, char *const argv[], char *const envp[]);

/// pidfd_open(2): a descriptor that polls readable once the process has exited; -1 with errno on failure.
int c_pidfd_open(pid_t pid);

/// prctl(PR_GET_CHILD_SUBREAPER): 1 when this process is a child subreaper, 0 when not, -1 on error.
int c_is_child_subreaper(void);

/// prctl(PR_SET_CHILD_SUBREAPER, 1).
int c_set_child_subreaper(void);

/// The local port a socket is bound to (getsockname), or -1.
int c_local_port(int fd);

/// getaddrinfo(3) of `host` (TCP): writes up to `max` numeric addresses, 64 bytes each, into `out`.
/// Returns the count, or -errno (EAI errors map to ENOENT / EAGAIN).
int c_resolve(const char *host, char *out, int max);

/// Sends one datagram to a Unix socket path ("@name" = abstract namespace). Returns 0 or an errno.
int c_send_unix_datagram(const char *path, const void *bytes, size_t length);

/// flock(2) (Swift sees only the struct of the same name).
int c_flock(int fd, int operation);

/// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process when its parent dies.
int c_set_parent_death_signal(int signal);

/// Marks every descriptor from `first` up close-on-exec (close_range(2), or a loop on old kernels).
int c_cloexec_from(int first);

/// malloc_trim(3): returns free heap pages to the system (malloc.h is not in the Glibc module).
int c_malloc_trim(void);

/// Sets RLIMIT_AS / RLIMIT_CPU (value 0 means leave it alone).
int c_set_limits(uint64_t address_space_bytes, uint64_t cpu_seconds);

#endif
