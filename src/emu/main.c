/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp-emu: flags, module start-up, the ready line, the loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cidr.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/parse.h"
#include "emu/emu.h"
#include "emu/core/httpd.h"
#include "emu/core/loop.h"

static const char usage[] =
    "Usage: talos-gcp-emu [options]\n"
    "\n"
    "A local emulation of the Compute Engine v1 API, the OAuth2 token and metadata\n"
    "endpoints, and the Kubernetes API of an emulated Talos cluster, sharing one state.\n"
    "\n"
    "  --listen HOST:PORT          Compute API, token endpoint, metadata server and\n"
    "                              /_emu control endpoint (default 127.0.0.1:8080; port 0 picks one)\n"
    "  --kube-listen HOST:PORT     serve the Kubernetes API over HTTPS there\n"
    "  --kubeconfig-out FILE       write a kubeconfig for the Kubernetes API (0600)\n"
    "  --serviceaccount-out DIR    write token, ca.crt and namespace as a pod sees them\n"
    "  --cluster-cidr CIDR         the CCM's --cluster-cidr (RangeAllocator's pool; default the\n"
    "                              nodes' subnetwork `pods` range, else 172.20.0.0/16)\n"
    "  --kubelet-delay DURATION    emulated kubelets (re-)register Nodes after this (default 250ms)\n"
    "  --ccm-delay DURATION        emulated CCM reacts to Nodes and instances after this (default 100ms)\n"
    "  --sa-key-out FILE           write a service-account key whose token_uri is this emulator (0600)\n"
    "  --adc-user-out FILE         write authorized_user credentials (refresh token) for it (0600)\n"
    "  --token-lifetime DURATION   lifetime of the access tokens it issues (default 1h)\n"
    "  --project ID                project id (default demo-project)\n"
    "  --ccm-allocator MODE        cloud (CloudAllocator), range (RangeAllocator: split-brain)\n"
    "                              or off (default cloud)\n"
    "  --operation-delay DURATION  how long Operations stay RUNNING (default 0s)\n"
    "  --operation-wait-max DUR    longest operations/wait answer (default 2m, as GCP)\n"
    "  --require-auth              refuse Compute requests without a valid access token\n"
    "  --state FILE                load the state from FILE and keep it there (atomic writes)\n"
    "  --dataplane                 materialise the state as network namespaces (root; see\n"
    "                              docs/emulator.md): PREFIX-vpc, PREFIX-internet, PREFIX-INSTANCE\n"
    "  --dataplane-prefix NAME     their name prefix (default tgemu; letters and digits)\n"
    "  --log-level LEVEL           error, warn, info (default) or debug\n"
    "  -v, --verbose               same as --log-level debug\n"
    "  -h, --help                  this text\n"
    "      --version               print the version\n"
    "\n"
    "Prints 'ready cloud=URL [kube=URL]' on stdout once both ports listen.\n";

enum {
	OPT_LISTEN = 256,
	OPT_KUBE_LISTEN,
	OPT_KUBECONFIG_OUT,
	OPT_SERVICEACCOUNT_OUT,
	OPT_CLUSTER_CIDR,
	OPT_KUBELET_DELAY,
	OPT_CCM_DELAY,
	OPT_SA_KEY_OUT,
	OPT_ADC_USER_OUT,
	OPT_TOKEN_LIFETIME,
	OPT_OPERATION_WAIT_MAX,
	OPT_PROJECT,
	OPT_CCM_ALLOCATOR,
	OPT_OPERATION_DELAY,
	OPT_REQUIRE_AUTH,
	OPT_STATE,
	OPT_DATAPLANE,
	OPT_DATAPLANE_PREFIX,
	OPT_LOG_LEVEL,
	OPT_VERSION,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"kube-listen", required_argument, NULL, OPT_KUBE_LISTEN},
    {"kubeconfig-out", required_argument, NULL, OPT_KUBECONFIG_OUT},
    {"serviceaccount-out", required_argument, NULL, OPT_SERVICEACCOUNT_OUT},
    {"cluster-cidr", required_argument, NULL, OPT_CLUSTER_CIDR},
    {"kubelet-delay", required_argument, NULL, OPT_KUBELET_DELAY},
    {"ccm-delay", required_argument, NULL, OPT_CCM_DELAY},
    {"sa-key-out", required_argument, NULL, OPT_SA_KEY_OUT},
    {"adc-user-out", required_argument, NULL, OPT_ADC_USER_OUT},
    {"token-lifetime", required_argument, NULL, OPT_TOKEN_LIFETIME},
    {"operation-wait-max", required_argument, NULL, OPT_OPERATION_WAIT_MAX},
    {"project", required_argument, NULL, OPT_PROJECT},
    {"ccm-allocator", required_argument, NULL, OPT_CCM_ALLOCATOR},
    {"operation-delay", required_argument, NULL, OPT_OPERATION_DELAY},
    {"require-auth", no_argument, NULL, OPT_REQUIRE_AUTH},
    {"state", required_argument, NULL, OPT_STATE},
    {"dataplane", no_argument, NULL, OPT_DATAPLANE},
    {"dataplane-prefix", required_argument, NULL, OPT_DATAPLANE_PREFIX},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* GCP project ids: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter.
 */
static bool valid_project(const char *p)
{
	size_t n = strlen(p);

	if (n < 6 || n > 30 || p[0] < 'a' || p[0] > 'z' || p[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
			return false;
	return true;
}

static int parse_args(int argc, char **argv, struct emu_options *o)
{
	enum log_level level = LOG_LEVEL_INFO;
	int c;

	*o = (struct emu_options){.listen = "127.0.0.1:8080",
				  .project = "demo-project",
				  .token_lifetime_ms = 3600 * 1000,
				  .operation_wait_max_ms = 120 * 1000,
				  .kubelet_delay_ms = 250,
				  .ccm_delay_ms = 100};
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_KUBE_LISTEN:
			o->kube_listen = optarg;
			break;
		case OPT_KUBECONFIG_OUT:
			o->kubeconfig_out = optarg;
			break;
		case OPT_SERVICEACCOUNT_OUT:
			o->serviceaccount_out = optarg;
			break;
		case OPT_CLUSTER_CIDR: {
			struct cidr cc;
			if (cidr_parse(optarg, &cc, CIDR_STRICT) < 0 || cc.addr.family != AF_INET ||
			    cc.prefix > 24) {
				log_error(
				    "--cluster-cidr '%s': want an IPv4 range of /24 or wider, such as 172.20.0.0/16",
				    optarg);
				return -EINVAL;
			}
			o->cluster_cidr = optarg;
			break;
		}
		case OPT_KUBELET_DELAY:
			if (parse_duration_ms(optarg, &o->kubelet_delay_ms) < 0) {
				log_error(
				    "--kubelet-delay '%s': want a duration such as 250ms or 2s",
				    optarg);
				return -EINVAL;
			}
			break;
		case OPT_CCM_DELAY:
			if (parse_duration_ms(optarg, &o->ccm_delay_ms) < 0) {
				log_error("--ccm-delay '%s': want a duration such as 100ms or 1s",
					  optarg);
				return -EINVAL;
			}
			break;
		case OPT_SA_KEY_OUT:
			o->sa_key_out = optarg;
			break;
		case OPT_ADC_USER_OUT:
			o->adc_user_out = optarg;
			break;
		case OPT_TOKEN_LIFETIME:
			if (parse_duration_ms(optarg, &o->token_lifetime_ms) < 0 ||
			    o->token_lifetime_ms < 1000) {
				log_error(
				    "--token-lifetime '%s': want a duration of at least 1s, such as 60s or 1h",
				    optarg);
				return -EINVAL;
			}
			break;
		case OPT_OPERATION_WAIT_MAX:
			if (parse_duration_ms(optarg, &o->operation_wait_max_ms) < 0) {
				log_error(
				    "--operation-wait-max '%s': want a duration such as 2m or 500ms",
				    optarg);
				return -EINVAL;
			}
			break;
		case OPT_PROJECT:
			if (!valid_project(optarg)) {
				log_error(
				    "--project '%s': want 6-30 lowercase letters, digits or hyphens, starting with a letter",
				    optarg);
				return -EINVAL;
			}
			o->project = optarg;
			break;
		case OPT_CCM_ALLOCATOR:
			if (strcmp(optarg, "cloud") == 0)
				o->ccm_allocator = EMU_CCM_CLOUD;
			else if (strcmp(optarg, "range") == 0)
				o->ccm_allocator = EMU_CCM_RANGE;
			else if (strcmp(optarg, "off") == 0)
				o->ccm_allocator = EMU_CCM_OFF;
			else {
				log_error("--ccm-allocator '%s': want cloud, range or off", optarg);
				return -EINVAL;
			}
			break;
		case OPT_OPERATION_DELAY:
			if (parse_duration_ms(optarg, &o->operation_delay_ms) < 0) {
				log_error(
				    "--operation-delay '%s': want a duration such as 0s, 250ms or 2s",
				    optarg);
				return -EINVAL;
			}
			break;
		case OPT_REQUIRE_AUTH:
			o->require_auth = true;
			break;
		case OPT_STATE:
			o->state_path = optarg;
			break;
		case OPT_DATAPLANE:
			o->dataplane = true;
			break;
		case OPT_DATAPLANE_PREFIX:
			o->dataplane_prefix = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_parse(optarg, &level) < 0) {
				log_error("--log-level '%s': want error, warn, info or debug",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'v':
			level = LOG_LEVEL_DEBUG;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case OPT_VERSION:
			printf("talos-gcp-emu %s\n", TALOS_GCP_VERSION);
			exit(0);
		case ':':
			log_error("%s: missing value", argv[optind - 1]);
			return -EINVAL;
		default:
			log_error("%s: unknown flag (see --help)", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("%s: unexpected argument (see --help)", argv[optind]);
		return -EINVAL;
	}
	if (o->kubeconfig_out && !o->kube_listen) {
		log_error("--kubeconfig-out needs --kube-listen");
		return -EINVAL;
	}
	if (o->dataplane_prefix && !o->dataplane) {
		log_error("--dataplane-prefix needs --dataplane");
		return -EINVAL;
	}
	if (o->serviceaccount_out && !o->kube_listen) {
		log_error("--serviceaccount-out needs --kube-listen");
		return -EINVAL;
	}
	log_set_level(level);
	return 0;
}

static int load_state(struct emu *emu)
{
	json_error_t jerr;
	json_t *doc;
	int ret;

	if (!emu->opt.state_path)
		return 0;
	doc = json_load_file(emu->opt.state_path, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		/* A missing file is a first start; anything else is an error, not a silent reset.
		 */
		FILE *f = fopen(emu->opt.state_path, "r");
		if (!f && errno == ENOENT)
			return 0;
		if (f)
			fclose(f);
		log_error("--state %s:%d:%d: %s", emu->opt.state_path, jerr.line, jerr.column,
			  jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(doc) || json_integer_value(json_object_get(doc, "version")) != 1) {
		log_error("--state %s: not a talos-gcp-emu state file (version 1)",
			  emu->opt.state_path);
		json_decref(doc);
		return -EINVAL;
	}
	ret = emu_compute_load(emu, json_object_get(doc, "compute"));
	if (ret == 0)
		ret = emu_kube_load(emu, json_object_get(doc, "kube"));
	if (ret < 0)
		log_error("--state %s: cannot load: %s", emu->opt.state_path, strerror(-ret));
	json_decref(doc);
	return ret;
}

int main(int argc, char **argv)
{
	struct emu emu = {0};
	struct emu_httpd *daemons[2] = {NULL, NULL};
	sigset_t stop_signals;
	char cloud_bound[64] = "", kube_bound[64] = "", err[256];
	size_t ndaemons = 0;
	int ret;

	log_init("talos-gcp-emu", LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
	/*
	 * SIGINT/SIGTERM wait (pending) until the loop reads them from its signalfd: one that
	 * comes during start-up (right after the ready line, or while the data plane is being
	 * built) still ends in an orderly stop that removes what was made.
	 */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	if (parse_args(argc, argv, &emu.opt) < 0)
		return 2;
	if ((ret = emu_faults_init(&emu)) < 0 || (ret = emu_auth_init(&emu)) < 0 ||
	    (ret = emu_compute_init(&emu)) < 0 || (ret = emu_kube_init(&emu)) < 0) {
		log_error("cannot start: %s", strerror(-ret));
		ret = 1;
		goto cleanup;
	}
	if (load_state(&emu) < 0) {
		ret = 2;
		goto cleanup;
	}
	if (emu_httpd_start(&emu, EMU_PORT_CLOUD, emu.opt.listen, NULL, &daemons[ndaemons],
			    cloud_bound, sizeof(cloud_bound), err, sizeof(err)) < 0) {
		log_error("--listen %s", err);
		ret = 2;
		goto cleanup;
	}
	ndaemons++;
	snprintf(emu.cloud_url, sizeof(emu.cloud_url), "http://%s", cloud_bound);
	if (emu_compute_started(&emu) < 0 || emu_auth_started(&emu) < 0) {
		ret = 1;
		goto cleanup;
	}
	if (emu.opt.kube_listen) {
		struct emu_tls tls;

		emu_kube_tls_material(&emu, &tls.key_pem, &tls.cert_pem, &tls.client_ca_pem);
		if (emu_httpd_start(&emu, EMU_PORT_KUBE, emu.opt.kube_listen, &tls,
				    &daemons[ndaemons], kube_bound, sizeof(kube_bound), err,
				    sizeof(err)) < 0) {
			log_error("--kube-listen %s", err);
			ret = 2;
			goto cleanup;
		}
		ndaemons++;
		snprintf(emu.kube_url, sizeof(emu.kube_url), "https://%s", kube_bound);
		if (emu_kube_started(&emu) < 0) {
			ret = 1;
			goto cleanup;
		}
	}
	if (emu_dataplane_start(&emu) < 0) {
		ret = 2;
		goto cleanup;
	}
	if (kube_bound[0])
		printf("ready cloud=http://%s kube=https://%s\n", cloud_bound, kube_bound);
	else
		printf("ready cloud=http://%s\n", cloud_bound);
	fflush(stdout);
	ret = emu_loop_run(&emu, daemons, ndaemons) < 0 ? 1 : 0;
cleanup:
	emu_dataplane_stop(&emu);
	for (size_t i = 0; i < ndaemons; i++)
		emu_httpd_stop(daemons[i]);
	emu_kube_free(&emu);
	emu_compute_free(&emu);
	emu_auth_free(&emu);
	emu_faults_free(&emu);
	return ret;
}
