/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube-get: a test-only mini client over src/kube, for the Python integration tests of the
 * kubeconfig / in-cluster loader and the Kubernetes client against talos-gcp-emu.
 *
 *   kube-get [--kubeconfig F] [--context C] [--limit N] [--uid U] VERB PATH [JSON]
 *
 * VERB: list (prints "items=N names=a,b,... resourceVersion=RV"), get, create, patch-merge,
 * patch-strategic, patch-json (print the resulting object as compact JSON), delete.
 * Every run ends with "requests=N". Exit 0 on success, 1 when the API call failed, 2 when
 * the configuration could not be loaded; errors are one line on stderr:
 * "kube-get: ERRNO: message".
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kube/client.h"

static const char *errno_name(int e)
{
	static const struct {
		int e;
		const char *name;
	} names[] = {
	    {EACCES, "EACCES"},           {ENOENT, "ENOENT"},
	    {EINVAL, "EINVAL"},           {EBADMSG, "EBADMSG"},
	    {EEXIST, "EEXIST"},           {ESTALE, "ESTALE"},
	    {EKEYEXPIRED, "EKEYEXPIRED"}, {EOPNOTSUPP, "EOPNOTSUPP"},
	    {EPROTO, "EPROTO"},           {ECONNREFUSED, "ECONNREFUSED"},
	    {ETIMEDOUT, "ETIMEDOUT"},     {EIO, "EIO"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == e)
			return names[i].name;
	return "E?";
}

struct names {
	unsigned long n;
	char buf[4096];
	size_t len;
};

static int on_item(void *arg, json_t *item)
{
	struct names *s = arg;
	const char *name =
	    json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
	int w;

	s->n++;
	w = snprintf(s->buf + s->len, sizeof(s->buf) - s->len, "%s%s", s->len ? "," : "",
		     name ? name : "?");
	if (w > 0 && (size_t)w < sizeof(s->buf) - s->len)
		s->len += (size_t)w;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"kubeconfig", required_argument, NULL, 'k'}, {"context", required_argument, NULL, 'c'},
	    {"limit", required_argument, NULL, 'l'},      {"uid", required_argument, NULL, 'u'},
	    {"verbose", no_argument, NULL, 'v'},          {NULL, 0, NULL, 0},
	};
	struct kube_config_options copt = {0};
	struct kube_list_options lopt = {0};
	struct kube_delete_options dopt = {0};
	struct kube_config *cfg = NULL;
	struct kube_client *kc = NULL;
	struct error err = {0};
	struct http_stats st = {0};
	json_t *body = NULL, *out = NULL;
	const char *verb, *path;
	int c, ret = 0, status = 0;

	log_init("kube-get", LOG_FORMAT_TEXT, LOG_LEVEL_WARN);
	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			copt.kubeconfig = optarg;
			break;
		case 'c':
			copt.context = optarg;
			break;
		case 'l':
			lopt.limit = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'u':
			dopt.uid = optarg;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		default:
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr,
			"usage: kube-get [--kubeconfig F] [--context C] [--limit N] [--uid U] "
			"VERB PATH [JSON]\n");
		return 2;
	}
	verb = argv[optind];
	path = argv[optind + 1];
	if (argc - optind > 2) {
		json_error_t jerr;

		body = json_loads(argv[optind + 2], JSON_DECODE_ANY, &jerr);
		if (!body) {
			fprintf(stderr, "kube-get: EINVAL: JSON argument: %s\n", jerr.text);
			return 2;
		}
	}
	ret = kube_config_load(&copt, &cfg, &err);
	if (ret == 0)
		ret = kube_client_new(cfg, NULL, &kc, &err);
	if (ret < 0) {
		fprintf(stderr, "kube-get: %s: %s\n", errno_name(-ret), err.msg);
		status = 2;
		goto cleanup;
	}
	if (!strcmp(verb, "list")) {
		struct names names = {0};
		char rv[64] = "";

		ret = kube_list(kc, path, &lopt, on_item, &names, rv, sizeof(rv), &err);
		if (ret == 0)
			printf("items=%lu names=%s resourceVersion=%s\n", names.n, names.buf, rv);
	} else if (!strcmp(verb, "get")) {
		ret = kube_get(kc, path, &out, &err);
	} else if (!strcmp(verb, "create")) {
		ret = kube_create(kc, path, body, &out, &err);
	} else if (!strcmp(verb, "patch-merge")) {
		ret = kube_patch(kc, path, KUBE_PATCH_MERGE, body, &out, &err);
	} else if (!strcmp(verb, "patch-strategic")) {
		ret = kube_patch(kc, path, KUBE_PATCH_STRATEGIC, body, &out, &err);
	} else if (!strcmp(verb, "patch-json")) {
		ret = kube_patch(kc, path, KUBE_PATCH_JSON, body, &out, &err);
	} else if (!strcmp(verb, "delete")) {
		ret = kube_delete(kc, path, &dopt, &err);
	} else {
		fprintf(stderr, "kube-get: EINVAL: unknown verb %s\n", verb);
		status = 2;
		goto cleanup;
	}
	if (ret < 0) {
		fprintf(stderr, "kube-get: %s: %s\n", errno_name(-ret), err.msg);
		status = 1;
	} else if (out) {
		char *text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);

		printf("%s\n", text ? text : "null");
		free(text);
	}
	kube_client_stats(kc, &st);
	printf("requests=%llu\n", (unsigned long long)st.requests);
cleanup:
	json_decref(body);
	json_decref(out);
	kube_client_free(kc);
	kube_config_free(cfg);
	return status;
}
