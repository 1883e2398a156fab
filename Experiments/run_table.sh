#!/usr/bin/env bash
# Runs every row of the flowers fine-tuning table with Finch (release build) and, when torch and
# timm import, the same rows with timm (Experiments/timm_reference.py), exports the distilled
# student, checks it in ONNX Runtime, and writes Experiments/RESULTS.md from the runs' own JSON.
#
#   Experiments/run_table.sh                 # everything, one seed, 3 epochs (≈ 1.5 h on 2 cores)
#   EPOCHS=2 SEEDS="0 1" Experiments/run_table.sh
#   ROWS="full distill" SIDES=finch Experiments/run_table.sh   # redo some rows; the rest are kept
#
# EPOCHS applies to every fine-tuning row except head-only (its config's epochs: cheap steps);
# SEEDS are offsets added to each config's seed (42); results go to Experiments/runs/table/.
# TEACHER_SEED makes distillation use that seed's teacher (to vary only the student's seed);
# RESULT_SEEDS lists the seeds RESULTS.md reports (default SEEDS), e.g. after a second-seed rerun:
#   ROWS="distill" SEEDS=1 TEACHER_SEED=0 RESULT_SEEDS="0 1" Experiments/run_table.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-3}
SEEDS=${SEEDS:-0}
ROWS=${ROWS:-"ncm head full mixup teacher distill imbalanced-plain imbalanced-weighted export"}
SIDES=${SIDES:-"finch timm"}
RESULT_SEEDS=${RESULT_SEEDS:-$SEEDS}
OUT=Experiments/runs/table
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=2

want() { [[ " $ROWS " == *" $1 "* ]]; }
side() { [[ " $SIDES " == *" $1 "* ]]; }

swift build -c release --product train
swift build -c release --product finch
TRAIN=.build/release/train
FINCH=.build/release/finch

HAVE_TIMM=0
if side timm && python3 Experiments/timm_reference.py --check 2>/dev/null; then HAVE_TIMM=1; fi
[ "$HAVE_TIMM" = 1 ] || echo "run_table: torch/timm not importable; timm columns are left empty (pip install torch timm safetensors pillow pyyaml)"

config_for() {
    case $1 in
        head) echo Experiments/flowers-head.yaml ;;
        full) echo Experiments/flowers.yaml ;;
        mixup) echo Experiments/flowers-mixup.yaml ;;
        teacher) echo Experiments/flowers-teacher-lite2.yaml ;;
        distill) echo Experiments/flowers-distill.yaml ;;
        imbalanced-plain) echo Experiments/flowers-imbalanced-plain.yaml ;;
        imbalanced-weighted) echo Experiments/flowers-imbalanced-weighted.yaml ;;
    esac
}

for s in $SEEDS; do
    seed=$((42 + s))
    if want ncm; then
        if side finch; then
            $FINCH ncm --weights Checkpoints/tf_efficientnet_lite0.safetensors --model tf_efficientnet_lite0 \
                --data Datasets/flowers --resolution 128 --json "$OUT/finch-ncm-s$s.json" | tee "$OUT/finch-ncm-s$s.log"
        fi
        if [ "$HAVE_TIMM" = 1 ]; then
            python3 Experiments/timm_reference.py --ncm --model tf_efficientnet_lite0 --weights Checkpoints/tf_efficientnet_lite0.safetensors \
                --data Datasets/flowers --resolution 128 --out "$OUT/timm-ncm-s$s.json" | tee "$OUT/timm-ncm-s$s.log"
        fi
    fi
    for row in head full mixup teacher distill imbalanced-plain imbalanced-weighted; do
        want "$row" || continue
        cfg=$(config_for "$row")
        sets=(--set "seed=$seed")
        [ "$row" = head ] || sets+=(--set "schedule.epochs=$EPOCHS")
        if side finch; then
            exp=$(sed -n 's/^experiment: *//p' "$cfg")
            $TRAIN --config "$cfg" "${sets[@]}" 2>&1 | tee "$OUT/finch-$row-s$s.log"
            run=$(ls -td "Experiments/runs/$exp"/*/ | head -1)
            cp "$run/summary.json" "$OUT/finch-$row-s$s.json"
            cp "$run/metrics.jsonl" "$OUT/finch-$row-s$s.jsonl"
        fi
        if [ "$HAVE_TIMM" = 1 ]; then
            extra=()
            [ "$row" = teacher ] && extra+=(--save-weights "$OUT/timm-teacher-s$s.pt")
            [ "$row" = distill ] && extra+=(--teacher-weights "$OUT/timm-teacher-s${TEACHER_SEED:-$s}.pt")
            python3 Experiments/timm_reference.py --config "$cfg" "${sets[@]}" --seed-offset 0 "${extra[@]}" \
                --out "$OUT/timm-$row-s$s.json" 2>&1 | tee "$OUT/timm-$row-s$s.log"
        fi
    done
done

# The distilled student (first seed's run): ONNX and safetensors, checked in ONNX Runtime on
# exactly the val inputs Finch evaluated.
if want export && side finch; then
    ck=Checkpoints/flowers-lite0-distill/latest/best.h5
    $FINCH export --checkpoint "$ck" --format onnx --output "$OUT/distilled-student.onnx"
    $FINCH export --checkpoint "$ck" --format safetensors --output "$OUT/distilled-student.safetensors"
    $FINCH evaluate --checkpoint "$ck" --data Datasets/flowers --json "$OUT/finch-distilled-eval.json" \
        --save-outputs "$OUT/distilled-val-outputs.safetensors" > "$OUT/finch-distilled-eval.log"
    if python3 -c 'import onnxruntime, safetensors, numpy' 2>/dev/null; then
        python3 Experiments/onnx_check.py "$OUT/distilled-val-outputs.safetensors" "$OUT/distilled-student.onnx" \
            "$OUT/distilled-student.safetensors" "$OUT/onnx-check.json"
    else
        echo "run_table: onnxruntime not importable; the export check is skipped (pip install onnxruntime safetensors numpy)"
    fi
fi

python3 Experiments/make_results.py --dir "$OUT" --epochs "$EPOCHS" --seeds "$RESULT_SEEDS" --output Experiments/RESULTS.md
echo "wrote Experiments/RESULTS.md"
