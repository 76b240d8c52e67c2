#!/usr/bin/env bash
# The PodCIDR demo on the emulator (design note §5), from a fresh Debian 12 machine:
#   1. install what is missing and build;
#   2. start talos-gcp-emu with the CCM in `range` mode (the split-brain of the note);
#   3. create a 3-node cluster through the Compute API (instances with `pods:/24` aliases);
#      the emulated kubelets register their Nodes and the CCM gives them its own podCIDRs;
#   4. talos-gcp verify (mismatch, exit 1), repair (the plan), repair --apply, verify (aligned).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh build
bin=build/src/cli/talos-gcp
emu=build/src/emu/talos-gcp-emu

work=$(mktemp -d -t talos-gcp-demo.XXXXXX)
emu_pid=
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# Ephemeral loopback ports; the emulator prints where it listens.
mkfifo "$work/ready"
"$emu" --listen 127.0.0.1:0 --kube-listen 127.0.0.1:0 --kubeconfig-out "$work/kubeconfig" \
  --ccm-allocator range --project demo-project >"$work/ready" 2>"$work/emu.log" &
emu_pid=$!
read -r _ cloud kube <"$work/ready"
cloud=${cloud#cloud=}
echo "talos-gcp-emu: Compute API at $cloud/compute/v1/, Kubernetes API at ${kube#kube=}"
echo "               CCM node IPAM: RangeAllocator (split-brain: it ignores the alias ranges)"
export TALOS_GCP_COMPUTE_ENDPOINT="$cloud/compute/v1/"
export KUBECONFIG="$work/kubeconfig"
# Credentials the ADC way, as on a GCE VM: the emulator also plays the metadata server.
export GCE_METADATA_HOST="${cloud#http://}"

/usr/bin/python3 scripts/emu_cluster.py --endpoint "$TALOS_GCP_COMPUTE_ENDPOINT" \
  --kubeconfig "$KUBECONFIG" --nodes 3 --want-podcidr

rc=0
step talos-gcp verify --project demo-project
"$bin" verify --project demo-project || rc=$?
echo "(exit $rc: 1 means misaligned)"

step talos-gcp repair --project demo-project
"$bin" repair --project demo-project || true

step talos-gcp repair --project demo-project --apply --yes
"$bin" repair --project demo-project --apply --yes

step talos-gcp verify --project demo-project
"$bin" verify --project demo-project
echo "(exit 0: every Node's podCIDR is its instance's alias range)"

# The cluster's GCP networking from its spec: plan, up, what gcloud sees, down (issue 9).
scripts/demo-up.sh
