/* SPDX-License-Identifier: MIT */
#ifndef ULP_BENCH_FLEET_H
#define ULP_BENCH_FLEET_H

/* The function patch_fleet.so replaces (fleet_func.c). */
int fleet_func(int x);

#endif
