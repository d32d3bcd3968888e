// SPDX-License-Identifier: MIT
/*
 * klp_target.c - the process the kernel livepatch selftest ports patch
 * (tests/integration/klp_*.sh): "vmlinux" is this program (ulp's object
 * "main"); the kernel's target modules are the shared objects libklp_mod.so
 * (klp_mod.c) and libklp_busy.so (klp_busy.c), dlopen()ed by SONAME (found
 * through this program's RUNPATH) and dlclose()d on command, like insmod /
 * rmmod.
 *
 * Prints "ready", then reads one command per line from stdin and answers
 * with exactly one line on stdout (flushed):
 *
 *   load mod | load busy      load mod=ok, or load mod=error: <dlerror()>
 *                             (dlopen(RTLD_NOW); error if already loaded)
 *   unload mod | unload busy  unload mod=ok, or unload mod=error: ...
 *                             (dlclose(); an error if the object is still
 *                             mapped afterwards, or if the busy thread has
 *                             not been released and joined)
 *   busy start MODE           busy start=ok (busy_start(MODE) of
 *                             libklp_busy.so: 0 returns at once, 1 blocks
 *                             in busy_work_func, 2 blocks in its callee
 *                             busy_wait_here) or busy start=error: ...
 *   busy release              busy release=ok (busy_release() + busy_join())
 *   busy tid                  busy tid=TID (the busy thread's, 0 if none yet)
 *   call main                 main=<klp_main_func()>   ("main:orig")
 *   call main2                main2=<klp_main2_func()> ("main2:orig"): a
 *                             second function of main, for two patches with
 *                             no function in common (test-livepatch.sh's
 *                             cmdline_proc_show and meminfo_proc_show)
 *   call mod                  mod=<klp_mod_func()>     ("mod:orig"), or
 *                             mod=not loaded
 *   ctor mod                  ctor=<klp_mod_ctor_saw()>: what klp_mod_func()
 *                             returned when libklp_mod.so's constructor ran,
 *                             or ctor=not loaded
 *   call hot                  hot=<klp_hot_func(1)>    (2; klp_hot patch: 1001)
 *   spin N                    spin=ok: N more threads call klp_hot_func(1)
 *                             in a loop, ~90% of their time inside it (it
 *                             busy-loops ~50-100 us; the pause outside is a
 *                             tenth of that)
 *   spin last                 spin last=V,V,... the distinct results of the
 *                             spinners' latest calls, ascending (none if no
 *                             spinner has returned yet)
 *   nocfi start               nocfi start=ok: a thread enters klp_outer_func
 *                             and blocks in read() there; released, it calls
 *                             klp_main_func through klp_nocfi_call, assembly
 *                             without unwind information
 *   nocfi tid                 nocfi tid=TID of that thread
 *   nocfi release             nocfi=<what klp_outer_func returned> (the
 *                             thread is released and joined)
 *   count                     count=<klp_count()>: 1, 2, 3, ... (a file-static
 *                             counter; patch_klp_symbols.so adds 10 per call
 *                             through references to the static counter and
 *                             to a static function)
 *   tls count                 tls=<klp_tls_count()>: this thread's own count
 *                             in a file-static thread-local variable (the
 *                             patch adds 100 through a reference to it)
 *   thread tls count          the same, once, in a new thread
 *   child start               child start=PID: forks a child that lives on,
 *                             answering the next two commands (a
 *                             patched process's child keeps its code)
 *   child main                child main=<klp_main_func() in the child>
 *   child exec                child exec=ok: the child execs sleep 1000
 *   quit                      exits 0, prints nothing
 *
 * Compiled at -O0 (see CMakeLists.txt): klp_main_func, klp_main2_func and
 * klp_hot_func keep prologues longer than ulp's 5-byte entry jump and every
 * call happens.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *klp_main_func(void);
const char *klp_main2_func(void);
int klp_hot_func(int x);

/* Iterations of klp_hot_func's busy loop (~50-100 us here at -O0). */
#define KLP_HOT_SPINS 200000L
#define MAX_SPINNERS 256

__attribute__((noipa, used)) const char *klp_main_func(void)
{
	return "main:orig";
}

__attribute__((noipa, used)) const char *klp_main2_func(void)
{
	return "main2:orig";
}

/* File-static state a realistic fix has to reach (patch_klp_symbols.c). */
static int klp_counter;

static __attribute__((noipa, used)) int klp_counter_step(void)
{
	return 1;
}

__attribute__((noipa, used)) int klp_count(void)
{
	/* a store first: the call stays out of the bytes the entry jump displaces */
	volatile int times = 1;

	klp_counter += klp_counter_step() * times;
	return klp_counter;
}

static __thread int klp_tls_counter;

__attribute__((noipa, used)) int klp_tls_count(void)
{
	volatile int times = 1; /* as in klp_count */

	klp_tls_counter += times;
	return klp_tls_counter;
}

static void *tls_count_thread(void *arg)
{
	*(int *)arg = klp_tls_count();
	return NULL;
}

static void cmd_thread_tls_count(void)
{
	pthread_t t;
	int v = -1;

	if (pthread_create(&t, NULL, tls_count_thread, &v) == 0)
		pthread_join(t, NULL);
	printf("thread tls=%d\n", v);
}

/* Calls fn with no CFI at all, as hand-written assembly or JIT code may. */
const char *klp_nocfi_call(const char *(*fn)(void));
__asm__(".text\n"
	".globl klp_nocfi_call\n"
	"klp_nocfi_call:\n"
	"	sub $8, %rsp\n"
	"	call *%rdi\n"
	"	add $8, %rsp\n"
	"	ret\n");

static int nocfi_pipe[2] = { -1, -1 };
static pthread_t nocfi_thread;
static atomic_int nocfi_tid;

/*
 * Patched together with klp_main_func (patch_klp_nocfi.c): a thread inside
 * the old one must get the old klp_main_func too, even though below its
 * call the stack has a frame no unwinder can read reliably.
 */
__attribute__((noipa, used)) const char *klp_outer_func(void)
{
	char c;

	if (read(nocfi_pipe[0], &c, 1) != 1)
		return "error: read";
	return klp_nocfi_call(klp_main_func);
}

static void *nocfi_main(void *arg)
{
	atomic_store(&nocfi_tid, (int)gettid());
	*(const char **)arg = klp_outer_func();
	return NULL;
}

static const char *nocfi_result;

static void cmd_nocfi_start(void)
{
	int err;

	if (nocfi_pipe[0] >= 0 || pipe(nocfi_pipe) < 0) {
		printf("nocfi start=error: %s\n", nocfi_pipe[0] >= 0 ? "started" : strerror(errno));
		return;
	}
	err = pthread_create(&nocfi_thread, NULL, nocfi_main, &nocfi_result);
	printf("nocfi start=%s\n", err ? strerror(err) : "ok");
}

static void cmd_nocfi_release(void)
{
	char c = 'g';

	if (nocfi_pipe[1] < 0 || write(nocfi_pipe[1], &c, 1) != 1) {
		printf("nocfi=error: not started\n");
		return;
	}
	pthread_join(nocfi_thread, NULL);
	close(nocfi_pipe[0]);
	close(nocfi_pipe[1]);
	nocfi_pipe[0] = nocfi_pipe[1] = -1;
	printf("nocfi=%s\n", nocfi_result);
}

__attribute__((noipa, used)) int klp_hot_func(int x)
{
	for (volatile long i = 0; i < KLP_HOT_SPINS; i++)
		;
	return x + 1;
}

/* The short pause between two calls, outside every patched function. */
static __attribute__((noipa)) void spin_outside(void)
{
	for (volatile long i = 0; i < KLP_HOT_SPINS / 10; i++)
		;
}

static atomic_int spin_last[MAX_SPINNERS];
static int nr_spinners;

static void *spinner(void *arg)
{
	atomic_int *last = arg;

	for (;;) {
		atomic_store(last, klp_hot_func(1));
		spin_outside();
	}
	return NULL;
}

static int start_spinners(int n)
{
	pthread_t t;
	int err;

	if (n <= 0 || nr_spinners + n > MAX_SPINNERS)
		return EINVAL;
	for (int i = 0; i < n; i++) {
		atomic_store(&spin_last[nr_spinners], -1);
		err = pthread_create(&t, NULL, spinner, &spin_last[nr_spinners]);
		if (err)
			return err;
		pthread_detach(t);
		nr_spinners++;
	}
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static void print_spin_last(void)
{
	int vals[MAX_SPINNERS], n = 0;

	for (int i = 0; i < nr_spinners; i++) {
		int v = atomic_load(&spin_last[i]);

		if (v != -1)
			vals[n++] = v;
	}
	qsort(vals, (size_t)n, sizeof(vals[0]), cmp_int);
	printf("spin last=");
	if (!n)
		printf("none");
	for (int i = 0, printed = 0; i < n; i++) {
		if (i && vals[i] == vals[i - 1])
			continue;
		printf("%s%d", printed++ ? "," : "", vals[i]);
	}
	printf("\n");
}

/* A dlopen()ed object: "mod" or "busy". */
struct lib {
	const char *key;
	const char *soname;
	void *handle;
};

static struct lib libs[] = {
	{ "mod", "libklp_mod.so", NULL },
	{ "busy", "libklp_busy.so", NULL },
};

static struct lib *find_lib(const char *key)
{
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
		if (!strcmp(libs[i].key, key))
			return &libs[i];
	return NULL;
}

static void *lib_sym(const char *key, const char *name)
{
	struct lib *l = find_lib(key);

	return l && l->handle ? dlsym(l->handle, name) : NULL;
}

static int busy_call(const char *name)
{
	int (*fn)(void) = (int (*)(void))lib_sym("busy", name);

	return fn ? fn() : -ENOENT;
}

static void cmd_load(const char *key)
{
	struct lib *l = find_lib(key);
	const char *err;

	if (!l) {
		printf("load %s=error: unknown object\n", key);
		return;
	}
	if (l->handle) {
		printf("load %s=error: already loaded\n", key);
		return;
	}
	dlerror();
	l->handle = dlopen(l->soname, RTLD_NOW);
	if (l->handle) {
		printf("load %s=ok\n", key);
		return;
	}
	err = dlerror();
	printf("load %s=error: %s\n", key, err ? err : "dlopen failed");
}

/*
 * fork, dlopen the mod in the child, and report what its klp_mod_func()
 * returns there: a forked child shares the runtime's channel to ulpd but is
 * not the process ulpd patched.
 */
static void cmd_fork_load_mod(void)
{
	char buf[128] = "";
	int fds[2], status;
	ssize_t n;
	pid_t child;

	if (pipe(fds) < 0 || (child = fork()) < 0) {
		printf("fork load mod=error: %s\n", strerror(errno));
		return;
	}
	if (child == 0) {
		void *h = dlopen("libklp_mod.so", RTLD_NOW);
		const char *(*fn)(void) =
			h ? (const char *(*)(void))dlsym(h, "klp_mod_func") : NULL;
		const char *err = h ? NULL : dlerror();

		n = snprintf(buf, sizeof(buf), "%s%s",
			     fn ? "mod=" : "error: ", fn ? fn() : (err ? err : "no klp_mod_func"));
		if (write(fds[1], buf, (size_t)n) < 0)
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	waitpid(child, &status, 0);
	buf[n > 0 ? n : 0] = '\0';
	printf("fork load mod=%s\n", buf[0] ? buf : "error: no answer from the child");
}

/* The long-lived forked child ("child start"): its end of two pipes. */
static pid_t child_pid;
static int child_req = -1, child_ans = -1;

/* In the child: one request byte at a time, 'm' call klp_main_func, 'x' exec sleep. */
static void child_serve(int req, int ans)
{
	char c, buf[128];

	while (read(req, &c, 1) == 1) {
		if (c == 'x') {
			execl("/bin/sleep", "sleep", "1000", (char *)NULL);
			_exit(3);
		}
		snprintf(buf, sizeof(buf), "%s\n", klp_main_func());
		if (write(ans, buf, strlen(buf)) < 0)
			break;
	}
	_exit(0);
}

static void cmd_child_start(void)
{
	int req[2], ans[2];

	if (child_pid > 0 || pipe(req) < 0 || pipe(ans) < 0 || (child_pid = fork()) < 0) {
		printf("child start=error: %s\n", child_pid > 0 ? "running" : strerror(errno));
		return;
	}
	if (child_pid == 0) {
		close(req[1]);
		close(ans[0]);
		child_serve(req[0], ans[1]);
	}
	close(req[0]);
	close(ans[1]);
	child_req = req[1];
	child_ans = ans[0];
	printf("child start=%d\n", child_pid);
}

static void cmd_child_main(void)
{
	char buf[128];
	ssize_t n;

	if (child_pid <= 0 || write(child_req, "m", 1) != 1 ||
	    (n = read(child_ans, buf, sizeof(buf) - 1)) <= 0) {
		printf("child main=error: no child\n");
		return;
	}
	buf[n] = '\0';
	printf("child main=%s", buf);
}

static void cmd_child_exec(void)
{
	if (child_pid <= 0 || write(child_req, "x", 1) != 1) {
		printf("child exec=error: no child\n");
		return;
	}
	printf("child exec=ok\n");
}

static void *call_main_thread(void *arg)
{
	*(const char **)arg = klp_main_func();
	return NULL;
}

/* A new thread's very first call: in which state did it start? */
static void cmd_thread_call_main(void)
{
	const char *result = NULL;
	pthread_t t;
	int err = pthread_create(&t, NULL, call_main_thread, &result);

	if (err) {
		printf("thread main=error: %s\n", strerror(err));
		return;
	}
	pthread_join(t, NULL);
	printf("thread main=%s\n", result);
}

static void cmd_unload(const char *key)
{
	struct lib *l = find_lib(key);
	void *again;

	if (!l || !l->handle) {
		printf("unload %s=error: not loaded\n", key);
		return;
	}
	if (!strcmp(key, "busy") && busy_call("busy_running") > 0) {
		printf("unload busy=error: the busy thread has not been released\n");
		return;
	}
	if (dlclose(l->handle)) {
		const char *err = dlerror();

		printf("unload %s=error: %s\n", key, err ? err : "dlclose failed");
		return;
	}
	l->handle = NULL;
	/* It must really be gone (the kernel's module going). */
	again = dlopen(l->soname, RTLD_NOW | RTLD_NOLOAD);
	if (again) {
		dlclose(again);
		printf("unload %s=error: %s is still loaded after dlclose()\n", key, l->soname);
		return;
	}
	printf("unload %s=ok\n", key);
}

static void cmd_busy_start(int mode)
{
	int (*start)(int) = (int (*)(int))lib_sym("busy", "busy_start");
	int err;

	if (!start) {
		printf("busy start=error: libklp_busy.so not loaded\n");
		return;
	}
	err = start(mode);
	if (err)
		printf("busy start=error: %s\n", strerror(-err));
	else
		printf("busy start=ok\n");
}

static void cmd_busy_release(void)
{
	int err = busy_call("busy_release");

	if (!err)
		err = busy_call("busy_join");
	if (err)
		printf("busy release=error: %s\n", strerror(-err));
	else
		printf("busy release=ok\n");
}

static void cmd_call_mod(void)
{
	const char *(*fn)(void) = (const char *(*)(void))lib_sym("mod", "klp_mod_func");

	printf("mod=%s\n", fn ? fn() : "not loaded");
}

static void cmd_ctor_mod(void)
{
	const char *(*fn)(void) = (const char *(*)(void))lib_sym("mod", "klp_mod_ctor_saw");

	printf("ctor=%s\n", fn ? fn() : "not loaded");
}

int main(void)
{
	char line[256], key[32];
	int n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (sscanf(line, "load %31s", key) == 1) {
			cmd_load(key);
		} else if (!strcmp(line, "tls count")) {
			printf("tls=%d\n", klp_tls_count());
		} else if (!strcmp(line, "thread tls count")) {
			cmd_thread_tls_count();
		} else if (!strcmp(line, "count")) {
			printf("count=%d\n", klp_count());
		} else if (!strcmp(line, "nocfi start")) {
			cmd_nocfi_start();
		} else if (!strcmp(line, "nocfi tid")) {
			printf("nocfi tid=%d\n", atomic_load(&nocfi_tid));
		} else if (!strcmp(line, "nocfi release")) {
			cmd_nocfi_release();
		} else if (!strcmp(line, "thread call main")) {
			cmd_thread_call_main();
		} else if (!strcmp(line, "fork load mod")) {
			cmd_fork_load_mod();
		} else if (!strcmp(line, "child start")) {
			cmd_child_start();
		} else if (!strcmp(line, "child main")) {
			cmd_child_main();
		} else if (!strcmp(line, "child exec")) {
			cmd_child_exec();
		} else if (sscanf(line, "unload %31s", key) == 1) {
			cmd_unload(key);
		} else if (sscanf(line, "busy start %d", &n) == 1) {
			cmd_busy_start(n);
		} else if (!strcmp(line, "busy release")) {
			cmd_busy_release();
		} else if (!strcmp(line, "busy tid")) {
			n = busy_call("busy_tid");
			printf("busy tid=%d\n", n < 0 ? 0 : n);
		} else if (!strcmp(line, "call main")) {
			printf("main=%s\n", klp_main_func());
		} else if (!strcmp(line, "call main2")) {
			printf("main2=%s\n", klp_main2_func());
		} else if (!strcmp(line, "call mod")) {
			cmd_call_mod();
		} else if (!strcmp(line, "ctor mod")) {
			cmd_ctor_mod();
		} else if (!strcmp(line, "call hot")) {
			printf("hot=%d\n", klp_hot_func(1));
		} else if (sscanf(line, "spin %d", &n) == 1) {
			int err = start_spinners(n);

			if (err)
				printf("spin=error: %s\n", strerror(err));
			else
				printf("spin=ok\n");
		} else if (!strcmp(line, "spin last")) {
			print_spin_last();
		} else if (!strcmp(line, "quit")) {
			return 0;
		} else {
			printf("error: unknown command '%s'\n", line);
		}
		fflush(stdout);
	}
	return 0;
}
