/* SPDX-License-Identifier: Apache-2.0 */
/* CIDR and address parsing: no crash, and whatever parses formats back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned flag_sets[] = {0, CIDR_STRICT, CIDR_ALLOW_BARE_IP,
					     CIDR_MASK_HOST_BITS};
	struct cidr c, again, sub;
	char text[CIDR_STRLEN];

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		if (cidr_parse_n((const char *)data, size, &c, flag_sets[i]) < 0)
			continue;
		cidr_format(&c, text, sizeof(text));
		if (cidr_parse(text, &again, 0) < 0 || !cidr_equal(&c, &again))
			abort();
		if (!cidr_overlaps(&c, &again) || !cidr_contains(&c, &again))
			abort();
		if (c.prefix + 8 <= cidr_max_prefix(&c) &&
		    cidr_subnet(&c, c.prefix + 8, 255, &sub) == 0 && !cidr_contains(&c, &sub))
			abort();
	}
	return 0;
}
