// SPDX-License-Identifier: MIT
/*
 * klp_busy.c - libklp_busy.so (SONAME libklp_busy.so): the kernel's
 * livepatch-callbacks-busymod.  busy_start() starts one thread running
 * busy_work_func(), the function patch_klp_callbacks_demo.so replaces:
 *
 *   busy_start(0)  busy_work_func returns at once (kernel Test 8,
 *                  "sleep_secs=0")
 *   busy_start(1)  busy_work_func blocks in read() called directly from its
 *                  own frame until busy_release() (kernel Test 9: a thread
 *                  sits in a to-be-patched function and stalls the
 *                  transition)
 *   busy_start(2)  busy_work_func calls busy_wait_here() (never patched),
 *                  which blocks the same way: the to-be-patched function is
 *                  one frame further up the stack, below a callee
 *
 *   busy_release() lets a blocked busy_work_func return (no-op for mode 0)
 *   busy_join()    waits for the thread (call after busy_release())
 *   busy_tid()     the thread's TID (0 before the first busy_start())
 *   busy_running() 1 between busy_start() and busy_join()
 *
 * One busy thread at a time: busy_start() returns -EBUSY while one has not
 * been joined.  Compiled at -O0 (see CMakeLists.txt).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int busy_start(int mode);
int busy_release(void);
int busy_join(void);
int busy_tid(void);
int busy_running(void);
void busy_work_func(int mode);
void busy_wait_here(int fd);

static int busy_pipe[2] = { -1, -1 };
static pthread_t busy_thread;
static int busy_mode;
static int busy_started;
static int busy_released;
static atomic_int busy_thread_tid;

/*
 * Read one byte from fd, restarting on EINTR; exit(3) on EOF or error.
 * Always inlined (even at -O0): the read() call sits in the caller's frame.
 */
static inline __attribute__((always_inline)) void busy_read_byte(int fd)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		perror("klp_busy: read");
		exit(3);
	}
}

__attribute__((noipa, used)) void busy_wait_here(int fd)
{
	busy_read_byte(fd);
}

__attribute__((noipa, used)) void busy_work_func(int mode)
{
	if (mode == 1)
		busy_read_byte(busy_pipe[0]);
	else if (mode == 2)
		busy_wait_here(busy_pipe[0]);
}

static void *busy_thread_fn(void *arg)
{
	atomic_store(&busy_thread_tid, (int)syscall(SYS_gettid));
	busy_work_func((int)(long)arg);
	return NULL;
}

int busy_start(int mode)
{
	int err;

	if (mode < 0 || mode > 2)
		return -EINVAL;
	if (busy_started)
		return -EBUSY;
	if (busy_pipe[0] < 0 && pipe2(busy_pipe, O_CLOEXEC) < 0)
		return -errno;
	busy_mode = mode;
	busy_released = 0;
	atomic_store(&busy_thread_tid, 0);
	err = pthread_create(&busy_thread, NULL, busy_thread_fn, (void *)(long)mode);
	if (err)
		return -err;
	busy_started = 1;
	/* Its TID is known once it runs: wait (briefly) so busy_tid() is exact. */
	while (!atomic_load(&busy_thread_tid))
		usleep(1000);
	return 0;
}

int busy_release(void)
{
	char c = 'r';

	if (!busy_started)
		return -ESRCH;
	if (busy_mode != 0 && !busy_released) {
		if (write(busy_pipe[1], &c, 1) != 1)
			return -errno;
		busy_released = 1;
	}
	return 0;
}

int busy_join(void)
{
	int err;

	if (!busy_started)
		return -ESRCH;
	err = pthread_join(busy_thread, NULL);
	if (err)
		return -err;
	busy_started = 0;
	return 0;
}

int busy_tid(void)
{
	return atomic_load(&busy_thread_tid);
}

int busy_running(void)
{
	return busy_started;
}
