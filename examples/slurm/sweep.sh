#!/bin/bash
# One shard of a sweep per array task. Submit from a directory that holds the sweep file and an
# installed postcopy-emu (npm install /path/to/postcopy-emu, or a checkout after npm ci), after
# `mkdir -p logs` (Slurm does not create the log directory; without it every task fails at once).
#SBATCH --job-name=postcopy-sweep
#SBATCH --array=0-15
#SBATCH --cpus-per-task=2
#SBATCH --mem=2G
#SBATCH --time=01:00:00
#SBATCH --requeue
#SBATCH --output=logs/%x_%A_%a.out
#SBATCH --open-mode=append
set -eo pipefail
# The number of shards: the array's task count, written here once. It is never read from the
# array, so `sbatch --array=3 sweep.sh` reruns exactly shard 4 of 16.
SHARDS=16
SWEEP=${SWEEP:-sweep.yaml}
OUT=${OUT:-out}
# exec: Slurm's SIGTERM (requeue, scancel, time limit) reaches node itself, which stops its
# workers and leaves the shard's runs.jsonl for --resume. Workers: SLURM_CPUS_PER_TASK.
exec "${POSTCOPY_EMU:-node_modules/.bin/postcopy-emu}" sweep "$SWEEP" --shards "$SHARDS" \
  --out "$OUT/shard-$SLURM_ARRAY_TASK_ID" --resume
