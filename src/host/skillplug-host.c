/*
 * skillplug-host: loads one ABI v1 plugin library and serves calls over fd 3.
 * Built by skillplug on first use into a per-user cache; never run by hand.
 *
 * Usage: skillplug-host LIBRARY MAX_OUTPUT_BYTES MAX_MEMORY_MB PARENT_PID OPTIONS
 *   OPTIONS: "-" or a comma-separated list of: "seccomp" (install the syscall filter before dlopen;
 *   sandboxed hosts), "no-unix-sockets" (the filter also refuses socket(AF_UNIX)), "lane" (create the
 *   shared lane, see fd 6 below), "fixed-spin" (idle threads poll SPIN_NS before sleeping instead of
 *   the parent's lease in SPIN_MICROS; the benchmark's ablation), "keep-heap-mb=N" (the heap keeps up to
 *   N MiB that big calls freed, see keep_freed_heap), "trim-idle-ms=N" (and gives it back once no call
 *   ran for N ms, default 1000). An unknown word, or a value out of range, is a usage error.
 * Before dlopen the host closes every fd above 6 (nothing skillplug's parent inherited reaches the
 * plugin) and marks fds 3-6 close-on-exec. It is a child subreaper: whenever it stops (input ended,
 * SIGTERM, parent death, a fatal signal) it first SIGKILLs every process the plugin left behind.
 *
 * Frames on fd 3 (little-endian): u32 kind, u32 id, u64 payload length, payload.
 *   parent -> host: kind 1 EXECUTE, payload = context JSON (no NUL);
 *                   kind 2 CONFIGURE, payload = u32 worker threads (>1 only for thread-safe plugins);
 *                   kind 3 CANCEL (id = the call): drop it if no worker has taken it yet;
 *                   kind 4 EXECUTE_ALONE: an EXECUTE sent with no other call in flight, which a
 *                   pooled host runs on the reader itself (no hand-over to a worker).
 *                   kind 5 SHARED_WAKE: a call was posted in the shared region while the host slept.
 * While the reader runs a call, the standby thread reads fd 3 in its place, woken by a byte on fd 5 the
 * parent writes after further frames (while an EXECUTE_ALONE or shared call is pending; or, once it
 * watches the lane, by READER_AWAY) (docs/host-protocol.md, rule 7).
 * fd 6, with "lane", is a memfd of SHARED_BYTES the host creates with its size sealed (so nobody,
 * the plugin included, can shrink it under the parent's mapping: no SIGBUS in the parent), maps and
 * keeps open for the parent to open through /proc (the shared lane; the host sets HOST_MAPPED once it
 * has mapped it, before READY, and the parent uses it only then): the parent posts
 * a call alone there (REQ_LEN, the context at SHARED_REQ, REQ_AFTER = the bytes it had written on
 * fd 3 by then, then REQ_SEQ = its id) instead of on fd 3; the reader, which looks at it before each
 * frame (so does the standby, which only queues it), takes it once it has handled REQ_AFTER bytes of
 * frames, and answers there (RESP_LEN, a returned string at SHARED_RESP, then RESP_SEQ = the id).
 * Whoever is about to sleep clears its *_POLLING word and looks again; the other side, seeing it
 * clear, sends a wake: SHARED_WAKE on fd 3, or SHARED_RESULT to the parent.
 * SPIN_MICROS (parent-written, read before every spin): how long an idle thread may poll before it
 * sleeps; 0 (no lease from the parent's process-wide spin budget) means sleep at once.
 * BATCH (parent-written): 1 while two or more of the parent's hosts are busy; each host thread then
 * makes itself SCHED_BATCH (and SCHED_OTHER again at 0) the next time it handles a frame or runs a call.
 * PARENT_WATCHES (parent-written, 1 once it maps the lane): it reads READER_AWAY (host-written: trips
 * of the reader away << 2 | 0 home, 1 running a quick call, 2 a slow one) after the frames it writes,
 * and wakes the standby then: at once for a slow call, for a quick one if the same trip still lasts later.
 *   host -> parent: kind 1 READY (id 0): u32 abi version, u32 has_free, then a returned string
 *                   (only when the version is 1); kind 2 LOAD_ERROR: u32 reason, text;
 *                   kind 3 RESULT: a returned string;
 *                   kind 4 CANCEL_ACK (id = the call): u32 0 = dropped, never ran; 1 = already running or done;
 *                   kind 5 SHARED_RESULT (id = the call): its result is in the shared region.
 *   A returned string is u32 tag then: tag 0 bytes, tag 1 NULL (nothing), tag 2 too large (u64 length),
 *   tag 3 not freeable (u32 1 = the library's read-only image, a string literal; 2 = its writable image, a
 *   static buffer): the plugin exports vtcode_plugin_free_string, so the host refuses it and frees nothing.
 * Fatal signals write "signal=N peak_kb=K\n" to fd 4 before the host dies.
 * Parent death arrives as SIGTERM (PR_SET_PDEATHSIG), so the host can stop the plugin's processes too.
 * The plugin's stdout is redirected to stderr so nothing it prints can reach the channel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#ifdef __linux__
#include <link.h>
#include <malloc.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#endif
/* ASan and TSan reserve terabytes of shadow address space, so their builds cannot run under RLIMIT_AS. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define CHANNEL_FD 3
#define NOTES_FD 4
#define WAKE_FD 5
#define SHARED_FD 6
/* The shared lane's layout, mirrored in protocol.ts: 32-bit words, then the two data areas. */
enum { W_REQ_SEQ, W_REQ_LEN, W_RESP_SEQ, W_RESP_LEN, W_HOST_POLLING, W_PARENT_POLLING, W_REQ_AFTER, W_HOST_MAPPED, W_SPIN_MICROS, W_READER_AWAY, W_PARENT_WATCHES, W_BATCH };
#define SHARED_REQ 4096u
#define SHARED_AREA_BYTES (64u * 1024u)
#define SHARED_RESP (SHARED_REQ + SHARED_AREA_BYTES)
#define SHARED_BYTES (SHARED_RESP + SHARED_AREA_BYTES)
#define PLUGIN_ABI_VERSION 1u
#define MAX_METADATA_BYTES (1024u * 1024u)
#define WORKER_STACK_BYTES (8u * 1024u * 1024u)

enum { REQ_EXECUTE = 1, REQ_CONFIGURE = 2, REQ_CANCEL = 3, REQ_EXECUTE_ALONE = 4, REQ_SHARED_WAKE = 5 };
enum { MSG_READY = 1, MSG_LOAD_ERROR = 2, MSG_RESULT = 3, MSG_CANCEL_ACK = 4, MSG_SHARED_RESULT = 5 };
enum { RET_BYTES = 0, RET_NULL = 1, RET_TOO_LARGE = 2, RET_NOT_FREEABLE = 3 };
enum { LOADERR_DLOPEN = 1, LOADERR_SYMBOL = 2, LOADERR_USAGE = 3, LOADERR_SANDBOX = 4 };

typedef uint32_t (*version_fn)(void);
typedef const char *(*metadata_fn)(void);
typedef const char *(*execute_fn)(const char *);
typedef void (*free_fn)(const char *);

static execute_fn plugin_execute;
static free_fn plugin_free;
static uint64_t max_output;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* ---------- hardening against the plugin (all set up before dlopen) ---------- */

/* Async-signal-safe: SIGKILLs every child listed in /proc/self/task/<tid>/children; returns how many. */
static int kill_children(void) {
#ifdef __linux__
  int tasks = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tasks < 0) return 0;
  int killed = 0;
  char dents[4096];
  long n;
  while ((n = syscall(SYS_getdents64, tasks, dents, sizeof dents)) > 0) {
    for (long at = 0; at < n;) {
      struct dirent64_raw {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = (void *)(dents + at);
      at += d->reclen;
      if (d->name[0] < '0' || d->name[0] > '9') continue;
      char path[64] = "/proc/self/task/";
      size_t len = strlen(path);
      for (size_t i = 0; d->name[i] && len < 40; i++) path[len++] = d->name[i];
      memcpy(path + len, "/children", 10);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      char list[4096];
      ssize_t got = read(fd, list, sizeof list - 1);
      close(fd);
      long pid = 0;
      for (ssize_t i = 0; i < (got > 0 ? got : 0); i++) {
        if (list[i] >= '0' && list[i] <= '9') {
          pid = pid * 10 + (list[i] - '0');
        } else if (pid > 0) {
          kill((pid_t)pid, SIGKILL);
          killed++;
          pid = 0;
        }
      }
      if (pid > 0) {
        kill((pid_t)pid, SIGKILL);
        killed++;
      }
    }
  }
  close(tasks);
  return killed;
#else
  return 0;
#endif
}

/* Children killed per stop at most: a plugin thread forking as fast as this kills cannot keep it looping. */
#define MAX_KILL_ROUNDS 4096

/*
 * Async-signal-safe: kills the plugin's whole process tree. As a subreaper the host inherits every
 * orphan of that tree (setsid daemons included), and the kernel reparents a dying child's children
 * before the host can reap it, so killing children and reaping until none is left reaches them all.
 */
static void kill_descendants(void) {
  for (int round = 0; round < MAX_KILL_ROUNDS; round++) {
    int killed = kill_children();
#ifdef __WALL
    pid_t reaped = waitpid(-1, NULL, __WALL | (killed ? 0 : WNOHANG));
#else
    pid_t reaped = waitpid(-1, NULL, killed ? 0 : WNOHANG);
#endif
    if (reaped < 0 && errno == EINTR) continue;
    if (reaped <= 0) return;
  }
}

/* Every way the host stops ends here, so nothing the plugin started outlives it. */
static void host_exit(int code) {
  kill_descendants();
  _exit(code);
}

static void on_stop_signal(int sig) {
  (void)sig;
  host_exit(0);
}

/* Closes every fd above SHARED_FD: whatever skillplug's caller leaked into it must not reach the plugin. */
static void close_inherited_fds(void) {
#ifdef __linux__
#ifdef SYS_close_range
  if (syscall(SYS_close_range, SHARED_FD + 1, ~0U, 0) == 0) return;
#endif
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    /* Collected first, closed after: closing while listing would shift getdents' view. */
    int fds[1024];
    int count = 0, more = 1;
    while (more) {
      more = 0;
      count = 0;
      lseek(dir, 0, SEEK_SET);
      char dents[4096];
      long n;
      while ((n = syscall(SYS_getdents64, dir, dents, sizeof dents)) > 0) {
        for (long at = 0; at < n;) {
          unsigned short reclen;
          memcpy(&reclen, dents + at + 16, sizeof reclen);
          const char *name = dents + at + 19;
          at += reclen;
          int fd = atoi(name);
          if ((name[0] < '0' || name[0] > '9') || fd <= SHARED_FD || fd == dir) continue;
          if (count < (int)(sizeof fds / sizeof fds[0])) fds[count++] = fd;
          else more = 1;
        }
      }
      for (int i = 0; i < count; i++) close(fds[i]);
    }
    close(dir);
    return;
  }
#endif
  /* No /proc: every fd number the limit allows. */
  struct rlimit rl;
  long top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 65536;
  for (long fd = SHARED_FD + 1; fd < top; fd++) close((int)fd);
}

/* The host's own channels: nothing the plugin execs inherits them. */
static void channels_cloexec(void) {
  for (int fd = CHANNEL_FD; fd <= SHARED_FD; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

#ifdef __linux__
#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#endif
#endif

#ifdef FILTER_ARCH
/* Syscalls a plugin never needs and an attacker wants: they fail with EPERM. */
static const int denied_syscalls[] = {
  __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_ptrace, __NR_process_vm_readv,
  __NR_process_vm_writev, __NR_kexec_load, __NR_bpf, __NR_perf_event_open, __NR_keyctl, __NR_add_key,
  __NR_request_key, __NR_userfaultfd, __NR_unshare, __NR_setns, __NR_init_module, __NR_finit_module,
  __NR_delete_module, __NR_open_by_handle_at, __NR_swapon, __NR_swapoff, __NR_reboot, __NR_acct,
#ifdef __NR_kexec_file_load
  __NR_kexec_file_load,
#endif
#ifdef __NR_iopl
  __NR_iopl, __NR_ioperm,
#endif
#ifdef __NR_fsopen
  /* The new mount API mounts too. */
  __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick, __NR_move_mount, __NR_open_tree,
#endif
#ifdef __NR_mount_setattr
  __NR_mount_setattr,
#endif
#ifdef __NR_pidfd_getfd
  /* Takes another process's fds. */
  __NR_pidfd_getfd,
#endif
};

/* Any CLONE_NEW* flag: namespaces are how a plugin would shed the sandbox's view. */
#define CLONE_NEW_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)
#define X32_SYSCALL_BIT 0x40000000u
#define DENY(err) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err))
#define ARG_LOW(n) offsetof(struct seccomp_data, args[n])
#endif

/* Installs the syscall filter for a sandboxed plugin; returns NULL or why it could not. */
static const char *install_filter(int deny_unix_sockets) {
#ifdef FILTER_ARCH
  struct sock_filter prog[128];
  unsigned n = 0;
  /* Another architecture's syscall numbers (int 0x80, x32) would slip past the list: kill instead. */
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, 0, 1);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
  for (size_t i = 0; i < sizeof denied_syscalls / sizeof denied_syscalls[0]; i++) {
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)denied_syscalls[i], 0, 1);
    prog[n++] = (struct sock_filter)DENY(EPERM);
  }
#ifdef __NR_clone3
  /* clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone. */
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
  prog[n++] = (struct sock_filter)DENY(ENOSYS);
#endif
  /* clone's flags are its first argument on x86_64 and aarch64 (the low 32 bits hold every CLONE_NEW*). */
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3);
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(0));
  prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEW_FLAGS, 0, 1 + (deny_unix_sockets ? 4 : 0));
  prog[n++] = (struct sock_filter)DENY(EPERM);
  if (deny_unix_sockets) {
    /* socketpair stays: it reaches nothing outside the host. */
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(0));
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1);
    prog[n++] = (struct sock_filter)DENY(EPERM);
  }
  prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog fprog = {(unsigned short)n, prog};
  /* Without it an unprivileged process may not install a filter, and setuid programs could be confused by one. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return "prctl(PR_SET_NO_NEW_PRIVS) failed";
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) != 0) return "the kernel refused the seccomp filter";
  return NULL;
#else
  (void)deny_unix_sockets;
  return "no seccomp filter exists for this platform";
#endif
}

/* Writes every iovec in as few syscalls as the kernel allows. */
static int writev_all(int fd, struct iovec *iov, int count) {
  while (count > 0) {
    ssize_t n = writev(fd, iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    while (count > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      count--;
    }
    if (count > 0) {
      iov->iov_base = (char *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int pool_saturated(void);

/* With "fixed-spin" (the parent's ablation switch): how long to poll for the next request before sleeping. */
#define SPIN_NS 150000L
/* Longest spin a lease may ask for: a bad word costs a bounded spin, never a hang. */
#define MAX_SPIN_NS 10000000L

static int fixed_spin;
static int32_t *shared_word(int word);
static unsigned char *shared;

/*
 * How long an idle thread may poll before it sleeps: the lease the parent wrote to SPIN_MICROS (0
 * without a lane or a lease), so every host of a process spins within the parent's one budget.
 */
static long spin_window_ns(void) {
  if (fixed_spin) return SPIN_NS;
  if (!shared) return 0;
  long micros = __atomic_load_n(shared_word(W_SPIN_MICROS), __ATOMIC_RELAXED);
  if (micros <= 0) return 0;
  return micros * 1000L > MAX_SPIN_NS ? MAX_SPIN_NS : micros * 1000L;
}


static long elapsed_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) * 1000000000L + (now.tv_nsec - start->tv_nsec);
}

/* Whoever holds it reads fd 3: the main thread, except while it runs a lone call (then the standby may). */
static pthread_mutex_t read_lock = PTHREAD_MUTEX_INITIALIZER;

/* The reader's state between frames, guarded by read_lock: only the thread holding it reads or writes any of it. */
static struct {
  /* The bytes read but not yet handed out are buffer[start, end). */
  size_t start, end;
  /* Set when await_request() has just polled fd 3 in vain: read_exact() then sleeps at once. */
  int polled_already;
  /* Bytes of frames handled so far, modulo 2^32: compared with REQ_AFTER to order a post among frames. */
  uint32_t consumed;
  /* The id of the last call taken from the shared lane. */
  uint32_t shared_seen;
  /* Set by CONFIGURE once workers run: calls then go to the pool (or to the reader, when lone). */
  int use_pool;
  /* The standby thread is up: only then may the reader run a lone call itself. */
  int standby_running;
  /* Read ahead: one read() usually brings a header and its payload (last, so the words above share a cache line). */
  unsigned char buffer[64 * 1024];
} reader;

/*
 * Big payloads: glibc gives a freed 16 MiB back to the kernel at once, so the next call faults every
 * page in again (two buffers a call, ~8k faults, dear in a VM: 3/4 of such a call's host CPU). With
 * "keep-heap-mb=N" (the parent caps N by the plugin's memory limits, which count kept memory) the heap
 * keeps up to N MiB of freed memory instead, and gives it back once no call has run for
 * "trim-idle-ms" (default 1000).
 */
#define HEAP_KEEP_LEAST (1024ull * 1024)
#define MMAP_THRESHOLD_MOST (32ull * 1024 * 1024)
#define BIG_PAYLOAD_BYTES (1024u * 1024u)
static uint64_t heap_keep_bytes;
static long trim_idle_ms = 1000;
/* CLOCK_MONOTONIC ms of the last big payload, or of a call that ended after one; 0: nothing kept. Any thread. */
static long heap_kept_since;

static long monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  /* Never 0, which means nothing kept. */
  return now.tv_sec * 1000L + now.tv_nsec / 1000000L + 1;
}

static void keep_freed_heap(void) {
  if (heap_keep_bytes < HEAP_KEEP_LEAST) {
    heap_keep_bytes = 0;
    return;
  }
#if defined(__GLIBC__)
  /* Allocations up to half of it (at most the largest threshold glibc accepts) come from the heap, not a mapping each. */
  uint64_t threshold = heap_keep_bytes / 2 > MMAP_THRESHOLD_MOST ? MMAP_THRESHOLD_MOST : heap_keep_bytes / 2;
  mallopt(M_MMAP_THRESHOLD, (int)threshold);
  mallopt(M_TRIM_THRESHOLD, (int)(heap_keep_bytes > INT32_MAX ? INT32_MAX : heap_keep_bytes));
#else
  heap_keep_bytes = 0;
#endif
}

/* A request or result of `bytes` is in the heap: freed, the heap keeps it. */
static void note_payload(size_t bytes) {
  if (heap_keep_bytes && bytes >= BIG_PAYLOAD_BYTES) __atomic_store_n(&heap_kept_since, monotonic_ms(), __ATOMIC_RELEASE);
}

/* A call ended (its request and result freed): with memory kept, the idle time counts from now. */
static void note_call_end(void) {
  if (__atomic_load_n(&heap_kept_since, __ATOMIC_ACQUIRE)) __atomic_store_n(&heap_kept_since, monotonic_ms(), __ATOMIC_RELEASE);
}

static int jobs_active(void);

/*
 * How long the reader may sleep in poll() before it looks at the kept heap again (-1: until input);
 * gives the heap back first once no call has run for trim_idle_ms. While calls run on workers it
 * looks every trim_idle_ms, as a worker may be about to free a big result.
 */
static int idle_heap_wait_ms(void) {
  if (!heap_keep_bytes) return -1;
  if (jobs_active()) return (int)trim_idle_ms;
  long since = __atomic_load_n(&heap_kept_since, __ATOMIC_ACQUIRE);
  if (!since) return -1;
  long left = since + trim_idle_ms - monotonic_ms();
  if (left > 0) return left > INT32_MAX ? INT32_MAX : (int)left;
  /* A call that ended meanwhile moved the mark: look again later instead. */
  if (!__atomic_compare_exchange_n(&heap_kept_since, &since, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return (int)trim_idle_ms;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return -1;
}

static int read_exact(void *dst, size_t len) {
  unsigned char *out = dst;
  size_t have = reader.end - reader.start;
  if (have >= len) {
    memcpy(out, reader.buffer + reader.start, len);
    reader.start += len;
    return 0;
  }
  memcpy(out, reader.buffer + reader.start, have);
  out += have;
  len -= have;
  reader.start = reader.end = 0;
  if (len >= sizeof reader.buffer) return read_all(CHANNEL_FD, out, len);
  /* A caller in a loop sends its next request within microseconds: polling for it with non-blocking
     reads saves a sleep/wake cycle and a syscall per call. Gives up after the lease, so an idle host
     costs no CPU, and never polls while the workers are saturated: they need the cores more. */
  long window = spin_window_ns();
  int polling = !reader.polled_already && !pool_saturated() && window > 0;
  reader.polled_already = 0;
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (reader.end < len) {
    /* Sleep in poll(), not read(): a unix socket wakes a reader sleeping in read() whenever the peer
       reads what this end wrote (write space), one spurious wake-up per answer; poll() waits for input only. */
    if (!polling) {
      struct pollfd pfd = {.fd = CHANNEL_FD, .events = POLLIN, .revents = 0};
      /* A timeout (or a signal) only means: look at the kept heap, then sleep again. */
      int ready = poll(&pfd, 1, idle_heap_wait_ms());
      if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
    }
    ssize_t n = polling ? recv(CHANNEL_FD, reader.buffer + reader.end, sizeof reader.buffer - reader.end, MSG_DONTWAIT)
                        : read(CHANNEL_FD, reader.buffer + reader.end, sizeof reader.buffer - reader.end);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && polling && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTSOCK)) {
      if (errno == ENOTSOCK || elapsed_since(&start) > window) polling = 0;
      else sched_yield();
      continue;
    }
    if (n <= 0) return -1;
    reader.end += (size_t)n;
  }
  memcpy(out, reader.buffer, len);
  reader.start = len;
  return 0;
}

/* The shared lane (see the top) is `shared`: NULL without "lane". */

static int32_t *shared_word(int word) {
  return (int32_t *)(void *)shared + word;
}

/* A call is posted, and every frame written before it has been handled. */
static int shared_posted(void) {
  if (!shared || (uint32_t)__atomic_load_n(shared_word(W_REQ_SEQ), __ATOMIC_SEQ_CST) == reader.shared_seen) return 0;
  uint32_t after = (uint32_t)__atomic_load_n(shared_word(W_REQ_AFTER), __ATOMIC_RELAXED);
  return (int32_t)(reader.consumed - after) >= 0;
}

/* Creates, seals and maps the shared lane at fd 6; NULL when it cannot (calls then keep to fd 3). */
static unsigned char *create_lane(void) {
#ifdef __linux__
  int fd = memfd_create("skillplug-lane", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return NULL;
  void *p = MAP_FAILED;
  /* Sealed size: nobody (the plugin through /proc included) can shrink it under the parent's mapping. */
  if (ftruncate(fd, SHARED_BYTES) == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0) {
    p = mmap(NULL, SHARED_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (p != MAP_FAILED && fd != SHARED_FD && dup3(fd, SHARED_FD, O_CLOEXEC) < 0) {
    munmap(p, SHARED_BYTES);
    p = MAP_FAILED;
  }
  if (fd != SHARED_FD) close(fd);
  if (p == MAP_FAILED) return NULL;
  /* The parent posts nothing until it sees this: a host that could not map the lane keeps to fd 3. */
  __atomic_store_n((int32_t *)p + W_HOST_MAPPED, 1, __ATOMIC_SEQ_CST);
  return p;
#else
  return NULL;
#endif
}

/*
 * Between frames, on the main thread: waits for the next request. Returns 1 when a call is posted in
 * the shared region, 0 when fd 3 has bytes to read. Polls both for the lease (unless the workers are
 * saturated), then sleeps on fd 3, where the parent sends SHARED_WAKE if it posts meanwhile.
 */
static int await_request(void) {
  if (shared_posted()) return 1;
  if (reader.end > reader.start) return 0;
  reader.start = reader.end = 0;
  __atomic_store_n(shared_word(W_HOST_POLLING), 1, __ATOMIC_SEQ_CST);
  long window = spin_window_ns();
  int polling = !pool_saturated() && window > 0;
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (polling) {
    /* The post first: frames written after it must wait for it (those written before, it waits for). */
    if (shared_posted()) return 1;
    ssize_t n = recv(CHANNEL_FD, reader.buffer, sizeof reader.buffer, MSG_DONTWAIT);
    if (n > 0) {
      reader.end = (size_t)n;
      /* Look again, the bytes kept: a post made since the look above goes first if they were written after it (REQ_AFTER). */
      return shared_posted();
    }
    if (n == 0) host_exit(0); /* Input ended: shut down. */
    if (errno == EINTR) continue;
    if ((errno != EAGAIN && errno != EWOULDBLOCK) || elapsed_since(&start) > window) break;
    sched_yield();
  }
  /* About to sleep in read(): say so, then look once more, since the parent posts before it looks at
     this word; a post from now on comes with SHARED_WAKE on fd 3, which ends that read(). */
  __atomic_store_n(shared_word(W_HOST_POLLING), 0, __ATOMIC_SEQ_CST);
  if (shared_posted()) return 1;
  reader.polled_already = 1;
  return 0;
}

/* Small frames are copied into an outbox; whichever thread finds no flush under way writes the
   whole outbox in one writev, so results finished together leave together, and none waits. */
#define SMALL_FRAME_BYTES 4096
#define FLUSH_IOVECS 64
typedef struct out_frame {
  struct out_frame *next;
  size_t len;
  unsigned char data[];
} out_frame;
static out_frame *outbox, **outbox_tail = &outbox;
static int flushing;
static pthread_mutex_t outbox_lock = PTHREAD_MUTEX_INITIALIZER;

/* Called with outbox_lock held; returns with it held and the outbox empty. */
static void flush_outbox(void) {
  flushing = 1;
  while (outbox) {
    out_frame *batch = outbox;
    outbox = NULL;
    outbox_tail = &outbox;
    pthread_mutex_unlock(&outbox_lock);
    struct iovec iov[FLUSH_IOVECS];
    int n = 0;
    pthread_mutex_lock(&write_lock);
    for (out_frame *f = batch; f; f = f->next) {
      iov[n].iov_base = f->data;
      iov[n].iov_len = f->len;
      if (++n == FLUSH_IOVECS || !f->next) {
        if (writev_all(CHANNEL_FD, iov, n)) host_exit(0); /* The parent is gone: nobody is left to serve. */
        n = 0;
      }
    }
    pthread_mutex_unlock(&write_lock);
    while (batch) {
      out_frame *next = batch->next;
      free(batch);
      batch = next;
    }
    pthread_mutex_lock(&outbox_lock);
  }
  flushing = 0;
}

/* One frame, never interleaved with another. */
static void send_frame(uint32_t kind, uint32_t id, const void *a, size_t alen, const void *b, size_t blen) {
  unsigned char header[16];
  put_u32(header, kind);
  put_u32(header + 4, id);
  put_u64(header + 8, (uint64_t)alen + blen);
  size_t total = sizeof header + alen + blen;
  out_frame *frame = total <= SMALL_FRAME_BYTES ? malloc(sizeof *frame + total) : NULL;
  if (frame) {
    frame->next = NULL;
    frame->len = total;
    memcpy(frame->data, header, sizeof header);
    if (alen) memcpy(frame->data + sizeof header, a, alen);
    if (blen) memcpy(frame->data + sizeof header + alen, b, blen);
    pthread_mutex_lock(&outbox_lock);
    *outbox_tail = frame;
    outbox_tail = &frame->next;
    if (!flushing) flush_outbox();
    pthread_mutex_unlock(&outbox_lock);
    return;
  }
  struct iovec iov[3] = {{header, sizeof header}, {(void *)a, alen}, {(void *)b, blen}};
  pthread_mutex_lock(&write_lock);
  int failed = writev_all(CHANNEL_FD, iov, 3);
  pthread_mutex_unlock(&write_lock);
  if (failed) host_exit(0);
}

/* The plugin library's loaded segments (found once, only when it exports a free function). */
#define MAX_LIBRARY_SEGMENTS 16
static struct {
  uintptr_t start, end;
  int writable;
} library_segments[MAX_LIBRARY_SEGMENTS];
static int library_segment_count;

#ifdef __linux__
/* dl_iterate_phdr callback: records the segments of the object holding `anchor` (a plugin symbol). */
static int collect_library_segments(struct dl_phdr_info *info, size_t size, void *anchor) {
  (void)size;
  uintptr_t at = (uintptr_t)anchor;
  int mine = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && at >= info->dlpi_addr + ph->p_vaddr && at < info->dlpi_addr + ph->p_vaddr + ph->p_memsz) mine = 1;
  }
  if (!mine) return 0;
  for (int i = 0; i < info->dlpi_phnum && library_segment_count < MAX_LIBRARY_SEGMENTS; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    library_segments[library_segment_count].start = info->dlpi_addr + ph->p_vaddr;
    library_segments[library_segment_count].end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    library_segments[library_segment_count].writable = (ph->p_flags & PF_W) != 0;
    library_segment_count++;
  }
  return 1;
}
#endif

/*
 * Whether a returned string lies in the library's own image, so it cannot be heap memory the free
 * function may free (the ABI's rule: export it and every returned string must be allocated): 0 no,
 * 1 a read-only segment (a string literal), 2 a writable one (a static buffer).
 */
static uint32_t library_owned(const char *s) {
  uintptr_t at = (uintptr_t)s;
  for (int i = 0; i < library_segment_count; i++) {
    if (at >= library_segments[i].start && at < library_segments[i].end) return library_segments[i].writable ? 2 : 1;
  }
  return 0;
}

/* Sends a plugin-returned string after `prefix`, then frees it exactly once. */
static void send_returned(uint32_t kind, uint32_t id, const unsigned char *prefix, size_t plen, const char *s, uint64_t limit) {
  unsigned char buf[32];
  if (plen) memcpy(buf, prefix, plen);
  if (!s) {
    put_u32(buf + plen, RET_NULL);
    send_frame(kind, id, buf, plen + 4, NULL, 0);
    return;
  }
  uint32_t owned = plugin_free ? library_owned(s) : 0;
  if (owned) {
    /* Freeing it would crash the host (or worse): refuse it instead, and free nothing. */
    put_u32(buf + plen, RET_NOT_FREEABLE);
    put_u32(buf + plen + 4, owned);
    send_frame(kind, id, buf, plen + 8, NULL, 0);
    return;
  }
  size_t n = strlen(s);
  note_payload(n);
  if (n > limit) {
    put_u32(buf + plen, RET_TOO_LARGE);
    put_u64(buf + plen + 4, n);
    send_frame(kind, id, buf, plen + 12, NULL, 0);
  } else {
    put_u32(buf + plen, RET_BYTES);
    send_frame(kind, id, buf, plen + 4, s, n);
  }
  if (plugin_free) plugin_free(s);
}

static void load_error(uint32_t reason, const char *text) {
  unsigned char code[4];
  put_u32(code, reason);
  send_frame(MSG_LOAD_ERROR, 0, code, 4, text, strlen(text));
  host_exit(0);
}

/* Async-signal-safe: formats an unsigned number. */
static size_t fmt_u64(char *out, uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

/* Async-signal-safe: VmPeak in KiB from /proc, 0 when unknown. */
static uint64_t peak_kb(void) {
  if (SANITIZED) return 0; /* Shadow memory, not the plugin, makes VmPeak, and no RLIMIT_AS applies. */
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *at = strstr(buf, "VmPeak:");
  if (!at) return 0;
  at += 7;
  while (*at == ' ' || *at == '\t') at++;
  uint64_t v = 0;
  while (*at >= '0' && *at <= '9') v = v * 10 + (uint64_t)(*at++ - '0');
  return v;
}

static void on_fatal(int sig) {
  char line[96];
  size_t n = 0;
  memcpy(line, "signal=", 7);
  n = 7;
  n += fmt_u64(line + n, (uint64_t)sig);
  memcpy(line + n, " peak_kb=", 9);
  n += 9;
  n += fmt_u64(line + n, peak_kb());
  line[n++] = '\n';
  (void)!write(NOTES_FD, line, n);
  kill_descendants();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_alt_stack(void) {
  stack_t ss;
  ss.ss_size = 64 * 1024;
  ss.ss_sp = malloc(ss.ss_size);
  ss.ss_flags = 0;
  if (ss.ss_sp) sigaltstack(&ss, NULL);
}

static void install_fatal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal;
  sa.sa_flags = (int)(SA_ONSTACK | SA_RESETHAND);
  sigemptyset(&sa.sa_mask);
  int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};
  for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &sa, NULL);
  /* The parent's stop and its death (PR_SET_PDEATHSIG) both arrive as SIGTERM. */
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

/* --- a small job queue for thread-safe plugins --- */
typedef struct job {
  uint32_t id;
  char *ctx;
  struct job *next;
} job;
static job *queue_head, *queue_tail;

static long queued_jobs, pool_workers;

/* Set once by start_workers() after the workers it counts are running, so every read is atomic. */
static long workers_started(void) {
  return __atomic_load_n(&pool_workers, __ATOMIC_RELAXED);
}

/* A hint, read without the lock: more calls wait than there are workers to take them. */
static int pool_saturated(void) {
  long workers = workers_started();
  return workers > 0 && __atomic_load_n(&queued_jobs, __ATOMIC_RELAXED) > workers;
}
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_ready = PTHREAD_COND_INITIALIZER;

static void answer_shared(uint32_t id, const char *s);

/* How long the plugin's calls took lately, in ns (an EWMA of 1/8 over every thread's calls; races only blur it). */
static long recent_call_ns;

/* This thread's policy as last set from the lane's BATCH word (threads start as SCHED_OTHER). */
static __thread int thread_batch;

/*
 * Follows the parent's BATCH word: with several of its hosts busy, a woken host thread runs as
 * SCHED_BATCH, which does not preempt the running thread (the parent mid-batch, or another host), so
 * wake-ups cost fewer switches; with one, SCHED_OTHER, so a lone caller is served at once. Each thread
 * looks whenever it is about to run a call or handle a frame; a syscall only on a change.
 */
static void follow_batch_word(void) {
#ifdef SCHED_BATCH
  if (!shared) return;
  int want = __atomic_load_n(shared_word(W_BATCH), __ATOMIC_RELAXED) == 1;
  if (want == thread_batch) return;
  struct sched_param param = {0};
  if (sched_setscheduler(0, want ? SCHED_BATCH : SCHED_OTHER, &param) == 0) thread_batch = want;
#endif
}

/* Runs a call and sends its result: on fd 3, or in the shared region for a call taken from there. */
static void run_job(uint32_t id, char *ctx, int answer_in_shared) {
  follow_batch_word();
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  const char *out = plugin_execute(ctx);
  long took = elapsed_since(&start), recent = __atomic_load_n(&recent_call_ns, __ATOMIC_RELAXED);
  __atomic_store_n(&recent_call_ns, recent + (took - recent) / 8, __ATOMIC_RELAXED);
  free(ctx);
  if (answer_in_shared) answer_shared(id, out);
  else send_returned(MSG_RESULT, id, NULL, 0, out, max_output);
  note_call_end();
}

/* Calls running now, on workers or the reader: never more than pool_workers (the parent's maxConcurrency). */
static long running_jobs;

/* A hint, read without the lock: a queued call and a free slot to run it. */
static int job_ready(void) {
  return __atomic_load_n(&queue_head, __ATOMIC_ACQUIRE) && __atomic_load_n(&running_jobs, __ATOMIC_RELAXED) < workers_started();
}

static int jobs_active(void) {
  /* Queued first: a worker taking a job counts it running before it stops counting it queued. */
  return __atomic_load_n(&queued_jobs, __ATOMIC_ACQUIRE) > 0 || __atomic_load_n(&running_jobs, __ATOMIC_ACQUIRE) > 0;
}

/* For a lone call the reader ran: frees its slot for a queued call. */
static void job_done(void) {
  pthread_mutex_lock(&queue_lock);
  /* Release: a reader that sees the count drop sees the kept-heap mark the call left (note_call_end). */
  __atomic_sub_fetch(&running_jobs, 1, __ATOMIC_RELEASE);
  /* A queued call may have waited for this slot. */
  if (queue_head) pthread_cond_signal(&queue_ready);
  pthread_mutex_unlock(&queue_lock);
}

/* Takes a slot for a lone call on the reader; 0 when every slot is busy or calls wait (then it queues). */
static int take_slot_here(void) {
  pthread_mutex_lock(&queue_lock);
  int ok = !queue_head && running_jobs < workers_started();
  if (ok) __atomic_add_fetch(&running_jobs, 1, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&queue_lock);
  return ok;
}

/* Idle workers polling for the next call (queue_lock held): at most one, so they leave the cores to the rest. */
static int spinning_workers;

static void *worker(void *arg) {
  (void)arg;
  install_alt_stack();
  pthread_mutex_lock(&queue_lock);
  for (;;) {
    long window = spin_window_ns();
    if ((!queue_head || running_jobs >= workers_started()) && spinning_workers == 0 && window > 0) {
      spinning_workers++;
      pthread_mutex_unlock(&queue_lock);
      /* Like the reader: a caller's next call usually comes within microseconds, so look before sleeping. */
      struct timespec start;
      clock_gettime(CLOCK_MONOTONIC, &start);
      while (!job_ready() && elapsed_since(&start) < window) sched_yield();
      pthread_mutex_lock(&queue_lock);
      /* Under the lock, so an enqueue either sees this spinner (and skips the wake-up) or wakes a sleeper. */
      spinning_workers--;
    }
    while (!queue_head || running_jobs >= workers_started()) pthread_cond_wait(&queue_ready, &queue_lock);
    job *j = queue_head;
    __atomic_store_n(&queue_head, j->next, __ATOMIC_RELEASE);
    if (!queue_head) queue_tail = NULL;
    /* Running before no longer queued: jobs_active() reads them the other way round, so it never sees neither. */
    __atomic_add_fetch(&running_jobs, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&queued_jobs, 1, __ATOMIC_RELEASE);
    /* More calls wait and a slot is free: an enqueue that counted on the spinner woke no one for them. */
    if (queue_head && running_jobs < workers_started()) pthread_cond_signal(&queue_ready);
    pthread_mutex_unlock(&queue_lock);
    run_job(j->id, j->ctx, 0);
    free(j);
    /* Busy: straight on to the next queued call under the same lock. */
    pthread_mutex_lock(&queue_lock);
    __atomic_sub_fetch(&running_jobs, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

/* Drops a queued call; tells the parent whether it was still waiting. */
static void cancel_queued(uint32_t id) {
  uint32_t dropped = 0;
  pthread_mutex_lock(&queue_lock);
  for (job **link = &queue_head, *prev = NULL; *link; prev = *link, link = &(*link)->next) {
    if ((*link)->id != id) continue;
    job *j = *link;
    __atomic_store_n(link, j->next, __ATOMIC_RELEASE); /* link may be &queue_head, which job_ready() reads without the lock */
    if (queue_tail == j) queue_tail = prev;
    __atomic_sub_fetch(&queued_jobs, 1, __ATOMIC_RELAXED);
    free(j->ctx);
    free(j);
    dropped = 1;
    break;
  }
  pthread_mutex_unlock(&queue_lock);
  unsigned char status[4];
  put_u32(status, dropped ? 0 : 1);
  send_frame(MSG_CANCEL_ACK, id, status, 4, NULL, 0);
}

static void enqueue(uint32_t id, char *ctx) {
  job *j = malloc(sizeof *j);
  if (!j) abort();
  j->id = id;
  j->ctx = ctx;
  j->next = NULL;
  pthread_mutex_lock(&queue_lock);
  if (queue_tail) queue_tail->next = j;
  else __atomic_store_n(&queue_head, j, __ATOMIC_RELEASE); /* Idle workers poll it without the lock. */
  queue_tail = j;
  __atomic_add_fetch(&queued_jobs, 1, __ATOMIC_RELAXED);
  /* A polling worker takes it without a wake-up. */
  if (spinning_workers == 0) pthread_cond_signal(&queue_ready);
  pthread_mutex_unlock(&queue_lock);
}

/* Set while the main thread runs a call: only then does the standby read. */
static int reader_away;
/* Calls shorter than this lately are quick: a frame that comes while one runs on the reader may wait for
   it, and the parent wakes the standby only if the call is still running a while later (rule 7). */
#define QUICK_CALL_NS 25000L
/* READER_AWAY's states (its low two bits; the rest counts the reader's trips away, so a parent can tell one from the next). */
enum { AWAY_NO = 0, AWAY_QUICK = 1, AWAY_SLOW = 2 };
static uint32_t away_trips;
static int start_workers(long wanted);
static void start_standby(void);

/* Puts a shared call's result in the shared region (or on fd 3 when it does not fit) and frees it once. */
static void answer_shared(uint32_t id, const char *s) {
  unsigned char *area = shared + SHARED_RESP;
  size_t n = s ? strlen(s) : 0;
  note_payload(n);
  uint32_t len, owned = s && plugin_free ? library_owned(s) : 0;
  if (!s) {
    put_u32(area, RET_NULL);
    len = 4;
  } else if (owned) {
    put_u32(area, RET_NOT_FREEABLE);
    put_u32(area + 4, owned);
    len = 8;
  } else if (n > max_output) {
    put_u32(area, RET_TOO_LARGE);
    put_u64(area + 4, n);
    len = 12;
  } else if (n <= SHARED_AREA_BYTES - 4) {
    put_u32(area, RET_BYTES);
    memcpy(area + 4, s, n);
    len = 4 + (uint32_t)n;
  } else {
    send_returned(MSG_RESULT, id, NULL, 0, s, max_output);
    return;
  }
  if (s && plugin_free && !owned) plugin_free(s);
  __atomic_store_n(shared_word(W_RESP_LEN), (int32_t)len, __ATOMIC_RELAXED);
  __atomic_store_n(shared_word(W_RESP_SEQ), (int32_t)id, __ATOMIC_SEQ_CST);
  /* The parent stopped polling: tell it on fd 3. It clears its word before it looks, so one of us sees the other. */
  if (!__atomic_load_n(shared_word(W_PARENT_POLLING), __ATOMIC_SEQ_CST)) send_frame(MSG_SHARED_RESULT, id, NULL, 0, NULL, 0);
}

/* The parent wakes the standby by READER_AWAY after the frames it writes (rule 7): the reader may then borrow any call. */
static int parent_watches(void) {
  return shared && __atomic_load_n(shared_word(W_PARENT_WATCHES), __ATOMIC_SEQ_CST) == 1;
}

static void set_reader_away(int state) {
  __atomic_store_n(&reader_away, state != AWAY_NO, __ATOMIC_SEQ_CST);
  if (state != AWAY_NO) away_trips++;
  if (shared) __atomic_store_n(shared_word(W_READER_AWAY), (int32_t)((away_trips << 2) | (uint32_t)state), __ATOMIC_SEQ_CST);
}

static int input_waiting(void);

/*
 * Runs a call on the main thread when a slot is free, letting go of read_lock meanwhile so the standby
 * can read fd 3 (woken by the parent, rule 7) and nothing waits behind the call for long; else queues
 * it. A watching parent reads READER_AWAY after the frames it writes, so the reader sets it and then
 * looks for input: a frame written before the parent could see the word is there to find, and then the
 * call goes to a worker instead. READER_AWAY says whether the call is quick (the parent then wakes the
 * standby only if this trip away outlasts a timer of its own) or slow (at once).
 */
static void run_here_or_queue(uint32_t id, char *ctx, int answer_in_shared) {
  if (!take_slot_here()) {
    enqueue(id, ctx); /* Its result comes on fd 3. */
    return;
  }
  int watched = parent_watches();
  set_reader_away(watched && __atomic_load_n(&recent_call_ns, __ATOMIC_RELAXED) < QUICK_CALL_NS ? AWAY_QUICK : AWAY_SLOW);
  if (watched && input_waiting()) {
    set_reader_away(AWAY_NO);
    job_done();
    enqueue(id, ctx);
    return;
  }
  pthread_mutex_unlock(&read_lock);
  run_job(id, ctx, answer_in_shared);
  job_done();
  set_reader_away(AWAY_NO);
  pthread_mutex_lock(&read_lock);
}

/* Takes the call posted in the shared region: the reader runs it like EXECUTE_ALONE; it is queued when no slot is free, or by the standby. */
static void take_shared_call(int may_run_here) {
  uint32_t id = (uint32_t)__atomic_load_n(shared_word(W_REQ_SEQ), __ATOMIC_SEQ_CST);
  int32_t len = __atomic_load_n(shared_word(W_REQ_LEN), __ATOMIC_RELAXED);
  reader.shared_seen = id;
  if (len < 0 || (uint32_t)len > SHARED_AREA_BYTES) abort(); /* Only the parent writes these words. */
  char *ctx = malloc((size_t)len + 1);
  if (!ctx) abort();
  memcpy(ctx, shared + SHARED_REQ, (size_t)len);
  ctx[len] = 0;
  if (!reader.use_pool) run_job(id, ctx, 1);
  else if (may_run_here && reader.standby_running) run_here_or_queue(id, ctx, 1);
  else enqueue(id, ctx); /* Its result comes on fd 3. */
}

/*
 * Reads one frame and acts on it; call with read_lock held. The main thread (may_run_here) runs a
 * lone call, or with a watching parent the last call it read, itself (run_here_or_queue), letting
 * go of read_lock meanwhile; the standby never runs a call.
 */
static void handle_frame(int may_run_here) {
  follow_batch_word();
  /* A due post goes before the frame: the reader waits for either; the standby, called once bytes are there, looks too. */
  if (may_run_here ? shared && await_request() : shared_posted()) {
    take_shared_call(may_run_here);
    return;
  }
  unsigned char header[16];
  if (read_exact(header, sizeof header)) host_exit(0); /* Input ended: shut down. */
  uint32_t kind = get_u32(header);
  uint32_t id = get_u32(header + 4);
  uint64_t len = get_u64(header + 8);
  char *ctx = malloc(len + 1);
  if (!ctx) abort();
  note_payload(len);
  if (read_exact(ctx, len)) host_exit(0);
  ctx[len] = 0;
  reader.consumed += (uint32_t)(sizeof header + len);
  if (kind == REQ_CONFIGURE) {
    if (len >= 4 && !reader.use_pool) {
      reader.use_pool = start_workers((long)get_u32((unsigned char *)ctx));
      if (reader.use_pool) start_standby();
      else close(WAKE_FD);
    }
    free(ctx);
  } else if (kind == REQ_CANCEL) {
    free(ctx);
    cancel_queued(id);
  } else if (kind != REQ_EXECUTE && kind != REQ_EXECUTE_ALONE) {
    free(ctx); /* SHARED_WAKE: having woken is the point; the next await_request() finds the call. */
  } else if (!reader.use_pool) {
    run_job(id, ctx, 0);
  } else if (may_run_here && reader.standby_running && (kind == REQ_EXECUTE_ALONE || (reader.end == reader.start && parent_watches()))) {
    /* A lone call, or (with a watching parent) the last call read: run here rather than wake a worker,
       a process switch per call when many hosts each have a call or two in flight. */
    run_here_or_queue(id, ctx, 0);
  } else {
    enqueue(id, ctx);
  }
}

static int input_waiting(void) {
  struct pollfd pfd = {CHANNEL_FD, POLLIN, 0};
  return reader.end > reader.start || poll(&pfd, 1, 0) > 0;
}

/* Sleeps on fd 5; woken by the parent, reads whatever fd 3 holds while the main thread runs a call. */
static void *standby(void *arg) {
  (void)arg;
  unsigned char wake[64];
  for (;;) {
    ssize_t n = read(WAKE_FD, wake, sizeof wake);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return NULL; /* The parent is gone; the main thread sees fd 3 end and exits. */
    pthread_mutex_lock(&read_lock);
    /* Reads only while the main thread is away, which hands reading back as soon as it returns. */
    while (__atomic_load_n(&reader_away, __ATOMIC_SEQ_CST) && input_waiting()) handle_frame(0);
    pthread_mutex_unlock(&read_lock);
  }
}

/* Starts the standby reader, or closes fd 5 so the parent learns (EPIPE) that nobody reads it. */
static void start_standby(void) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256u * 1024u);
  pthread_t t;
  if (fcntl(WAKE_FD, F_GETFD) != -1 && pthread_create(&t, &attr, standby, NULL) == 0) {
    pthread_detach(t);
    reader.standby_running = 1;
  } else {
    close(WAKE_FD);
  }
  pthread_attr_destroy(&attr);
}

/* Starts up to `wanted` workers; returns 1 when calls go to the pool, 0 when they run inline. */
static int start_workers(long wanted) {
  if (wanted <= 1) return 0;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
  long started = 0;
  for (; started < wanted; started++) {
    pthread_t t;
    if (pthread_create(&t, &attr, worker, NULL) != 0) break;
    pthread_detach(t);
  }
  pthread_attr_destroy(&attr);
  __atomic_store_n(&pool_workers, started, __ATOMIC_RELAXED);
  return started > 0;
}

/* A decimal option value of at most `most` (digits only); 0 if it is not one. */
static int option_number(const char *text, uint64_t most, uint64_t *out) {
  uint64_t value = 0;
  if (!*text) return 0;
  for (const char *c = text; *c; c++) {
    if (*c < '0' || *c > '9') return 0;
    value = value * 10 + (uint64_t)(*c - '0');
    if (value > most) return 0;
  }
  *out = value;
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "skillplug-host: internal program of skillplug; not meant to be run by hand\n");
    return 2;
  }
  const char *library = argv[1];
  max_output = strtoull(argv[2], NULL, 10);
  uint64_t memory_mb = strtoull(argv[3], NULL, 10);
  long parent = strtol(argv[4], NULL, 10);
  int want_filter = 0, deny_unix_sockets = 0, want_lane = 0;
  uint64_t number = 0;
  if (strcmp(argv[5], "-") != 0) {
    char *options = argv[5], *save = NULL;
    for (char *word = strtok_r(options, ",", &save); word; word = strtok_r(NULL, ",", &save)) {
      if (strcmp(word, "seccomp") == 0) want_filter = 1;
      else if (strcmp(word, "no-unix-sockets") == 0) deny_unix_sockets = 1;
      else if (strcmp(word, "lane") == 0) want_lane = 1;
      else if (strcmp(word, "fixed-spin") == 0) fixed_spin = 1;
      else if (strncmp(word, "keep-heap-mb=", 13) == 0 && option_number(word + 13, 1024 * 1024, &number)) heap_keep_bytes = number * 1024 * 1024;
      else if (strncmp(word, "trim-idle-ms=", 13) == 0 && option_number(word + 13, 24L * 3600 * 1000, &number) && number > 0) trim_idle_ms = (long)number;
      else {
        fprintf(stderr, "skillplug-host: unknown option \"%s\"\n", word);
        return 2;
      }
    }
  }
  install_alt_stack();
  /* Before PR_SET_PDEATHSIG: the parent's death then stops the plugin's processes too. */
  install_fatal_handlers();
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  /* The parent may have died before the line above took effect. */
  if (parent > 0 && getppid() != (pid_t)parent) _exit(0);
  /* Orphans of the plugin's processes (setsid daemons too) become the host's, so its stop reaches them. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
#else
  (void)parent;
#endif
  close_inherited_fds();
  channels_cloexec();
  if (want_lane) shared = create_lane();
  /* Plugin stdout goes to stderr: fd 1 is never the channel, and the parent reads one log stream. */
  dup2(2, 1);
  setvbuf(stdout, NULL, _IOLBF, 0);
  keep_freed_heap();
  if (memory_mb > 0) {
    /* Each glibc arena reserves 64 MiB of address space (8 per core by default): one arena keeps RLIMIT_AS about real use. */
#ifdef M_ARENA_MAX
    mallopt(M_ARENA_MAX, 1);
#endif
#if !SANITIZED
    struct rlimit rl = {memory_mb * 1024 * 1024, memory_mb * 1024 * 1024};
    setrlimit(RLIMIT_AS, &rl);
#endif
  }
  if (want_filter) {
    const char *why = install_filter(deny_unix_sockets);
    if (why) load_error(LOADERR_SANDBOX, why);
  } else if (deny_unix_sockets) {
    load_error(LOADERR_USAGE, "no-unix-sockets needs seccomp");
  }

  void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    load_error(LOADERR_DLOPEN, why ? why : "dlopen failed");
  }
  version_fn version = (version_fn)dlsym(handle, "vtcode_plugin_version");
  if (!version) load_error(LOADERR_SYMBOL, "vtcode_plugin_version");
  metadata_fn metadata = (metadata_fn)dlsym(handle, "vtcode_plugin_metadata");
  if (!metadata) load_error(LOADERR_SYMBOL, "vtcode_plugin_metadata");
  plugin_execute = (execute_fn)dlsym(handle, "vtcode_plugin_execute");
  if (!plugin_execute) load_error(LOADERR_SYMBOL, "vtcode_plugin_execute");
  plugin_free = (free_fn)dlsym(handle, "vtcode_plugin_free_string");
#ifdef __linux__
  if (plugin_free) dl_iterate_phdr(collect_library_segments, (void *)(uintptr_t)version);
#endif

  uint32_t abi = version();
  unsigned char ready[8];
  put_u32(ready, abi);
  put_u32(ready + 4, plugin_free != NULL);
  if (abi != PLUGIN_ABI_VERSION) {
    send_frame(MSG_READY, 0, ready, 8, NULL, 0);
    host_exit(0);
  }
  send_returned(MSG_READY, 0, ready, 8, metadata(), MAX_METADATA_BYTES);

  pthread_mutex_lock(&read_lock);
  for (;;) handle_frame(1);
}
