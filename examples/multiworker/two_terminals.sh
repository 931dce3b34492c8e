#!/usr/bin/env bash
# Two workers on this machine, the launcher-free way: run this script, or paste each command into
# its own terminal. Both use the same --out; worker 0 (the chief) writes the run directory.
# Ctrl-C one of them (or SIGTERM it) and both stop after the same step, which the chief saves;
# kill -9 one and the other stops with an error after --worker-timeout seconds. Either way, run
# both commands again and they resume from the chief's newest checkpoint.
set -euo pipefail
CLUSTER='{"worker": ["127.0.0.1:23456", "127.0.0.1:23457"]}'
ARGS=(--preset mnist --steps 2000 --out runs/mnist_2workers)
TF_CONFIG="{\"cluster\": $CLUSTER, \"task\": {\"type\": \"worker\", \"index\": 1}}" \
  CUDA_VISIBLE_DEVICES= python -m alae_tf.train "${ARGS[@]}" --verbose 0 &
TF_CONFIG="{\"cluster\": $CLUSTER, \"task\": {\"type\": \"worker\", \"index\": 0}}" \
  CUDA_VISIBLE_DEVICES= python -m alae_tf.train "${ARGS[@]}"
wait
