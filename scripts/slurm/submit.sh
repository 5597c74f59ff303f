#!/bin/bash
# Submits an N-way sharded retrieval-head sweep and its merge (docs/scale-out.md):
#   scripts/slurm/submit.sh N RUN_DIR [retrieval-heads options...]
#   HEADLIGHT_SWEEP=ablate scripts/slurm/submit.sh N RUN_DIR [ablate options...]   (also cite, membership)
set -euo pipefail
n=${1:?usage: submit.sh N RUN_DIR [retrieval-heads options...]}
run_dir=${2:?usage: submit.sh N RUN_DIR [retrieval-heads options...]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
array=$(sbatch --parsable --array=0-$((n - 1)) "$here/detect.sbatch" "$run_dir" "$@")
out=${HEADLIGHT_SWEEP:-retrieval-heads}
out=${out//-/_}.h5
merge=$(sbatch --parsable --dependency=afterok:"${array%%;*}" "$here/merge.sbatch" "$run_dir" "$n" "$out")
echo "array job $array (N = $n), merge job $merge -> $run_dir/$out"
