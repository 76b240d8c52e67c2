/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulator core faked for the cloud-port harnesses (Compute, token endpoint, metadata
 * server, faults, /_emu control): requests without libmicrohttpd, timers run on demand,
 * the Kubernetes side stubbed. fuzz_emu_cloud_fake.c.
 */
#ifndef TALOS_GCP_FUZZ_EMU_CLOUD_FAKE_H
#define TALOS_GCP_FUZZ_EMU_CLOUD_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/emu.h"

/*
 * The world every input starts from: a network "talos", a subnet "nodes" (pods and
 * services ranges) in us-central1, instances node-a and node-b in us-central1-a, a
 * service-account key (require_auth as given). Built once, restored before each input.
 */
struct emu *cloud_fake_world(bool require_auth);
void cloud_fake_reset(struct emu *emu);

/*
 * Runs requests separated by lines of "~~~": each "METHOD PATH[?QUERY]\nHeader: v\n\nBODY".
 * A PATH not starting with '/' is prefixed with prefix. Timers run between requests (all of
 * them: time is not simulated). Every request must end with exactly one reply; every JSON
 * reply must parse, and the Compute writer must agree with jansson on it.
 */
void cloud_fake_run(struct emu *emu, const uint8_t *data, size_t size, const char *prefix);

#endif
