// SPDX-License-Identifier: MIT
/*
 * fix_price.c - a live patch for demo_server: compute_price() with the
 * missing 10% discount for 10 items or more (price(10) goes from 100 to
 * 90).  Written exactly like any ulp patch, see <ulp/patch.h>.
 */
#include <ulp/patch.h>

/* Same prototype as the function it replaces. */
static int new_compute_price(int quantity)
{
	int price = quantity * 10; /* UNIT_PRICE */

	if (quantity < 0)
		return -1;
	if (quantity >= 10)
		price -= price / 10;
	return price;
}

static int pre_patch(struct ulp_object *obj)
{
	ulp_log("pre_patch_callback: %s", ulp_object_describe(obj));
	return 0; /* a negative errno would refuse the patch */
}

static void post_unpatch(struct ulp_object *obj)
{
	ulp_log("post_unpatch_callback: %s", ulp_object_describe(obj));
}

static struct ulp_func main_funcs[] = {
	{ .old_name = "compute_price", .new_func = new_compute_price }, {}
};

static struct ulp_object objs[] = { { .name = NULL /* main */,
				      .funcs = main_funcs,
				      .callbacks = { .pre_patch = pre_patch,
						     .post_unpatch = post_unpatch } },
				    {} };

ULP_PATCH("fix_price", .objs = objs);
