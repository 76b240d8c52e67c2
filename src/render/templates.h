/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TALOS_GCP_RENDER_TEMPLATES_H
#define TALOS_GCP_RENDER_TEMPLATES_H

extern const char template_talos_controlplane[];
extern const char template_talos_worker[];
extern const char template_ccm[];
extern const char template_cilium_values[];
extern const char template_vip_alias[];
/* The VIP on dummy0 from boot: one of the two, by --talos-version. */
extern const char template_vip_link_legacy[];
extern const char template_vip_link_document[];

#endif
