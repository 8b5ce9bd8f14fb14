#!/usr/bin/env bash
# `psaq quantize` as a 2-task Slurm job through cluster/psaq.sbatch (srun --mpi=pmix): the job
# ends COMPLETED, the export, manifest, both sample shards and report.json (status complete,
# world size 2) are written, and the export loads in `psaq inspect`.
#   slurm_psaq_quantize_test.sh <psaq binary> <weights file>
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" slurm_psaq_quantize
psaq="$1" model="$2"

job=$(submit --ntasks=2 --time=10 -D "$WORK" -o "$WORK/job.out" \
  "$PSAQ_ROOT/cluster/psaq.sbatch" "$psaq" quantize --model="$model" --method=v1 \
  --num_samples=8 --samples_per_batch=4 --v1_epochs=1 --v1_iterations=20 --v1_warmup=5 \
  --w_bits=4 --a_bits=8 --output_dir="$WORK/run")
note "submitted job $job"
wait_for_state "$job" 90 COMPLETED >/dev/null
expect_eq "exit code" "$(job_field "$job" ExitCode)" "0:0" "$job"
for f in model.safetensors model.manifest.json report.json samples/shard-0-of-2.safetensors \
         samples/shard-1-of-2.safetensors; do
  [ -s "$WORK/run/$f" ] || fail "$f missing" "$job"
done
grep -q '"status": "complete"' "$WORK/run/report.json" || fail "report status is not complete" "$job"
grep -q '"world_size": 2' "$WORK/run/report.json" || fail "report world size is not 2" "$job"
grep -q "psaq quantize: complete" "$WORK/job.out" || fail "no summary in the job output" "$job"
"$psaq" inspect --file="$WORK/run/model.safetensors" >"$WORK/inspect.out" 2>&1 ||
  fail "psaq inspect of the export failed: $(cat "$WORK/inspect.out")" "$job"
note "PASS: job $job COMPLETED and wrote $WORK/run/model.safetensors"
