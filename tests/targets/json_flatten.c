// SPDX-License-Identifier: MIT
/*
 * json_flatten.c - ulp_test_json: read one JSON document on stdin, print
 * every scalar as "PATH<TAB>VALUE", one per line, in document order, e.g.
 *
 *   .processes[0].pid	1234
 *   .processes[0].patches[0].name	"compute_fix"
 *   .processes[0].patches[0].enabled	true
 *
 * Empty arrays and objects print as [] and {}.  Strings keep their JSON
 * quotes, so a test compares against exact JSON text.  Exit 1 when stdin
 * is not valid JSON.  Lets the integration tests check `--json` output
 * without depending on jq.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void flatten(struct json_object *obj, char *path, size_t len, size_t cap)
{
	int type = json_object_get_type(obj);

	if (type == json_type_object) {
		if (json_object_object_length(obj) == 0) {
			printf("%s\t{}\n", path);
			return;
		}
		json_object_object_foreach(obj, key, val)
		{
			snprintf(path + len, cap - len, ".%s", key);
			flatten(val, path, strlen(path), cap);
			path[len] = '\0';
		}
	} else if (type == json_type_array) {
		size_t n = json_object_array_length(obj);

		if (n == 0) {
			printf("%s\t[]\n", path);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			snprintf(path + len, cap - len, "[%zu]", i);
			flatten(json_object_array_get_idx(obj, i), path, strlen(path), cap);
			path[len] = '\0';
		}
	} else {
		printf("%s\t%s\n", path,
		       json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	}
}

int main(void)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj = NULL;
	enum json_tokener_error err = json_tokener_continue;
	char buf[4096], path[4096] = "";
	size_t n;

	while (err == json_tokener_continue && (n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		obj = json_tokener_parse_ex(tok, buf, (int)n);
		err = json_tokener_get_error(tok);
	}
	if (err == json_tokener_continue) {
		/* End of input: let the tokener finish a trailing number. */
		obj = json_tokener_parse_ex(tok, "", 1);
		err = json_tokener_get_error(tok);
	}
	if (err != json_tokener_success || !obj) {
		fprintf(stderr, "ulp_test_json: invalid JSON: %s\n", json_tokener_error_desc(err));
		return 1;
	}
	flatten(obj, path, 0, sizeof(path));
	json_object_put(obj);
	json_tokener_free(tok);
	return 0;
}
