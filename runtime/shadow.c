/* SPDX-License-Identifier: MIT */
/*
 * Shadow variables (the kernel's klp_shadow_*): data a patch attaches to an
 * existing object (any address) under a numeric id, for fields the patched
 * code needs and the old structures lack.  They live in the runtime, so
 * they outlive any one patch and are shared by cumulative patches.
 *
 * One lock over a fixed hash table, as the kernel's spinlock: constructors
 * and destructors run with it held, so they must not use shadow variables
 * themselves.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <ulp/patch.h>

#include "runtime.h"

#define ULP_SHADOW_BUCKETS 1024

struct ulp_shadow {
	struct ulp_shadow *next;
	void *obj;
	unsigned long id;
	/* max_align_t-aligned, like malloc's memory */
	_Alignas(max_align_t) unsigned char data[];
};

static struct ulp_shadow *ulp_shadow_table[ULP_SHADOW_BUCKETS];
static pthread_mutex_t ulp_shadow_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t ulp_shadow_bucket(const void *obj, unsigned long id)
{
	uint64_t h = (uint64_t)(uintptr_t)obj * 0x9e3779b97f4a7c15ull ^ id * 0xff51afd7ed558ccdull;

	return (size_t)(h >> 32) % ULP_SHADOW_BUCKETS;
}

/* With the lock held: the link pointing at <obj, id>, or at the end of its chain. */
static struct ulp_shadow **ulp_shadow_find(void *obj, unsigned long id)
{
	struct ulp_shadow **pp = &ulp_shadow_table[ulp_shadow_bucket(obj, id)];

	while (*pp && ((*pp)->obj != obj || (*pp)->id != id))
		pp = &(*pp)->next;
	return pp;
}

ULP_RT_EXPORT void *ulp_shadow_get(void *obj, unsigned long id)
{
	struct ulp_shadow *s;

	pthread_mutex_lock(&ulp_shadow_lock);
	s = *ulp_shadow_find(obj, id);
	pthread_mutex_unlock(&ulp_shadow_lock);
	return s ? s->data : NULL;
}

static void *ulp_shadow_get_or_alloc_common(void *obj, unsigned long id, size_t size,
					    ulp_shadow_ctor_t ctor, void *ctor_data,
					    bool warn_on_exist)
{
	struct ulp_shadow *s, **pp;
	char line[160];
	int err;

	if (size > SIZE_MAX - sizeof(*s))
		return NULL;
	/* allocated outside the lock; dropped if another thread won meanwhile */
	s = calloc(1, sizeof(*s) + size);
	if (!s)
		return NULL;
	pthread_mutex_lock(&ulp_shadow_lock);
	pp = ulp_shadow_find(obj, id);
	if (*pp) {
		void *data = warn_on_exist ? NULL : (*pp)->data;

		pthread_mutex_unlock(&ulp_shadow_lock);
		free(s);
		if (warn_on_exist) {
			snprintf(line, sizeof(line), "ulp: Duplicate shadow variable <%p, %lx>\n",
				 obj, id);
			ulp_rt_log_line(line);
		}
		return data;
	}
	s->obj = obj;
	s->id = id;
	if (ctor) {
		err = ctor(obj, s->data, ctor_data);
		if (err) {
			pthread_mutex_unlock(&ulp_shadow_lock);
			free(s);
			snprintf(line, sizeof(line),
				 "ulp: Failed to construct shadow variable <%p, %lx> (%d)\n", obj,
				 id, err);
			ulp_rt_log_line(line);
			return NULL;
		}
	}
	*pp = s;
	pthread_mutex_unlock(&ulp_shadow_lock);
	return s->data;
}

ULP_RT_EXPORT void *ulp_shadow_alloc(void *obj, unsigned long id, size_t size,
				     ulp_shadow_ctor_t ctor, void *ctor_data)
{
	return ulp_shadow_get_or_alloc_common(obj, id, size, ctor, ctor_data, true);
}

ULP_RT_EXPORT void *ulp_shadow_get_or_alloc(void *obj, unsigned long id, size_t size,
					    ulp_shadow_ctor_t ctor, void *ctor_data)
{
	return ulp_shadow_get_or_alloc_common(obj, id, size, ctor, ctor_data, false);
}

ULP_RT_EXPORT void ulp_shadow_free(void *obj, unsigned long id, ulp_shadow_dtor_t dtor)
{
	struct ulp_shadow *s, **pp;

	pthread_mutex_lock(&ulp_shadow_lock);
	pp = ulp_shadow_find(obj, id);
	s = *pp;
	if (s) {
		*pp = s->next;
		if (dtor)
			dtor(obj, s->data);
	}
	pthread_mutex_unlock(&ulp_shadow_lock);
	free(s);
}

ULP_RT_EXPORT void ulp_shadow_free_all(unsigned long id, ulp_shadow_dtor_t dtor)
{
	struct ulp_shadow *gone = NULL;

	pthread_mutex_lock(&ulp_shadow_lock);
	for (size_t b = 0; b < ULP_SHADOW_BUCKETS; b++) {
		struct ulp_shadow **pp = &ulp_shadow_table[b];

		while (*pp) {
			struct ulp_shadow *s = *pp;

			if (s->id != id) {
				pp = &s->next;
				continue;
			}
			*pp = s->next;
			if (dtor)
				dtor(s->obj, s->data);
			s->next = gone;
			gone = s;
		}
	}
	pthread_mutex_unlock(&ulp_shadow_lock);
	while (gone) {
		struct ulp_shadow *next = gone->next;

		free(gone);
		gone = next;
	}
}
