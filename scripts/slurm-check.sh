#!/bin/bash
# Runs docs/clusters.md's Slurm recipe on a real one-node Slurm cluster on this machine and checks
# what an HPC user relies on. Not part of npm test: it needs root and Debian's slurm-wlm and munge
# (installed here if missing), and takes about two minutes. Run from a checkout after npm ci:
#   sudo bash scripts/slurm-check.sh
# Checks: 3 array tasks merge byte-identical to an unsharded sweep; a task resubmitted alone runs
# its own shard only; a task requeued mid-run resumes and leaves no node process behind.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/postcopy-slurm-XXXX)
fail() { echo "slurm-check: FAIL: $*" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; }
fi

# A one-node cluster without systemd: munged, slurmctld -D and slurmd -D in the background.
# proctrack/linuxproc is the plugin under which an `npm exec` wrapper used to orphan node.
mkdir -p /etc/munge /run/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; chmod 400 /etc/munge/munge.key; }
chown -R munge:munge /etc/munge /run/munge 2>/dev/null || true
host=$(hostname -s)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=postcopy
SlurmctldHost=$host
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ReturnToService=2
MpiDefault=none
JobRequeue=1
NodeName=$host CPUs=$(nproc) RealMemory=$(( $(free -m | awk '/Mem:/ {print $2}') - 1024 )) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
pkill -x slurmd || true; pkill -x slurmctld || true
pgrep -x munged >/dev/null || runuser -u munge -- munged
slurmctld -D -i >/var/log/slurm/ctld.log 2>&1 &
ctld=$!
sleep 1
slurmd -D >/var/log/slurm/slurmd.log 2>&1 &
slurmd_pid=$!
trap 'kill $ctld $slurmd_pid 2>/dev/null || true' EXIT
for _ in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo -h -o %T | grep -q idle || fail "the node did not come up (see /var/log/slurm/)"

# The user's directory: the sweep file, the installed package, the documented scripts (3 shards).
cd "$work"
cp "$repo/examples/storm-sweep.yaml" sweep.yaml
sed -e 's/--array=0-15/--array=0-2/' -e 's/^SHARDS=16$/SHARDS=3/' "$repo/examples/slurm/sweep.sh" > sweep.sh
cp "$repo/examples/slurm/merge.sh" merge.sh
export POSTCOPY_EMU="$repo/bin/postcopy-emu.mjs"
mkdir -p logs

wait_job() { for _ in $(seq 600); do [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0; sleep 1; done; fail "job $1 did not finish"; }
job=$(sbatch --parsable sweep.sh)
wait_job "$job"
grep -h "runs (" logs/postcopy-sweep_"$job"_*.out
merge=$(sbatch --parsable merge.sh)
wait_job "$merge"
"$POSTCOPY_EMU" sweep sweep.yaml --out whole >/dev/null
for f in runs.jsonl runs.csv metrics.md; do cmp -s "out/all/$f" "whole/$f" || fail "merged $f differs from the unsharded sweep"; done
echo "slurm-check: 3 tasks merged byte-identical to the unsharded sweep"

# Resubmitting one task reruns its own shard, not the whole sweep.
rm -rf out/shard-1
one=$(sbatch --parsable --array=1 sweep.sh)
wait_job "$one"
grep -q "shard 2/3 from SLURM_ARRAY_TASK_ID=1" logs/postcopy-sweep_"$one"_1.out || fail "the resubmitted task did not run shard 2/3"
[ "$(wc -l < out/shard-1/runs.jsonl)" -eq 14 ] || fail "the resubmitted task ran $(wc -l < out/shard-1/runs.jsonl) runs, not 14"
echo "slurm-check: a task resubmitted alone ran shard 2/3 only (14 of 42 runs)"

# A requeue mid-run: SIGTERM reaches node (exec), the task resumes where it stopped, no orphan.
rm -rf out
sed -e 's/^SWEEP=.*/SWEEP=slow.yaml/' sweep.sh > slow.sh
sed -e 's/memory.pages: 65536/memory.pages: 262144/' -e 's/count: 8192 }/count: 32768 }/' -e 's/count: 64 }/count: 256 }/' sweep.yaml > slow.yaml
slow=$(sbatch --parsable slow.sh)
for _ in $(seq 300); do [ -s out/shard-0/runs.jsonl ] && break; sleep 0.2; done
scontrol requeue "${slow}_0" || fail "requeue refused"
wait_job "$slow"
pgrep -f "postcopy-emu.mjs sweep slow.yaml" >/dev/null && fail "a node process survived the requeue"
# --open-mode=append keeps both lives of the task in one log.
grep -h "interrupted by SIGTERM" logs/postcopy-sweep_"$slow"_0.out || fail "the requeued task's log has no 'interrupted by SIGTERM'"
grep -h "resumed from runs.jsonl" logs/postcopy-sweep_"$slow"_0.out | tail -1
[ "$(wc -l < out/shard-0/runs.jsonl)" -eq 14 ] || fail "the requeued shard holds $(wc -l < out/shard-0/runs.jsonl) runs, not 14"
echo "slurm-check: a task requeued mid-run resumed and finished its shard; no node process left behind"
echo "slurm-check: all passed ($work)"
