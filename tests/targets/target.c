// SPDX-License-Identifier: MIT
/*
 * target.c - the program the integration tests patch.
 *
 * Built several times (see CMakeLists.txt): target_basic (PIE, default
 * flags), target_endbr (-fcf-protection=full) and target_nopie (-no-pie).
 *
 * Reads one command per line from stdin and answers with exactly one line
 * on stdout (flushed), so a test can send a command and wait for its reply:
 *
 *   call N        compute(N)=R
 *   helper1 N     helper1(N)=R      (static helper() of helper1.c, x*10)
 *   helper2 N     helper2(N)=R      (static helper() of helper2.c, x*100)
 *   tiny          tiny()=R          (a 3-byte function, too short to patch)
 *   sigmask       sigmask=HEX       (main thread's blocked signals, bit N-1 = signal N)
 *   eintr         eintr=K           (EINTRs seen by blocking calls so far)
 *   values        values=A,B,...    (distinct results seen by worker threads)
 *   churn         churn=K           (threads created and joined so far)
 *   fillcall      fill()=R          (fill() of a small buffer from this thread:
 *                                    0 original, 1 patch_fill's version)
 *   fillcheck     fillcheck=ok calls=K min=M bad=B new=N  (--filler threads:
 *                                    fills done, fewest done by one thread,
 *                                    fills that left a non-zero byte (then
 *                                    "BAD" for "ok"), fills by the new version)
 *   value N       value_fn(N)=R
 *   gatecall N    gate(N)=R         (gate() of gate.c; its byte is sent first)
 *   calleecall N  gate_callee(N)=R  (the same with gate_callee())
 *   blockgate N   blockgate=started (a thread calls gate(N), which blocks
 *                                    until "release"; one at a time)
 *   blockcallee N blockcallee=started (the same with gate_callee(N))
 *   release       release=ok        (let the blocked gate thread go on)
 *   gateresult    gateresult=R or gateresult=pending (that thread's result)
 *   first         first=R           (what compute(5) returned as main()'s very first
 *                                    call: a patch applied before main() shows)
 *   quit          (exits 0, prints nothing)
 *
 * Options (threads are all running before "ready" is printed):
 *   --sleeper           a thread in clock_nanosleep() and one blocked in read()
 *   --threads N         N threads calling compute(5) in a tight loop
 *   --thread-churn N    N threads creating and joining short-lived threads
 *   --hammer-malloc N   N threads doing malloc/free in a loop
 *   --hammer-dlopen N   N threads doing dlopen/dlclose of libdlhammer.so
 *   --exit-after MS     exit(0) on its own MS milliseconds after "ready"
 *   --filler N          N threads calling fill() on a 64 MiB buffer in a loop
 *
 * The functions under test (compute.c, helper1.c, helper2.c) live in their
 * own files, compiled without optimization: each gets the classic
 * "push %rbp; mov %rsp,%rbp; ..." prologue, longer than the 5-byte jump ulp
 * writes at a function entry.  tiny() alone is meant to be too short.
 * fill() (fill.c) is assembly: a busy thread sits inside its first 5 bytes.
 * gate.c holds functions that block with their frame on the stack.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "regs_park.h"

#ifndef DLHAMMER_PATH
#define DLHAMMER_PATH "libdlhammer.so"
#endif

int compute(int x);
int call_helper1(int x);
int call_helper2(int x);
long fill(void *buf, long unused1, long unused2, unsigned long len);
int value_fn(int x);
int gate(int fd, int x);
int gate_callee(int fd, int x);

/*
 * tiny: "xor %eax,%eax; ret", 3 bytes, shorter than the 5-byte jump ulp
 * writes at a function entry.
 */
int tiny(void);
__asm__(".text\n"
	".globl tiny\n"
	".type tiny, @function\n"
	"tiny:\n"
	"\txorl %eax, %eax\n"
	"\tret\n"
	".size tiny, .-tiny\n");

static atomic_long eintr_count;
static atomic_long churn_count;

/* --filler threads (see fill.c). */
#define FILL_LEN (64UL << 20)
#define FILL_STRIDE 512
#define MAX_FILLERS 64
static atomic_long fill_calls, fill_bad, fill_new;
static atomic_long fill_calls_by[MAX_FILLERS]; /* per filler thread */
static long nr_fillers;

/* The gate thread (see gate.c): its pipe, its result. */
static int gate_pipe[2] = { -1, -1 };
static atomic_bool gate_busy;
static atomic_bool gate_done;
static atomic_int gate_result;

/* Distinct values returned by compute(5) in worker threads. */
#define NVALUES 1024
static atomic_bool seen[NVALUES];
static atomic_int seen_other; /* first value outside [0, NVALUES) */
static atomic_bool any_other;

static void record(int v)
{
	if (v >= 0 && v < NVALUES) {
		if (!atomic_load_explicit(&seen[v], memory_order_relaxed))
			atomic_store(&seen[v], true);
	} else if (!atomic_exchange(&any_other, true)) {
		atomic_store(&seen_other, v);
	}
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, fn, arg);

	if (err) {
		errno = err;
		die("pthread_create");
	}
	pthread_detach(t);
}

static void *sleeper_thread(void *arg)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };

	(void)arg;
	for (;;) {
		if (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == EINTR)
			atomic_fetch_add(&eintr_count, 1);
	}
	return NULL;
}

static void *reader_thread(void *arg)
{
	int fds[2];
	char c;

	(void)arg;
	if (pipe(fds))
		die("pipe");
	/* Nobody ever writes: read() blocks forever unless interrupted. */
	for (;;) {
		ssize_t n = read(fds[0], &c, 1);

		if (n < 0 && errno == EINTR)
			atomic_fetch_add(&eintr_count, 1);
		else if (n <= 0)
			die("read(pipe)");
	}
	return NULL;
}

static void *compute_thread(void *arg)
{
	(void)arg;
	for (;;)
		record(compute(5));
	return NULL;
}

static void *short_thread(void *arg)
{
	(void)arg;
	record(compute(5));
	return NULL;
}

static void *churn_thread(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		int err = pthread_create(&t, NULL, short_thread, NULL);

		if (err == EAGAIN) {
			usleep(1000);
			continue;
		}
		if (err) {
			errno = err;
			die("pthread_create(churn)");
		}
		pthread_join(t, NULL);
		atomic_fetch_add(&churn_count, 1);
	}
	return NULL;
}

static void *malloc_thread(void *arg)
{
	unsigned int seed = (unsigned int)(unsigned long)arg;
	void *slots[64] = { 0 };

	for (;;) {
		unsigned int i = rand_r(&seed) % 64;

		free(slots[i]);
		slots[i] = malloc(1 + rand_r(&seed) % 8192);
		if (!slots[i])
			die("malloc");
		memset(slots[i], 0xa5, 1);
	}
	return NULL;
}

static void *dlopen_thread(void *arg)
{
	const char *path = arg;

	for (;;) {
		void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		int (*fn)(int);

		if (!h) {
			fprintf(stderr, "dlopen(%s): %s\n", path, dlerror());
			exit(2);
		}
		fn = (int (*)(int))dlsym(h, "dlhammer_value");
		if (!fn || fn(1) != 42) {
			fprintf(stderr, "dlhammer_value missing or wrong\n");
			exit(2);
		}
		dlclose(h);
	}
	return NULL;
}

/*
 * Mark one byte in every FILL_STRIDE (and the last one) non-zero, let fill()
 * zero the buffer, check those bytes.  A fill that stops early or writes
 * elsewhere leaves marks behind; marking every byte would make the loop
 * spend most of its time outside fill().
 */
static void *filler_thread(void *arg)
{
	unsigned char *buf = malloc(FILL_LEN);
	long me = (long)arg;

	if (!buf)
		die("malloc(filler)");
	memset(buf, 0xff, FILL_LEN);
	for (;;) {
		bool ok = true;
		long r;

		for (size_t i = 0; i < FILL_LEN; i += FILL_STRIDE)
			buf[i] = 0xff;
		buf[FILL_LEN - 1] = 0xff;
		r = fill(buf, 0, 0, FILL_LEN);
		for (size_t i = 0; i < FILL_LEN; i += FILL_STRIDE)
			ok &= buf[i] == 0;
		ok &= buf[FILL_LEN - 1] == 0;
		if (r == 1)
			atomic_fetch_add(&fill_new, 1);
		else if (r != 0)
			ok = false;
		if (!ok)
			atomic_fetch_add(&fill_bad, 1);
		atomic_fetch_add(&fill_calls, 1);
		atomic_fetch_add(&fill_calls_by[me], 1);
	}
	return NULL;
}

/* fill() of a small buffer on this thread: its result, -1 if not all zero. */
static long fill_small(void)
{
	unsigned char buf[4096];
	long r;

	memset(buf, 0xff, sizeof(buf));
	r = fill(buf, 0, 0, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return -1;
	return r;
}

static void print_fillcheck(void)
{
	long min = nr_fillers ? LONG_MAX : 0, bad = atomic_load(&fill_bad);

	for (long i = 0; i < nr_fillers; i++) {
		long n = atomic_load(&fill_calls_by[i]);

		if (n < min)
			min = n;
	}
	printf("fillcheck=%s calls=%ld min=%ld bad=%ld new=%ld\n", bad ? "BAD" : "ok",
	       atomic_load(&fill_calls), min, bad, atomic_load(&fill_new));
}

/* arg: x << 1 | callee */
static void *gate_thread(void *arg)
{
	long a = (long)arg;
	int x = (int)(a >> 1);
	int r = (a & 1) ? gate_callee(gate_pipe[0], x) : gate(gate_pipe[0], x);

	atomic_store(&gate_result, r);
	atomic_store(&gate_done, true);
	atomic_store(&gate_busy, false);
	return NULL;
}

static void gate_send(void)
{
	if (write(gate_pipe[1], "g", 1) != 1)
		die("write(gate pipe)");
}

static void gate_block(const char *cmd, int x, int callee)
{
	if (atomic_exchange(&gate_busy, true)) {
		printf("error: a gate thread is already running\n");
		return;
	}
	atomic_store(&gate_done, false);
	start_thread(gate_thread, (void *)(((long)x << 1) | callee));
	printf("%s=started\n", cmd);
}

/* gatecall / calleecall: send the byte the gate reads, then call it here. */
static void gate_call(int x, int callee)
{
	if (atomic_load(&gate_busy)) {
		printf("error: a gate thread is waiting\n");
		return;
	}
	gate_send();
	if (callee)
		printf("gate_callee(%d)=%d\n", x, gate_callee(gate_pipe[0], x));
	else
		printf("gate(%d)=%d\n", x, gate(gate_pipe[0], x));
}

static void *exit_thread(void *arg)
{
	long ms = (long)arg;

	usleep(ms * 1000);
	exit(0);
	return NULL;
}

static void print_sigmask(void)
{
	unsigned long long mask = 0;
	sigset_t set;

	if (pthread_sigmask(SIG_BLOCK, NULL, &set))
		die("pthread_sigmask");
	for (int sig = 1; sig <= 64; sig++) {
		if (sigismember(&set, sig) == 1)
			mask |= 1ULL << (sig - 1);
	}
	printf("sigmask=%016llx\n", mask);
}

static void print_values(void)
{
	bool first = true;

	printf("values=");
	for (int v = 0; v < NVALUES; v++) {
		if (!atomic_load(&seen[v]))
			continue;
		printf("%s%d", first ? "" : ",", v);
		first = false;
	}
	if (atomic_load(&any_other))
		printf("%s%d", first ? "" : ",", atomic_load(&seen_other));
	printf("\n");
}

static long count_arg(int argc, char **argv, int *i)
{
	char *end;
	long n;

	if (*i + 1 >= argc) {
		fprintf(stderr, "%s needs a number\n", argv[*i]);
		exit(2);
	}
	n = strtol(argv[++*i], &end, 10);
	if (*end || n < 0) {
		fprintf(stderr, "bad number '%s'\n", argv[*i]);
		exit(2);
	}
	return n;
}

/*
 * parkregs: wait in regs_park() for one byte on stdin (the next line the
 * test sends, its newline), then say whether every register came back.
 */
static void park_regs(void)
{
	int avx = __builtin_cpu_supports("avx");
	struct regs_dump d;
	char bad[512] = "";
	long n;

	for (int i = 0; i < REGS_PATTERN_SIZE; i++)
		regs_pattern[i] = (unsigned char)(i * 13 + 7);
	n = regs_park(0, avx, &d);
	if (n != 1)
		snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " read=%ld", n);
	if (memcmp(d.gpr, regs_pattern + 512, sizeof(d.gpr)))
		strcat(bad, " gpr");
	if (d.rdi != 0 || d.rdx != 1)
		strcat(bad, " args");
	for (int i = 0; i < 16; i++) {
		if (memcmp(d.xmm[i], regs_pattern + 16 * i, 16))
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " xmm%d", i);
		if (avx && memcmp(d.ymm_hi[i], regs_pattern + 256 + 16 * i, 16))
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " ymm%d", i);
	}
	printf("parkregs=%s%s\n", bad[0] ? "BAD" : "ok", bad);
}

/* compute(5) as main()'s first call ("first"). */
static int first_result;

static void handle(const char *line)
{
	int n;

	if (sscanf(line, "call %d", &n) == 1)
		printf("compute(%d)=%d\n", n, compute(n));
	else if (sscanf(line, "helper1 %d", &n) == 1)
		printf("helper1(%d)=%d\n", n, call_helper1(n));
	else if (sscanf(line, "helper2 %d", &n) == 1)
		printf("helper2(%d)=%d\n", n, call_helper2(n));
	else if (!strcmp(line, "tiny"))
		printf("tiny()=%d\n", tiny());
	else if (!strcmp(line, "sigmask"))
		print_sigmask();
	else if (!strcmp(line, "eintr"))
		printf("eintr=%ld\n", atomic_load(&eintr_count));
	else if (!strcmp(line, "values"))
		print_values();
	else if (!strcmp(line, "churn"))
		printf("churn=%ld\n", atomic_load(&churn_count));
	else if (!strcmp(line, "fillcall"))
		printf("fill()=%ld\n", fill_small());
	else if (!strcmp(line, "fillcheck"))
		print_fillcheck();
	else if (sscanf(line, "value %d", &n) == 1)
		printf("value_fn(%d)=%d\n", n, value_fn(n));
	else if (sscanf(line, "gatecall %d", &n) == 1)
		gate_call(n, 0);
	else if (sscanf(line, "calleecall %d", &n) == 1)
		gate_call(n, 1);
	else if (sscanf(line, "blockgate %d", &n) == 1)
		gate_block("blockgate", n, 0);
	else if (sscanf(line, "blockcallee %d", &n) == 1)
		gate_block("blockcallee", n, 1);
	else if (!strcmp(line, "release")) {
		gate_send();
		printf("release=ok\n");
	} else if (!strcmp(line, "gateresult")) {
		if (atomic_load(&gate_done))
			printf("gateresult=%d\n", atomic_load(&gate_result));
		else
			printf("gateresult=pending\n");
	} else if (!strcmp(line, "first"))
		printf("first=%d\n", first_result);
	else if (!strcmp(line, "parkregs"))
		park_regs();
	else if (!strcmp(line, "quit"))
		exit(0);
	else
		printf("error: unknown command '%s'\n", line);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *dlhammer;

	first_result = compute(5);
	dlhammer = getenv("ULP_DLHAMMER");
	long sleeper = 0, threads = 0, churn = 0, hmalloc = 0, hdlopen = 0, exit_ms = -1;
	long fillers = 0;
	char *line = NULL;
	size_t cap = 0;
	sigset_t block;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sleeper"))
			sleeper = 1;
		else if (!strcmp(argv[i], "--threads"))
			threads = count_arg(argc, argv, &i);
		else if (!strcmp(argv[i], "--thread-churn"))
			churn = count_arg(argc, argv, &i);
		else if (!strcmp(argv[i], "--hammer-malloc"))
			hmalloc = count_arg(argc, argv, &i);
		else if (!strcmp(argv[i], "--hammer-dlopen"))
			hdlopen = count_arg(argc, argv, &i);
		else if (!strcmp(argv[i], "--exit-after"))
			exit_ms = count_arg(argc, argv, &i);
		else if (!strcmp(argv[i], "--filler"))
			fillers = count_arg(argc, argv, &i);
		else {
			fprintf(stderr, "unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!dlhammer)
		dlhammer = DLHAMMER_PATH;

	/*
	 * A non-empty signal mask (inherited by every thread) so a test can
	 * see that patching leaves it exactly as it was.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	if (pthread_sigmask(SIG_BLOCK, &block, NULL))
		die("pthread_sigmask");

	if (pipe(gate_pipe))
		die("pipe(gate)");
	if (sleeper) {
		start_thread(sleeper_thread, NULL);
		start_thread(reader_thread, NULL);
	}
	for (long i = 0; i < threads; i++)
		start_thread(compute_thread, NULL);
	for (long i = 0; i < churn; i++)
		start_thread(churn_thread, NULL);
	for (long i = 0; i < hmalloc; i++)
		start_thread(malloc_thread, (void *)(i + 1));
	for (long i = 0; i < hdlopen; i++)
		start_thread(dlopen_thread, (void *)dlhammer);
	if (fillers > MAX_FILLERS) {
		fprintf(stderr, "--filler: at most %d\n", MAX_FILLERS);
		return 2;
	}
	nr_fillers = fillers;
	for (long i = 0; i < fillers; i++)
		start_thread(filler_thread, (void *)i);

	printf("ready\n");
	fflush(stdout);
	/* After "ready", so even --exit-after 0 is seen starting. */
	if (exit_ms >= 0)
		start_thread(exit_thread, (void *)exit_ms);

	for (;;) {
		ssize_t n;

		errno = 0;
		n = getline(&line, &cap, stdin);
		if (n < 0) {
			if (errno == EINTR) {
				atomic_fetch_add(&eintr_count, 1);
				clearerr(stdin);
				continue;
			}
			break;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		handle(line);
	}
	free(line);
	return 0;
}
