#!/usr/bin/env bash
# Synthesize the given stages (default: dev and prod) offline, into cdk.out/<stage>/.
# No AWS credentials or network are needed: the stacks name their region, not their account.
set -euo pipefail
cd "$(dirname "$0")/.."
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true AWS_EC2_METADATA_DISABLED=true
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(dev prod)
for stage in "${stages[@]}"; do
  start=$(date +%s%N)
  npx --no-install cdk synth --quiet -c stage="$stage" --output "cdk.out/$stage"
  echo "westtek infra: synthesized $stage in $(( ($(date +%s%N) - start) / 1000000 )) ms (cdk.out/$stage)"
done
