#!/bin/bash
# Joins the shards once every task has finished: sbatch --dependency=afterok:JOBID merge.sh
# The merge holds every record in memory: ~600 MB for 2,800 runs with time series.
#SBATCH --job-name=postcopy-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=00:30:00
#SBATCH --output=logs/%x_%j.out
set -eo pipefail
OUT=${OUT:-out}
POSTCOPY_EMU=${POSTCOPY_EMU:-node_modules/.bin/postcopy-emu}
"$POSTCOPY_EMU" merge "$OUT"/shard-* --out "$OUT/all"
exec "$POSTCOPY_EMU" report "$OUT/all"
