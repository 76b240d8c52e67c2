#!/usr/bin/env bash
# The cluster's GCP networking from its spec, on the emulator (issue 9):
#   1. build, start talos-gcp-emu with 1 s operations (as GCP's take), so parallelism shows;
#   2. talos-gcp plan -f examples/cluster.yaml (what would be made; exit 1), then up;
#   3. what gcloud sees: forwarding rules, the control-plane backend service and its health,
#      an instance group's members, the Cloud NAT (when gcloud is installed);
#   4. plan again (exit 0: nothing to do), up again (no mutating request), down, plan --destroy.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh build >/dev/null
bin=build/src/cli/talos-gcp
emu=build/src/emu/talos-gcp-emu
spec=examples/cluster.yaml

work=$(mktemp -d -t talos-gcp-demo-up.XXXXXX)
emu_pid=
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

mkfifo "$work/ready"
"$emu" --listen 127.0.0.1:0 --kube-listen 127.0.0.1:0 --kubeconfig-out "$work/kubeconfig" \
  --project demo-project --operation-delay 1s --kubelet-delay 100ms \
  >"$work/ready" 2>"$work/emu.log" &
emu_pid=$!
read -r _ cloud kube <"$work/ready"
cloud=${cloud#cloud=}
port=${cloud##*:}
echo "talos-gcp-emu: Compute API at $cloud/compute/v1/ (operations take 1 s), Kubernetes API at ${kube#kube=}"
export TALOS_GCP_COMPUTE_ENDPOINT="$cloud/compute/v1/"
export CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true
export KUBECONFIG="$work/kubeconfig"

step talos-gcp plan -f $spec
rc=0
"$bin" plan -f $spec || rc=$?
echo "(exit $rc: 1 means changes are pending)"

step talos-gcp up -f $spec
"$bin" up -f $spec

if command -v gcloud >/dev/null; then
  # gcloud against the emulator: an isolated configuration, no credentials.
  export CLOUDSDK_CONFIG="$work/gcloud" CLOUDSDK_CORE_PROJECT=demo-project \
    CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE="http://127.0.0.1:$port/compute/v1/" \
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true \
    CLOUDSDK_CORE_DISABLE_PROMPTS=1
  kubectl=$(command -v kubectl || true)
  if [ -n "$kubectl" ]; then
    # The ingress targets node port 30080 on the workers: a NodePort Service makes them healthy.
    "$kubectl" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: ingress, namespace: default}
spec:
  type: NodePort
  selector: {app: ingress}
  ports: [{port: 80, targetPort: 80, nodePort: 30080}]
EOF
  fi
  step gcloud compute forwarding-rules list
  gcloud compute forwarding-rules list
  step gcloud compute backend-services describe demo-cp --region us-central1
  gcloud compute backend-services describe demo-cp --region us-central1 \
    --format="yaml(name,loadBalancingScheme,protocol,healthChecks,backends)"
  step gcloud compute backend-services get-health demo-cp --region us-central1
  gcloud compute backend-services get-health demo-cp --region us-central1 \
    --format="table(status.healthStatus[0].instance.basename():label=INSTANCE,status.healthStatus[0].ipAddress:label=IP,status.healthStatus[0].port:label=PORT,status.healthStatus[0].healthState:label=HEALTH)"
  step gcloud compute backend-services get-health demo-ingress --global
  gcloud compute backend-services get-health demo-ingress --global \
    --format="table(status.healthStatus[0].instance.basename():label=INSTANCE,status.healthStatus[0].port:label=PORT,status.healthStatus[0].healthState:label=HEALTH)"
  step gcloud compute instance-groups list-instances demo-cp-us-central1-a --zone us-central1-a
  gcloud compute instance-groups list-instances demo-cp-us-central1-a --zone us-central1-a
  step gcloud compute routers nats describe demo-nat --router demo-router --region us-central1
  gcloud compute routers nats describe demo-nat --router demo-router --region us-central1
else
  echo "(gcloud is not installed: skipping what gcloud sees)"
fi

step talos-gcp plan -f $spec
"$bin" plan -f $spec
echo "(exit 0: the project is as the spec says)"

step talos-gcp down -f $spec
"$bin" down -f $spec

step talos-gcp plan --destroy -f $spec
"$bin" plan --destroy -f $spec
echo "(exit 0: nothing the cluster owned is left)"
