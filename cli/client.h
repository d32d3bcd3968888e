/* SPDX-License-Identifier: MIT */
#ifndef ULPCTL_CLIENT_H
#define ULPCTL_CLIENT_H

#include <json-c/json.h>
#include <stdbool.h>

/* Send one request to ulpd and read its reply; prints its own errors. */
int ulpctl_request(const char *socket_path, struct json_object *req, struct json_object **reply);
/* The same with file (an open descriptor) sent along for ulpd to read. */
int ulpctl_request_file(const char *socket_path, struct json_object *req, int file,
			struct json_object **reply);

#endif
