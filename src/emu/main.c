/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp-emu: flags, module start-up, the ready line, the loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>

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
    "  --ccm-retry-delay DURATION  the CCM's service controller retries a failed load balancer\n"
    "                              after this, doubling up to 300s (default 5s, as the real one)\n"
    "  --sa-key-out FILE           write a service-account key whose token_uri is this emulator (0600)\n"
    "  --adc-user-out FILE         write authorized_user credentials (refresh token) for it (0600)\n"
    "  --token-lifetime DURATION   lifetime of the access tokens it issues (default 1h)\n"
    "  --project ID                project id (default demo-project)\n"
    "  --ccm-allocator MODE        cloud (CloudAllocator), range (RangeAllocator: split-brain)\n"
    "                              or off (default cloud)\n"
    "  --operation-delay DURATION  how long Operations stay RUNNING (default 0s)\n"
    "  --operation-wait-max DUR    longest operations/wait answer (default 2m, as GCP)\n"
    "  --require-auth              refuse Compute requests without a valid access token\n"
    "  --state FILE                keep the state in FILE, an SQLite database: every change is\n"
    "                              committed before the answer that acknowledges it (a JSON\n"
    "                              state file is imported once, kept as FILE.json-imported)\n"
    "  --state-sync normal|full    normal (default) survives a crash of the process (kill -9);\n"
    "                              full also survives power loss (an fsync per commit)\n"
    "  --control-token-file FILE   enable the /_emu/ control endpoint: writes (0600) the token\n"
    "                              it wants as 'Authorization: Bearer TOKEN' (off without it)\n"
    "  --idle-timeout DURATION     close connections idle (no request in progress) this long\n"
    "                              (default 60s; watches and operations/wait are not idle)\n"
    "  --max-connections N         connections served per port (default 4096, or a quarter of\n"
    "                              the file-descriptor limit when lower; at most half of it);\n"
    "                              past it new ones are answered 503 (cloud) / 429 (kube)\n"
    "  --body-budget SIZE          request bodies held in memory at once, all connections\n"
    "                              (default 256MiB; past it 429); one body is at most 32MiB\n"
    "  --dataplane                 materialise the state as network namespaces (root; see\n"
    "                              docs/emulator.md): PREFIX-vpc, PREFIX-internet, PREFIX-INSTANCE\n"
    "  --dataplane-prefix NAME     their name prefix (default tgemu; letters and digits)\n"
    "  --dataplane-probe-max DUR   health checks probe at most this far apart and wait at\n"
    "                              most this long (default: as each check says; for tests)\n"
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
	OPT_CCM_RETRY_DELAY,
	OPT_SA_KEY_OUT,
	OPT_ADC_USER_OUT,
	OPT_TOKEN_LIFETIME,
	OPT_OPERATION_WAIT_MAX,
	OPT_PROJECT,
	OPT_CCM_ALLOCATOR,
	OPT_OPERATION_DELAY,
	OPT_REQUIRE_AUTH,
	OPT_STATE,
	OPT_STATE_SYNC,
	OPT_CONTROL_TOKEN_FILE,
	OPT_IDLE_TIMEOUT,
	OPT_MAX_CONNECTIONS,
	OPT_BODY_BUDGET,
	OPT_DATAPLANE,
	OPT_DATAPLANE_PREFIX,
	OPT_DATAPLANE_PROBE_MAX,
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
    {"ccm-retry-delay", required_argument, NULL, OPT_CCM_RETRY_DELAY},
    {"sa-key-out", required_argument, NULL, OPT_SA_KEY_OUT},
    {"adc-user-out", required_argument, NULL, OPT_ADC_USER_OUT},
    {"token-lifetime", required_argument, NULL, OPT_TOKEN_LIFETIME},
    {"operation-wait-max", required_argument, NULL, OPT_OPERATION_WAIT_MAX},
    {"project", required_argument, NULL, OPT_PROJECT},
    {"ccm-allocator", required_argument, NULL, OPT_CCM_ALLOCATOR},
    {"operation-delay", required_argument, NULL, OPT_OPERATION_DELAY},
    {"require-auth", no_argument, NULL, OPT_REQUIRE_AUTH},
    {"state", required_argument, NULL, OPT_STATE},
    {"state-sync", required_argument, NULL, OPT_STATE_SYNC},
    {"control-token-file", required_argument, NULL, OPT_CONTROL_TOKEN_FILE},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"body-budget", required_argument, NULL, OPT_BODY_BUDGET},
    {"dataplane", no_argument, NULL, OPT_DATAPLANE},
    {"dataplane-prefix", required_argument, NULL, OPT_DATAPLANE_PREFIX},
    {"dataplane-probe-max", required_argument, NULL, OPT_DATAPLANE_PROBE_MAX},
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

/* "268435456", "256MiB", "64M", "1GiB", "512KiB" (binary multiples). 0 or -EINVAL. */
static int parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {{"", 0},     {"K", 10}, {"KiB", 10}, {"M", 20},
		     {"MiB", 20}, {"G", 30}, {"GiB", 30}};
	char digits[24];
	size_t n = strspn(s, "0123456789");
	uint64_t v;

	if (n == 0 || n >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (parse_u64(digits, UINT64_MAX >> 30, &v) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].suffix) == 0) {
			*out = v << units[i].shift;
			return 0;
		}
	}
	return -EINVAL;
}

/* The soft limit on file descriptors goes up to the hard one: connections need them. */
static unsigned raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur > 1u << 30 ? 1u << 30 : (unsigned)rl.rlim_cur;
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
				  .ccm_delay_ms = 100,
				  .ccm_retry_delay_ms = 5000,
				  .idle_timeout_ms = 60 * 1000,
				  .body_budget = 256u << 20};
	unsigned fd_limit = raise_fd_limit();
	uint64_t v;

	/* Both ports, every connection, files, SQLite: well below the limit. */
	o->max_connections = fd_limit / 4 < 4096 ? fd_limit / 4 : 4096;
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
		case OPT_CCM_RETRY_DELAY:
			if (parse_duration_ms(optarg, &o->ccm_retry_delay_ms) < 0 ||
			    o->ccm_retry_delay_ms == 0) {
				log_error(
				    "--ccm-retry-delay '%s': want a duration such as 5s or 200ms",
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
		case OPT_DATAPLANE_PROBE_MAX:
			if (parse_duration_ms(optarg, &o->dataplane_probe_max_ms) < 0 ||
			    o->dataplane_probe_max_ms < 100) {
				log_error("--dataplane-probe-max '%s': want a duration of at least "
					  "100ms, such as 1s",
					  optarg);
				return -EINVAL;
			}
			break;
		case OPT_STATE_SYNC:
			if (strcmp(optarg, "normal") == 0)
				o->state_sync = EMU_STATE_SYNC_NORMAL;
			else if (strcmp(optarg, "full") == 0)
				o->state_sync = EMU_STATE_SYNC_FULL;
			else {
				log_error("--state-sync '%s': want normal or full", optarg);
				return -EINVAL;
			}
			break;
		case OPT_CONTROL_TOKEN_FILE:
			o->control_token_file = optarg;
			break;
		case OPT_IDLE_TIMEOUT:
			if (parse_duration_ms(optarg, &o->idle_timeout_ms) < 0 ||
			    (o->idle_timeout_ms && o->idle_timeout_ms < 1000)) {
				log_error(
				    "--idle-timeout '%s': want a duration of at least 1s (or 0: none), such as 60s",
				    optarg);
				return -EINVAL;
			}
			break;
		case OPT_MAX_CONNECTIONS:
			if (parse_u64(optarg, UINT32_MAX, &v) < 0 || v < 1 || v > fd_limit / 2) {
				log_error(
				    "--max-connections '%s': want 1 to %u (half the file-descriptor limit)",
				    optarg, fd_limit / 2);
				return -EINVAL;
			}
			o->max_connections = (unsigned)v;
			break;
		case OPT_BODY_BUDGET:
			if (parse_size(optarg, &o->body_budget) < 0 ||
			    o->body_budget < (1u << 20)) {
				log_error(
				    "--body-budget '%s': want a size of at least 1MiB, such as 256MiB or 1GiB",
				    optarg);
				return -EINVAL;
			}
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
	if ((o->dataplane_prefix || o->dataplane_probe_max_ms) && !o->dataplane) {
		log_error("%s needs --dataplane",
			  o->dataplane_prefix ? "--dataplane-prefix" : "--dataplane-probe-max");
		return -EINVAL;
	}
	if (o->serviceaccount_out && !o->kube_listen) {
		log_error("--serviceaccount-out needs --kube-listen");
		return -EINVAL;
	}
	if (o->state_sync && !o->state_path) {
		log_error("--state-sync needs --state");
		return -EINVAL;
	}
	log_set_level(level);
	return 0;
}

/* --state: the rows assembled into the state document, loaded by each module. */
static int load_state(struct emu *emu)
{
	char err[512];
	json_t *doc = NULL;
	int ret;

	if (!emu->opt.state_path)
		return 0;
	ret = emu_state_read(emu, &doc, err, sizeof(err));
	if (ret < 0) {
		log_error("%s", err);
		return ret;
	}
	emu_state_loading(emu, true);
	ret = doc ? emu_compute_load(emu, json_object_get(doc, "compute")) : 0;
	if (ret == 0 && doc)
		ret = emu_kube_load(emu, json_object_get(doc, "kube"));
	emu_state_loading(emu, false);
	if (ret < 0)
		log_error("--state %s: cannot load: %s", emu->opt.state_path, strerror(-ret));
	else
		emu_state_loaded(emu);
	json_decref(doc);
	return ret;
}

/* --control-token-file: a new random token at every start, written 0600. */
static int write_control_token(struct emu *emu)
{
	uint8_t raw[32];
	char line[sizeof(emu->control_token) + 1];
	int ret;

	if (!emu->opt.control_token_file)
		return 0;
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		log_error("--control-token-file: no random bytes: %s", strerror(errno));
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(emu->control_token + 2 * i, 3, "%02x", raw[i]);
	snprintf(line, sizeof(line), "%s\n", emu->control_token);
	ret = file_write_atomic(emu->opt.control_token_file, line, strlen(line), 0600);
	if (ret < 0)
		log_error("--control-token-file %s: %s", emu->opt.control_token_file,
			  strerror(-ret));
	else
		log_info("control endpoint: token written to %s", emu->opt.control_token_file);
	return ret;
}

int main(int argc, char **argv)
{
	struct emu emu = {0};
	struct emu_httpd *daemons[2] = {NULL, NULL};
	char cloud_bound[64] = "", kube_bound[64] = "", err[512];
	size_t ndaemons = 0;
	sigset_t stop_signals;
	int ret;

	log_init("talos-gcp-emu", LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
	/*
	 * SIGINT and SIGTERM are read from a signalfd by the loop; blocked from the start, so
	 * that one arriving between the ready line and the loop still stops us cleanly (and the
	 * last commit is made).
	 */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	if (parse_args(argc, argv, &emu.opt) < 0)
		return 2;
	if (emu.opt.state_path &&
	    emu_state_open(&emu, emu.opt.state_path, emu.opt.state_sync, err, sizeof(err)) < 0) {
		log_error("%s", err);
		ret = 2;
		goto cleanup;
	}
	if ((ret = emu_faults_init(&emu)) < 0 || (ret = emu_auth_init(&emu)) < 0 ||
	    (ret = emu_compute_init(&emu)) < 0 || (ret = emu_kube_init(&emu)) < 0) {
		log_error("cannot start: %s", strerror(-ret));
		ret = 1;
		goto cleanup;
	}
	if (load_state(&emu) < 0 || write_control_token(&emu) < 0) {
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
	/* Nothing is announced before it is saved: the CA, keys and tokens included. */
	if (emu_state_flush(&emu, EMU_STATE_ALL) < 0) {
		log_error("--state %s: cannot save: %s", emu.opt.state_path, emu_state_error(&emu));
		ret = 1;
		goto cleanup;
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
	/* The last commit; a failed one makes the exit code say so. */
	if (emu_state_close(&emu) < 0 && ret == 0)
		ret = 1;
	emu_kube_free(&emu);
	emu_compute_free(&emu);
	emu_auth_free(&emu);
	emu_faults_free(&emu);
	return ret;
}
