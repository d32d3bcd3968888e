/* SPDX-License-Identifier: MIT */
/*
 * What the engine and libulp-rt.so share: the layout of the runtime's
 * exported `ulp_rt_info`, which the engine reads and writes in the target's
 * memory, and the names of the functions it calls there on the worker thread.
 */
#ifndef ULP_RT_ABI_H
#define ULP_RT_ABI_H

#include <stdint.h>

#define ULP_RT_MAGIC 0x554c5052u /* "ULPR" */
#define ULP_RT_ABI 8
#define ULP_RT_SONAME "libulp-rt.so.0"
/* In a mapping's name in /proc/PID/maps, by path or as a memfd ("/memfd:libulp-rt.so") */
#define ULP_RT_MAPPED "libulp-rt.so"
#define ULP_RT_INFO_SYMBOL "ulp_rt_info"
#define ULP_RT_SCRATCH_SIZE 4096
#define ULP_RT_LOG_SIZE 65536
#define ULP_RT_WATCH_SIZE 4096
#define ULP_RT_SELF_RANGES 512
#define ULP_RT_SELF_ACTIVE 0x100u
#define ULP_RT_SELF_DONE_MAX 4096
#define ULP_RT_MAX_PATCHES 64
#define ULP_RT_TLS_REFS 256
/* most address ranges ulp_rt_load_near() reserves */
#define ULP_RT_RESERVE_MAX 128
/* room for ulpd's saved state (one of two copies) */
#define ULP_RT_SAVED_SIZE (192 * 1024)
/* most sites of one code change the runtime guards (trap_guard.c) */
#define ULP_RT_TRAP_SITES 1024

struct ulp_rt_info {
	uint32_t magic;
	uint32_t abi;
	int32_t worker_tid; /* the thread the engine runs remote calls on */
	int32_t tls_offset; /* state byte: %fs base + tls_offset */
	uint64_t tls_init; /* address of the state byte in the TLS init image */
	uint32_t ready; /* set last by the constructor */
	/*
	 * The worker's channel (see "Worker channel" below): the target's fd
	 * of ulpd's end, which ulpd copies with pidfd_getfd().  The target
	 * keeps it open, so a restarted ulpd takes it again.
	 */
	int32_t worker_fd;
	/* remote-callable entry points (addresses in the target) */
	uint64_t fn_load; /* void *ulp_rt_load(const char *path) */
	uint64_t fn_unload; /* int ulp_rt_unload(void *handle) */
	uint64_t fn_mmap; /* void *ulp_rt_mmap(void *addr, size_t len, int prot) */
	uint64_t fn_munmap; /* int ulp_rt_munmap(void *addr, size_t len) */
	/*
	 * void *ulp_rt_load_near(const char *path, const uint64_t *reserve, size_t nr):
	 * dlopen with the nr (start, length) address ranges held by PROT_NONE
	 * reservations meanwhile, so the loader maps the patch where ulpd chose.
	 */
	uint64_t fn_load_near;
	/*
	 * int ulp_rt_sync_core(void): membarrier(PRIVATE_EXPEDITED_SYNC_CORE),
	 * registering first; 0 or -errno.
	 */
	uint64_t fn_sync_core;
	/*
	 * int ulp_rt_hook_open(uint64_t r_debug): start the loader hook's
	 * channel (see "Loader hook" below); returns the target's fd of
	 * ulpd's end, which ulpd copies with pidfd_getfd(), or -errno.
	 */
	uint64_t fn_hook_open;
	/* int ulp_rt_hook_release(int fd): close the target's copy of ulpd's end */
	uint64_t fn_hook_release;
	/* where ld.so's _dl_debug_state() is made to jump */
	uint64_t hook_entry;
	/* int ulp_rt_trap_guard(int on): see trap_sites */
	uint64_t fn_trap_guard;
	/*
	 * int ulp_rt_memfd(const char *name): an empty sealable memfd, which
	 * ulpd fills with a patch (pidfd_getfd), seals, and has loaded as
	 * /proc/self/fd/N; int ulp_rt_close(int fd) once it is unloaded.
	 */
	uint64_t fn_memfd;
	uint64_t fn_close;
	/*
	 * int ulp_rt_worker_start(void): a forked child has no worker (nor
	 * channel) until ulpd calls this on one of its threads to adopt it.
	 */
	uint64_t fn_worker_start;
	/*
	 * Names of the objects patches are for, each NUL-terminated, an empty
	 * name last: only loads and unloads of these are reported to ulpd.
	 */
	char watch[ULP_RT_WATCH_SIZE];
	/*
	 * Threads switching themselves (runtime/self_switch.c).  A dispatch
	 * sends a thread that has not switched to self_check_entry, once per
	 * transition; it switches to generation g if self_state is
	 * ULP_RT_SELF_ACTIVE | g and no return address on its stack lies in
	 * self_ranges[0..self_nr).  ulpd writes the ranges, then self_state;
	 * clears self_state before it changes them.  A thread between
	 * self_check_uncounted[i][0] and [i][1] is on its way back to a slot
	 * without being counted in *checks_running.
	 */
	/*
	 * The installed patches' descriptors (struct ulp_patch *), in stack
	 * order, and the index of the one in transition (UINT32_MAX: none),
	 * for ulp_get_prev_state().
	 */
	/*
	 * Thread-local variables patches refer to (struct ulp_symbol_ref): the
	 * owning object's load bias and the variable's offset in its TLS block,
	 * written by ulpd; the object's TLS module id, found by the runtime.
	 * A patch gets the address of an entry and passes it to ulp_tls_addr().
	 */
	uint64_t tls_refs[ULP_RT_TLS_REFS][3];
	uint64_t patches[ULP_RT_MAX_PATCHES];
	uint32_t nr_patches;
	uint32_t transition_patch;
	uint64_t self_check_entry; /* 0: the runtime cannot (no xsave) */
	uint64_t self_check_uncounted[2][2];
	uint64_t checks_running; /* address of a uint32_t */
	uint32_t self_state;
	uint32_t self_nr;
	uint64_t self_ranges[ULP_RT_SELF_RANGES][2];
	/*
	 * Threads that switched themselves since self_state was last set:
	 * ulpd counts them without stopping them.  An entry's tid is written
	 * last; 0 means not written yet.
	 */
	uint32_t self_done_nr;
	uint32_t pad2;
	struct {
		int32_t tid;
		uint32_t gen;
	} self_done[ULP_RT_SELF_DONE_MAX];
	/* event log written by ulp_log(): a byte ring, read by the engine */
	uint64_t log_head; /* total bytes ever written */
	char log[ULP_RT_LOG_SIZE];
	/* arguments and error text passed with remote calls */
	char scratch[ULP_RT_SCRATCH_SIZE];
	/*
	 * A code change under way (libpatch/poke.c): each site and where a
	 * thread trapped on its int3 goes.  With fn_trap_guard(1) the runtime
	 * handles SIGTRAP on them itself, should ulpd die meanwhile.
	 */
	uint32_t nr_trap_sites;
	uint32_t pad3;
	uint64_t trap_sites[ULP_RT_TRAP_SITES][2];
	/*
	 * ulpd's view of this process (libpatch/recovery.c), for a ulpd
	 * restarted after a crash: two copies, written in turn; a copy is
	 * valid when its sum matches, and the valid one with the higher seq
	 * is the newer.  seq is written last.
	 */
	struct ulp_rt_saved {
		uint64_t seq;
		uint64_t len;
		uint64_t sum;
		char data[ULP_RT_SAVED_SIZE];
	} saved[2];
};

/*
 * Worker channel (a SOCK_SEQPACKET pair): ulpd sends one ulp_worker_call,
 * the worker runs fn(args) and answers with a ulp_worker_result of the same
 * seq.  No thread is stopped or hijacked for it, so a ulpd that dies
 * during a call harms nothing: the call completes, its result waits in the
 * channel, and the next ulpd skips results of calls it did not send.
 */
#define ULP_WORKER_ARGS 6

struct ulp_worker_call {
	uint64_t seq;
	uint64_t fn;
	uint64_t args[ULP_WORKER_ARGS];
};

struct ulp_worker_result {
	uint64_t seq;
	uint64_t ret;
};

/*
 * Loader hook channel (a SOCK_SEQPACKET pair): the hook, on the thread that
 * calls dlopen()/dlclose(), sends one ulp_hook_event when watched objects
 * came (mapped, not yet relocated, constructors not run) or went
 * (unmapped), then obeys ulp_hook_cmds until DONE or REJECT.  If ulpd is
 * gone the send fails or the channel reads EOF, and the hook returns at once.
 */
#define ULP_HOOK_MAX_OBJS 16

enum ulp_hook_kind {
	ULP_HOOK_COMING = 1,
	ULP_HOOK_GOING = 2,
};

struct ulp_hook_obj {
	uint64_t l_addr; /* load bias */
	char name[256]; /* DT_SONAME, else the file name */
	char path[512]; /* as the loader has it (l_name) */
};

struct ulp_hook_event {
	uint32_t kind; /* enum ulp_hook_kind */
	uint32_t nr;
	struct ulp_hook_obj objs[ULP_HOOK_MAX_OBJS];
};

enum ulp_hook_op {
	ULP_HOOK_CALL = 1, /* run fn(arg) on this thread, answer with a ulp_hook_result */
	ULP_HOOK_DONE = 2, /* return from the hook */
	ULP_HOOK_REJECT = 3, /* make the dlopen fail with msg, if it can still fail */
};

struct ulp_hook_cmd {
	uint32_t op; /* enum ulp_hook_op */
	uint32_t pad;
	uint64_t fn, arg;
	char msg[512];
};

struct ulp_hook_result {
	int64_t ret;
};

#endif
