#!/usr/bin/env bash
# Submit bids-deepwmh to Slurm: one array task per participant (each with its own work folder),
# then the group level as a job that starts only when every task has succeeded.
#
#   DEEPWMH_SIF=/images/deepwmh.sif BIDS_DIR=/data/study OUT_DIR=/data/study/derivatives/deepwmh \
#   WORK_ROOT=/scratch/$USER/deepwmh-work scripts/slurm/submit.sh [sbatch options for the tasks]
#
# e.g. `scripts/slurm/submit.sh --partition=gpu --gres=gpu:1` to give every task a GPU.
# Extra deepwmh options: DEEPWMH_ARGS for the participant level (e.g. "--tta"), DEEPWMH_GROUP_ARGS
# for the group level (e.g. "--manual-masks /data/derivatives/manual"; /data is BIDS_DIR).
# A failed task: see docs/containers.md ("A failed task") for how to resume it.
set -euo pipefail
: "${DEEPWMH_SIF:?set DEEPWMH_SIF to the Apptainer image (.sif)}"
: "${BIDS_DIR:?set BIDS_DIR to the BIDS dataset}"
: "${OUT_DIR:?set OUT_DIR to the output (derivatives) folder}"
: "${WORK_ROOT:?set WORK_ROOT to a scratch folder for the work folders}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

mkdir -p "$WORK_ROOT" "$OUT_DIR" "$WORK_ROOT/slurm-logs"
# The task -> participant list, written once: task N processes line N+1 (stable on resubmission).
LIST="$WORK_ROOT/participants.txt"
if [ ! -f "$LIST" ]; then
    find "$BIDS_DIR" -mindepth 1 -maxdepth 1 -type d -name 'sub-*' -printf '%f\n' | sort >"$LIST"
fi
count="$(wc -l <"$LIST")"
[ "$count" -gt 0 ] || { echo "submit.sh: no sub-* folder in $BIDS_DIR" >&2; exit 1; }
export DEEPWMH_SIF BIDS_DIR OUT_DIR WORK_ROOT DEEPWMH_ARGS="${DEEPWMH_ARGS:-}" \
    DEEPWMH_GROUP_ARGS="${DEEPWMH_GROUP_ARGS:-}"

array_job="$(sbatch --parsable --array="0-$((count - 1))" --output="$WORK_ROOT/slurm-logs/%x-%A_%a.out" \
    "$@" "$HERE/participant.sbatch")"
group_job="$(sbatch --parsable --dependency="afterok:${array_job%%;*}" --kill-on-invalid-dep=yes \
    --output="$WORK_ROOT/slurm-logs/%x-%j.out" "$HERE/group.sbatch")"
echo "participant level: array job $array_job ($count tasks, list in $LIST); group level: job $group_job"
