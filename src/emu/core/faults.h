/* SPDX-License-Identifier: Apache-2.0 */
/* faults.c's control interface (control.c): faults and request statistics. */
#ifndef TALOS_GCP_EMU_FAULTS_H
#define TALOS_GCP_EMU_FAULTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "emu/emu.h"

/* Adds a fault from its JSON spec; returns its JSON (with "id") or NULL with err set. */
json_t *emu_faults_add(struct emu *emu, const json_t *spec, char *err, size_t errlen);
/* {"faults": [...]} */
json_t *emu_faults_list(struct emu *emu);
/* 0 or -ENOENT. */
int emu_faults_delete(struct emu *emu, long id);
void emu_faults_clear(struct emu *emu);
/* {"total", "byPort": {"cloud", "kube"}, "requests": {"METHOD /path": n}}; reset zeroes them. */
json_t *emu_stats(struct emu *emu, bool reset);

#endif
