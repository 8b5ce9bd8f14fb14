#!/usr/bin/env bash
# psaq study and cluster/study.sh run, as a user runs them: bad flags and a bad study file are one
# error line each (status 2 / 1); plan lists the cells and writes plan.tsv; a local run of a
# two-cell V2 study (1 and 2 ranks, the golden ViT, cheapest settings) finishes both cells; a
# second run runs nothing; collect writes study.csv and study.png; the model predicts 8..512
# ranks and checks itself against both cells.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
STUDY_SH="$PSAQ_SOURCE_DIR/cluster/study.sh"

cat >"$WORK/study.json" <<EOF
{"output_dir": "out",
 "grid": {"ranks": [1, 2], "num_samples": [8], "method": ["v2"],
          "model": ["$GOLDEN/vit_fmnist.weights.safetensors"]},
 "flags": {"samples_per_batch": 4},
 "method_flags": {"v2": {"v2_rounds": 2, "v2_sample_iterations": 3, "v2_image_warmup": 1,
                         "v2_student_iterations": 2}}}
EOF

# Usage errors: one line, status 2.
run no_study "$PSAQ" study --action=plan
[ "$RC" -eq 2 ] || fail "no --study exited $RC, expected 2"
expect_in no_study err "--study is required"
run bad_action "$PSAQ" study --action=go --study="$WORK/study.json"
[ "$RC" -eq 2 ] || fail "bad --action exited $RC, expected 2"
expect_in bad_action err "--action must be plan, collect or model, got 'go'"
run bad_ranks "$PSAQ" study --action=model --study="$WORK/study.json" --predict_ranks=8,x
[ "$RC" -eq 2 ] || fail "bad --predict_ranks exited $RC, expected 2"
expect_in bad_ranks err "--predict_ranks: 'x' is not a rank count >= 1"
run bad_bw "$PSAQ" study --action=model --study="$WORK/study.json" --bus_gbps=0
[ "$RC" -eq 2 ] || fail "--bus_gbps=0 exited $RC, expected 2"
expect_in bad_bw err "--bus_gbps must be > 0"

# A bad study file: one line naming the file and the key, status 1; an unknown psaq flag too.
echo '{"output_dir": "o", "grid": {"ranks": [0]}}' >"$WORK/bad.json"
run bad_file "$PSAQ" study --study="$WORK/bad.json"
[ "$RC" -eq 1 ] || fail "bad study file exited $RC, expected 1"
[ "$(psaq_error_lines bad_file | wc -l)" -eq 1 ] || fail "bad study file: not one error line"
expect_in bad_file err "$WORK/bad.json: grid.ranks: 0 is not an integer in [1,"
sed 's/"samples_per_batch"/"samples_per_btch"/' "$WORK/study.json" >"$WORK/typo.json"
run typo "$PSAQ" study --study="$WORK/typo.json"
[ "$RC" -eq 1 ] || fail "unknown flag in a study exited $RC, expected 1"
expect_in typo err "flags.samples_per_btch: not a flag of psaq quantize"
run typo_sh "$STUDY_SH" plan "$WORK/typo.json"
[ "$RC" -eq 1 ] || fail "study.sh plan of a bad study exited $RC, expected 1"
expect_in typo_sh err "flags.samples_per_btch: not a flag of psaq quantize"

run plan "$PSAQ" study --action=plan --study="$WORK/study.json"
[ "$RC" -eq 0 ] || fail "plan exited $RC"
expect_in plan out "2 cells, 0 finished, 2 to run; plan: $WORK/out/plan.tsv"
expect_in plan out "r2-n8-v2-w4a8-vit_fmnist.weights-s0"
[ "$(grep -vc '^#' "$WORK/out/plan.tsv")" -eq 2 ] || fail "plan.tsv has not 2 cell lines"

# The model refuses a study without finished V2 cells.
run model_early "$PSAQ" study --action=model --study="$WORK/study.json"
[ "$RC" -eq 1 ] || fail "model without finished cells exited $RC, expected 1"
expect_in model_early err "the model needs a finished V2 cell; the study has none"

HANG_SECONDS=180
PSAQ_MPIRUN="$PSAQ_MPIRUN" run local "$STUDY_SH" run "$WORK/study.json"
[ "$RC" -eq 0 ] || fail "study.sh run exited $RC: $(cat "$WORK/local.err")"
expect_in local out "study.sh: cell 1 r2-n8-v2-w4a8-vit_fmnist.weights-s0 on 2 rank(s)"
run again "$STUDY_SH" run "$WORK/study.json"
[ "$RC" -eq 0 ] || fail "second study.sh run exited $RC"
expect_in again out "2 cells, 2 finished, 0 to run"
grep -q "^study.sh: cell" "$WORK/again.out" && fail "the second run ran a finished cell"

run collect "$STUDY_SH" collect "$WORK/study.json"
[ "$RC" -eq 0 ] || fail "collect exited $RC: $(cat "$WORK/collect.err")"
[ "$(grep -c ',finished,' "$WORK/out/study.csv")" -eq 2 ] || fail "study.csv: not 2 finished rows"
[ -s "$WORK/out/study.png" ] || fail "no study.png"

run model "$PSAQ" study --action=model --study="$WORK/study.json" --bus_gbps=50 --latency_us=2
[ "$RC" -eq 0 ] || fail "model exited $RC: $(cat "$WORK/model.err")"
expect_in model out "reference r1-n8-v2-w4a8-vit_fmnist.weights-s0"
expect_in model out "bw = 50.000 GB/s, L = 2.000 us"
grep -qE '^ +512 ' "$WORK/model.out" || fail "no prediction for 512 ranks"
expect_in model out "r2-n8-v2-w4a8-vit_fmnist.weights-s0"
finish
