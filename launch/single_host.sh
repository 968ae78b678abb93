#!/usr/bin/env bash
# All accelerators of one machine, one process: jax sees every local GPU/TPU
# core and the mesh's data axis spans them. The global batch is split evenly,
# so config.batch_size must be a multiple of the device count.
#   launch/single_host.sh configs/yolo.py /data/runs/yolo [--config.batch_size=64]
set -euo pipefail
config=$1 workdir=$2
shift 2
exec python -m vq.main --config="$config" --workdir="$workdir" "$@"
