/* SPDX-License-Identifier: MIT */
/* apply_stop.h - the function bench/apply_stop patches, and its bodies. */
#ifndef ULP_BENCH_APPLY_STOP_H
#define ULP_BENCH_APPLY_STOP_H

#define AS_OLD_BODY(x) ((x)*7 + 3)
#define AS_NEW_BODY(x) ((x)*5 + 1)

unsigned long as_work(unsigned long x);

#endif
