#!/usr/bin/env bash
# N processes on this machine, as N hosts would run (this is what the
# two-process test does on CPU). Each process gets its own share of the data;
# all share WORKDIR (checkpoints are written cooperatively).
#   launch/local_multiprocess.sh 2 configs/yolo.py /tmp/vq/yolo [flags...]
# On CPU, JAX uses gloo collectives between the processes. On a GPU machine,
# give each process its own GPU with JAX_LOCAL_DEVICE_IDS (set below).
set -euo pipefail
n=$1 config=$2 workdir=$3
shift 3
port=${VQ_PORT:-12355}
pids=()
for ((i = 0; i < n; i++)); do
  JAX_COORDINATOR_ADDRESS="localhost:$port" VQ_NUM_PROCESSES="$n" \
  VQ_PROCESS_ID="$i" ${VQ_ONE_GPU_PER_PROCESS:+JAX_LOCAL_DEVICE_IDS=$i} \
    python -m vq.main --config="$config" --workdir="$workdir" "$@" &
  pids+=($!)
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null' INT TERM
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
