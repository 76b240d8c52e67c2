/* SPDX-License-Identifier: Apache-2.0 */
/* Monotonic time in milliseconds, and sleeping that survives signals. */
#ifndef TALOS_GCP_COMMON_CLOCK_H
#define TALOS_GCP_COMMON_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: for deadlines and durations, never for dates. */
uint64_t now_ms(void);
/* Sleeps ms milliseconds; a signal does not cut the sleep short. */
void sleep_ms(uint64_t ms);

#endif
