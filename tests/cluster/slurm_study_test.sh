#!/usr/bin/env bash
# A scaling study through the private Slurm (cluster/study.sh submit: one job array per rank
# count): 12 cells (ranks 1/2/4 x samples 8/16 x V1/V2 on the shipped Fashion-MNIST ViT, the
# cheapest settings, evaluated on 100 test images). On the first submission one cell fails (a
# file where its output directory belongs, which psaq refuses) and one is cancelled while it runs
# (scancel: psaq checkpoints, its report says preempted); the other 10 finish. Resubmitting the same study submits those two alone
# (one array each), leaves the 10 reports untouched, and then all 12 are finished in study.csv,
# with top-1, and study.png is written.
#   slurm_study_test.sh <psaq binary>
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" slurm_study
export PSAQ="$1"
study_sh="$PSAQ_ROOT/cluster/study.sh"
export OMP_NUM_THREADS=1

# 100 Fashion-MNIST test images as IDX files: evaluating on all 10,000 takes about a minute per
# cell here.
/usr/bin/python3 - "$WORK/fmnist" <<'EOF'
import gzip, os, struct, sys
src, dst, n = "/usr/share/datasets/fashion-mnist/", sys.argv[1], 100
os.makedirs(dst)
images = gzip.open(src + "t10k-images-idx3-ubyte.gz").read()
labels = gzip.open(src + "t10k-labels-idx1-ubyte.gz").read()
open(dst + "/t10k-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 2051, n, 28, 28) + images[16:16 + n * 784])
open(dst + "/t10k-labels-idx1-ubyte", "wb").write(struct.pack(">II", 2049, n) + labels[8:8 + n])
EOF

cat >"$WORK/study.json" <<EOF
{"output_dir": "study",
 "grid": {"ranks": [1, 2, 4], "num_samples": [8, 16], "method": ["v1", "v2"],
          "model": ["fmnist_vit"]},
 "flags": {"samples_per_batch": 4, "eval_dataset": "fashion_mnist",
           "dataset_dir": "$WORK/fmnist", "eval_float": false},
 "method_flags": {"v1": {"v1_epochs": 1, "v1_iterations": 20, "v1_warmup": 5},
                  "v2": {"v2_rounds": 2, "v2_sample_iterations": 3, "v2_image_warmup": 1,
                         "v2_student_iterations": 2}}}
EOF
out="$WORK/study"
failing="r2-n16-v2-w4a8-fmnist_vit-s0"
# A plain file where the cell's directory belongs: psaq refuses the output directory.
mkdir -p "$out/cells"
echo "not a directory" >"$out/cells/$failing"

# submit: study.sh submit (from the test directory); prints its output.
submit() {
  (cd "$WORK" && "$study_sh" submit "$WORK/study.json" --overcommit --time=10 --partition=local) ||
    fail "study.sh submit failed"
}

# wait_done SUBMIT_OUTPUT: wait until no job that the submission printed is queued or running.
wait_done() {
  local ids deadline=$(($(date +%s) + 240))
  ids="$(sed -n 's/^study.sh: submitted job \([0-9]*\):.*/\1/p' <<<"$1" | paste -sd,)"
  [ -n "$ids" ] || fail "study.sh submit submitted nothing: $1"
  note "submitted $ids"
  while [ -n "$(squeue -h -j "$ids" 2>/dev/null)" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "jobs $ids still queued or running after 240 s"
    sleep 1
  done
}

# job_of SUBMIT_OUTPUT RANKS: the job id of the submission's array for RANKS.
job_of() { sed -n "s/^study.sh: submitted job \([0-9]*\): .* on $2 rank(s)\$/\1/p" <<<"$1"; }

# status_of NAME: the cell's status column in study.csv.
status_of() { awk -F, -v n="$1" '$2 == n { print $10 }' "$out/study.csv"; }

first="$(submit)"
[ "$(grep -c '^study.sh: submitted job' <<<"$first")" = 3 ] || fail "not one array per rank count: $first"
# Cancel one cell while it runs (scancel, as a user or an operator does), as soon as psaq holds
# the cell's lock, which it takes before loading anything (the run takes seconds after that).
# Slurm sends TERM; psaq checkpoints and marks its report "preempted".
killed="r1-n16-v1-w4a8-fmnist_vit-s0"
killed_index=3
deadline=$(($(date +%s) + 240))
until [ -e "$out/cells/$killed/.psaq.lock" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "cell $killed did not start within 240 s"
  sleep 0.1
done
scancel "$(job_of "$first" 1)_$killed_index"
note "cancelled cell $killed"
wait_done "$first"

"$study_sh" collect "$WORK/study.json" >/dev/null || fail "collect failed"
[ "$(tail -n +2 "$out/study.csv" | wc -l)" = 12 ] || fail "study.csv has not 12 rows: $(cat "$out/study.csv")"
expect_eq "failing cell after the first submission" "$(status_of "$failing")" not_run
expect_eq "cancelled cell after the first submission (finished: it ran faster than this test's poll)" \
  "$(status_of "$killed")" preempted
failing_index="$(awk -F, -v n="$failing" '$2 == n { print $1 }' "$out/study.csv")"
expect_eq "Slurm state of the failing cell's task" \
  "$(job_field "$(job_of "$first" 2)_$failing_index" JobState)" FAILED
[ "$(grep -c ',finished,' "$out/study.csv")" = 10 ] || fail "not 10 finished cells: $(cat "$out/study.csv")"
# The finished reports, to show that the resubmission does not run them again.
(cd "$out/cells" &&
  sha256sum $(awk -F, '$10 == "finished" { print $2 "/report.json" }' "$out/study.csv")) \
  >"$WORK/reports.sha256"
[ "$(wc -l <"$WORK/reports.sha256")" = 10 ] || fail "not 10 finished reports to compare"

rm "$out/cells/$failing"
second="$(submit)"
wait_done "$second"
expect_eq "second submission" "$(sed -n 's/^study.sh: submitted job [0-9]*: //p' <<<"$second" |
  paste -sd';')" "cells $killed_index on 1 rank(s);cells $failing_index on 2 rank(s)"
"$study_sh" collect "$WORK/study.json" >"$WORK/collect.out" || fail "collect failed"
(cd "$out/cells" && sha256sum --quiet -c "$WORK/reports.sha256") ||
  fail "a finished cell's report changed on resubmission"
[ "$(grep -c ',finished,' "$out/study.csv")" = 12 ] || fail "not 12 finished cells: $(cat "$out/study.csv")"
# Every cell evaluated (top-1, the last column, non-empty); V2 cells on > 1 rank all-reduced.
awk -F, 'NR > 1 && $19 == "" { exit 1 }' "$out/study.csv" || fail "a cell without top-1"
awk -F, 'NR > 1 && $4 == "v2" && $5 > 1 && !($17 > 0) { exit 1 }' "$out/study.csv" ||
  fail "a multi-rank V2 cell without bytes per round"
[ "$(head -c 8 "$out/study.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "study.png is not a PNG"
# A plan of the finished study has nothing to run.
grep -q "12 cells, 12 finished, 0 to run" <<<"$("$study_sh" plan "$WORK/study.json")" ||
  fail "the plan still has cells to run"
note "PASS: 12 cells finished, the failed and the cancelled one rerun alone; $out/study.csv, $out/study.png"
