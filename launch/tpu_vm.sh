#!/usr/bin/env bash
# Cloud TPU VM pod slice: the same command on every worker; jax detects the
# pod (VQ_DISTRIBUTED=1 makes vq.main call jax.distributed.initialize()).
# The workdir must be shared by all workers (a gs:// bucket works: orbax and
# the TensorBoard writer both accept it). Code and datasets must already be on
# every worker (e.g. a `git clone` + `pip install -e .` step run the same way).
#   launch/tpu_vm.sh my-tpu us-central2-b configs/yolo.py:variant=full gs://bucket/yolo
set -euo pipefail
tpu=$1 zone=$2 config=$3 workdir=$4
shift 4
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command="
  cd vq && VQ_DISTRIBUTED=1 python -m vq.main --config=$config --workdir=$workdir $*"
