/* SPDX-License-Identifier: MIT */
/*
 * Error context: engine functions return 0 or a negative errno and leave a
 * human-readable explanation for the user in a per-thread buffer.
 */
#ifndef ULP_ERROR_H
#define ULP_ERROR_H

/* Record the message and return err (a negative errno) for `return ulp_errorf(...)`. */
int ulp_errorf(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with more context: "<prefix>: <old message>". */
int ulp_error_prefix(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message set on this thread ("" if none). */
const char *ulp_last_error(void);

void ulp_error_clear(void);

/*
 * Best-effort work that must not change the message of an error being
 * returned past it: ulp_error_stash() takes the message out (and clears
 * it), ulp_error_unstash() puts it back in place of whatever the work left.
 */
struct ulp_error_stash {
	char msg[1024];
};
void ulp_error_stash(struct ulp_error_stash *s);
void ulp_error_unstash(const struct ulp_error_stash *s);

/*
 * With ULP_TRACE=1 in the environment: a timestamped line on stderr, to see
 * where an operation spends its time.  Otherwise nothing.
 */
void ulp_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
