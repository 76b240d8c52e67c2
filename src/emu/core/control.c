/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /_emu/... on the cloud port: the test control endpoint (documented in docs/emulator.md).
 *
 *   GET    /_emu/healthz                 "ok"
 *   GET    /_emu/faults                  {"faults": [...]}
 *   POST   /_emu/faults                  a fault, or an array of faults -> the fault(s) with ids
 *   DELETE /_emu/faults[/ID]             all faults, or one
 *   POST   /_emu/fingerprint             {"zone", "instance"[, "networkInterface"]}: a new nic
 *                                        fingerprint under the client's feet -> {"fingerprint"}
 *   GET    /_emu/state                   the whole state, as --state stores it
 *   PUT    /_emu/state                   replaces it ("compute" and/or "kube" parts)
 *   POST   /_emu/state/save              commits to --state FILE now (lazy rows included)
 *   GET    /_emu/state/status            --state: commits, failures, unsaved changes
 *   GET    /_emu/state/check             --state: the database compared with memory
 *   GET    /_emu/stats[?reset=true]      request counts; DELETE /_emu/stats zeroes them
 *   *      /_emu/dataplane[/...]         the data plane (--dataplane, dataplane/dataplane.c)
 *
 * Every request needs "Authorization: Bearer TOKEN" with the token of --control-token-file
 * (401 otherwise); without that flag the endpoint is off (403): it hands out the cluster's
 * keys and replaces the whole state, so nobody may use it unless its owner said so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "emu/compute/compute.h"
#include "emu/core/faults.h"

static int error(struct emu_request *req, unsigned status, const char *msg)
{
	return emu_reply_json(
	    req, status, json_pack("{s:{s:i, s:s}}", "error", "code", (int)status, "message", msg));
}

static json_t *body_json(struct emu_request *req)
{
	return req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL)
			     : NULL;
}

static bool is(const struct emu_request *req, const char *method, const char *path)
{
	return strcmp(req->method, method) == 0 && strcmp(req->path, path) == 0;
}

static int faults_post(struct emu_request *req)
{
	json_t *spec = body_json(req), *out, *one, *e;
	char err[256];
	size_t i;

	if (!spec)
		return error(req, 400,
			     "the body must be a fault (JSON object) or an array of faults");
	if (json_is_array(spec)) {
		out = json_array();
		json_array_foreach(spec, i, e)
		{
			one = emu_faults_add(req->emu, e, err, sizeof(err));
			if (!one) {
				char msg[300];

				snprintf(msg, sizeof(msg), "fault %zu: %s", i, err);
				json_decref(out);
				json_decref(spec);
				return error(req, 400, msg);
			}
			json_array_append_new(out, one);
		}
		out = json_pack("{s:o}", "faults", out);
	} else {
		out = emu_faults_add(req->emu, spec, err, sizeof(err));
		if (!out) {
			json_decref(spec);
			return error(req, 400, err);
		}
	}
	json_decref(spec);
	return emu_reply_json(req, 200, out);
}

static int fingerprint_post(struct emu_request *req)
{
	json_t *spec = body_json(req);
	const char *zone = jstr(spec, "zone"), *inst = jstr(spec, "instance");
	const char *fp;
	int ret;

	if (!zone || !inst) {
		json_decref(spec);
		return error(req, 400,
			     "want {\"zone\": Z, \"instance\": NAME[, \"networkInterface\": NIC]}");
	}
	fp = instances_bump_fingerprint(compute_of(req->emu), zone, inst,
					jstr(spec, "networkInterface"));
	if (!fp)
		ret = error(req, 404, "no such instance or network interface");
	else
		ret = emu_reply_json(req, 200, json_pack("{s:s}", "fingerprint", fp));
	json_decref(spec);
	return ret;
}

/* A commit failed: the change is in memory and retried, but not saved yet. */
static int state_unsaved(struct emu_request *req)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "--state %s: cannot save: %s", req->emu->opt.state_path,
		 emu_state_error(req->emu));
	return error(req, 503, msg);
}

static json_t *state_doc(struct emu *emu)
{
	return json_pack("{s:i, s:o, s:o}", "version", 1, "compute", emu_compute_dump(emu), "kube",
			 emu_kube_dump(emu));
}

static int state_put(struct emu_request *req)
{
	json_t *doc = body_json(req);
	int ret = 0;

	if (!json_is_object(doc) || (json_object_get(doc, "version") &&
				     json_integer_value(json_object_get(doc, "version")) != 1)) {
		json_decref(doc);
		return error(req, 400, "not a talos-gcp-emu state document (version 1)");
	}
	if (json_object_get(doc, "compute"))
		ret = emu_compute_load(req->emu, json_object_get(doc, "compute"));
	if (ret == 0 && json_object_get(doc, "kube"))
		ret = emu_kube_load(req->emu, json_object_get(doc, "kube"));
	json_decref(doc);
	if (ret < 0) {
		char msg[128];

		snprintf(msg, sizeof(msg), "cannot load the state: %s", strerror(-ret));
		return error(req, 400, msg);
	}
	log_info("state replaced through /_emu/state");
	emu_state_changed(req->emu);
	emu_dataplane_changed(req->emu);
	if (emu_state_flush(req->emu, EMU_STATE_REVEAL) < 0)
		return state_unsaved(req);
	return emu_reply_json(req, 200, json_pack("{s:b}", "loaded", 1));
}

static int state_save(struct emu_request *req)
{
	struct emu *emu = req->emu;
	json_t *report;

	if (!emu->opt.state_path)
		return error(req, 400, "the emulator runs without --state");
	/* The check commits everything first, the lazy rows too. */
	if (emu_state_check(emu, &report) < 0)
		return state_unsaved(req);
	json_decref(report);
	return emu_reply_json(req, 200, json_pack("{s:s}", "saved", emu->opt.state_path));
}

static int state_check(struct emu_request *req)
{
	json_t *report;
	int ret;

	if (!req->emu->opt.state_path)
		return error(req, 400, "the emulator runs without --state");
	ret = emu_state_check(req->emu, &report);
	if (ret < 0)
		return state_unsaved(req);
	return emu_reply_json(req, 200, report);
}

/* Constant time: the comparison says nothing about how much of a guess was right. */
static bool token_equal(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char d = na != nb;

	for (size_t i = 0; i < na && i < nb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

int emu_control_authorize(struct emu_request *req)
{
	const char *h = emu_request_header(req, "Authorization");

	if (!req->emu->control_token[0]) {
		error(
		    req, 403,
		    "the control endpoint is off: start talos-gcp-emu with --control-token-file FILE");
		return 1;
	}
	if (h && strncasecmp(h, "Bearer ", 7) == 0 && token_equal(h + 7, req->emu->control_token))
		return 0;
	emu_reply_header(req, "WWW-Authenticate", "Bearer realm=\"talos-gcp-emu control\"");
	error(
	    req, 401,
	    "the control endpoint wants Authorization: Bearer TOKEN, the token of --control-token-file");
	return 1;
}

int emu_control_handle(struct emu_request *req)
{
	struct emu *emu = req->emu;
	const char *reset;

	if (is(req, "GET", "/_emu/healthz"))
		return emu_reply(req, 200, "text/plain", "ok\n", 3);
	if (is(req, "GET", "/_emu/faults"))
		return emu_reply_json(req, 200, emu_faults_list(emu));
	if (is(req, "POST", "/_emu/faults"))
		return faults_post(req);
	if (is(req, "DELETE", "/_emu/faults")) {
		emu_faults_clear(emu);
		return emu_reply_json(req, 200, json_pack("{s:[]}", "faults"));
	}
	if (strcmp(req->method, "DELETE") == 0 && strncmp(req->path, "/_emu/faults/", 13) == 0) {
		char *end;
		long id = strtol(req->path + 13, &end, 10);

		if (*end || end == req->path + 13 || emu_faults_delete(emu, id) < 0)
			return error(req, 404, "no such fault");
		return emu_reply_json(req, 200, json_pack("{s:I}", "deleted", (json_int_t)id));
	}
	if (is(req, "POST", "/_emu/fingerprint"))
		return fingerprint_post(req);
	if (is(req, "GET", "/_emu/state"))
		return emu_reply_json(req, 200, state_doc(emu));
	if (is(req, "PUT", "/_emu/state"))
		return state_put(req);
	if (is(req, "POST", "/_emu/state/save"))
		return state_save(req);
	if (is(req, "GET", "/_emu/state/status"))
		return emu_reply_json(req, 200, emu_state_status(emu));
	if (is(req, "GET", "/_emu/state/check"))
		return state_check(req);
	if (is(req, "GET", "/_emu/stats")) {
		reset = emu_request_query(req, "reset");
		return emu_reply_json(req, 200,
				      emu_stats(emu, reset && (strcmp(reset, "true") == 0 ||
							       strcmp(reset, "1") == 0)));
	}
	if (is(req, "DELETE", "/_emu/stats")) {
		json_decref(emu_stats(emu, true));
		return emu_reply_json(req, 200, json_pack("{s:b}", "reset", 1));
	}
	if (strcmp(req->path, "/_emu/dataplane") == 0 ||
	    strncmp(req->path, "/_emu/dataplane/", 16) == 0)
		return emu_dataplane_control(req);
	return error(req, 404, "unknown control endpoint (see docs/emulator.md)");
}
