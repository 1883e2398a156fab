#!/usr/bin/env bash
# Runs the rows of the flowers fine-tuning table with Finch (release build) and, when torch and
# timm import, the same rows with timm (Experiments/timm_reference.py), over several seeds; exports
# the distilled student, checks it in ONNX Runtime, and writes Experiments/RESULTS.md from the
# runs' own JSON.
#
#   Experiments/run_table.sh                                   # every row, seeds 0 1 2, both sides
#   ROWS="full teacher distill" SIDES=finch Experiments/run_table.sh
#   SEEDS=0 ROWS=head Experiments/run_table.sh
#   nohup nice -n 19 Experiments/run_table.sh > Experiments/runs/table/run_table.log 2>&1 &
#
# Resumable: a row/seed/side whose JSON in Experiments/results/ is present and complete (every
# epoch of the expected count, from the row's current config: its experiment name and, for the
# distillation rows, the teacher's input size) is never rerun, so the same command continues an
# interrupted table, and a result from an older recipe (the 128-px teacher) is rerun, not kept.
# An interrupted Finch run continues from its last.h5 (bit-exact resume) when it ran the same
# recipe (its checkpoint folder's recipe.txt); a timm run restarts.
# FORCE=1 reruns the selected rows anyway.
#
# Rows (ROWS, in this order by default; the cheap ones first): ncm head full imbalanced-plain
# imbalanced-weighted mixup teacher distill distill-hard distill-mixup export. Each seed's teacher is trained before
# that seed's distillation rows (also when ROWS names only a distillation row) and its weights are
# kept in Checkpoints/table/ for them. SEEDS are offsets added to each config's seed (42).
# EPOCHS overrides the student rows' epochs, head-only's included (default: each config's, 6) and
# TEACHER_EPOCHS the teacher's (default: its config's, 6 at 224 px).
# RESULT_SEEDS lists the seeds RESULTS.md reports (default SEEDS).
#
# Committed: Experiments/results/{finch,timm}-<row>-s<seed>.json (+ Finch's per-epoch .jsonl),
# a few kB each. Not committed: logs and run folders (Experiments/runs/table/), checkpoints and the
# timm teachers' state dicts (Checkpoints/table/).
set -uo pipefail
# The whole script is one block, read before it starts: a table runs for hours, and bash would
# otherwise read an edited script from the middle.
{
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"0 1 2"}
ROWS=${ROWS:-"ncm head full imbalanced-plain imbalanced-weighted mixup teacher distill distill-hard distill-mixup export"}
SIDES=${SIDES:-"finch timm"}
RESULT_SEEDS=${RESULT_SEEDS:-$SEEDS}
EPOCHS=${EPOCHS:-}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-}
FORCE=${FORCE:-0}
RES=${RESULTS_DIR:-Experiments/results}   # committed JSON
WORK=${WORK_DIR:-Experiments/runs/table}  # logs, run folders, export artefacts
CK=${CK_DIR:-Checkpoints/table}           # checkpoints, timm teacher weights
# One more `--set key=value` for every training run on both sides (a smoke test of the script
# with tiny runs into other folders, e.g. SET='data.class_limits={daisy: 8, ...}' RESULTS_DIR=/tmp/r).
SET=${SET:-}
mkdir -p "$RES" "$WORK" "$CK"
export OPENBLAS_NUM_THREADS=2
# Every result names the code it ran (make_results.py tells rows of older preprocessing apart);
# "+changes" when the working tree differs from that commit.
TABLE_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- Sources Package.swift 'Experiments/*.py' 'Experiments/*.sh' 'Experiments/*.yaml' 2>/dev/null || TABLE_COMMIT+="+changes"
export TABLE_COMMIT
START=$(date +%s)
FAILED=()

side() { [[ " $SIDES " == *" $1 "* ]]; }
say() {
    local e=$(( $(date +%s) - START ))
    printf '[run_table %02d:%02d:%02d] %s\n' $((e / 3600)) $((e % 3600 / 60)) $((e % 60)) "$*"
}

swift build -c release --product train || exit 1
swift build -c release --product finch || exit 1
TRAIN=.build/release/train
FINCH=.build/release/finch

HAVE_TIMM=0
if side timm; then
    if python3 Experiments/timm_reference.py --check 2>/dev/null; then HAVE_TIMM=1
    else say "torch/timm not importable; timm columns are left empty (pip install torch timm safetensors pillow pyyaml)"; fi
fi

config_for() {
    case $1 in
        head) echo Experiments/flowers-head.yaml ;;
        full) echo Experiments/flowers.yaml ;;
        mixup) echo Experiments/flowers-mixup.yaml ;;
        teacher) echo Experiments/flowers-teacher-lite2-224.yaml ;;
        distill) echo Experiments/flowers-distill.yaml ;;
        distill-hard) echo Experiments/flowers-distill-hard.yaml ;;
        distill-mixup) echo Experiments/flowers-distill-mixup.yaml ;;
        imbalanced-plain) echo Experiments/flowers-imbalanced-plain.yaml ;;
        imbalanced-weighted) echo Experiments/flowers-imbalanced-weighted.yaml ;;
        *) return 1 ;;
    esac
}

# The epochs a row runs: the override for its kind, else its config's schedule.epochs.
epochs_for() {
    local row=$1 cfg
    cfg=$(config_for "$row")
    if [ "$row" = teacher ] && [ -n "$TEACHER_EPOCHS" ]; then echo "$TEACHER_EPOCHS"
    elif [ "$row" != teacher ] && [ -n "$EPOCHS" ]; then echo "$EPOCHS"
    else python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["schedule"]["epochs"])' "$cfg"; fi
}

# What a row's result must say it ran: "<experiment> <teacher input size> <teacher view>" from its
# config (the teacher's size is distill.teacher.image_size, else the student's data.image_size; "-"
# without a teacher). Results from another recipe of the row are not complete: the students of the
# resized view (before distill.teacher.view) are rerun.
recipe_for() {
    python3 - "$(config_for "$1")" <<'EOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
d = c.get("distill")
size = ((d.get("teacher") or {}).get("image_size") or c["data"]["image_size"]) if d else "-"
# Finch's rule (Distillation.rendersOwnView; timm_reference.py the same): own, the default, only
# when the teacher's size differs from the student's; at one size the two views are one.
t = (d or {}).get("teacher") or {}
view = ("own" if t.get("view", "own") == "own" and size != c["data"]["image_size"] else "resized") if d else "-"
print(c["experiment"], size, view)
EOF
}

# A result is complete when it parses, has a final val/top1, ran the expected epochs, comes from
# the row's recipe (recipe_for; not checked for ncm) and (Finch) its per-epoch history has them all.
complete() {
    python3 - "$@" <<'EOF' 2>/dev/null
import json, os, sys
path, epochs = sys.argv[1], int(sys.argv[2])
recipe = sys.argv[3].split() if len(sys.argv) > 3 else []
try:
    r = json.load(open(path))
    ok = "val/top1" in r.get("final", {}) and r.get("epochs_run") == epochs
    if ok and recipe:
        ok = r.get("experiment") == recipe[0] and str(r.get("teacher_image_size", "-")) == recipe[1] \
            and r.get("teacher_view", "-") == recipe[2]
    hist = path[:-5] + ".jsonl"
    if ok and epochs > 0 and os.path.basename(path).startswith("finch-"):
        ok = sum(1 for l in open(hist) if l.strip()) == epochs
    sys.exit(0 if ok else 1)
except Exception:
    sys.exit(1)
EOF
}

# Finch: one row/seed in its own output and checkpoint folders, so its run is found without
# guessing and an interrupted one is continued (its last.h5) or, failing that, restarted clean.
run_finch() {
    local row=$1 s=$2 cfg=$3 ep=$4
    local json=$RES/finch-$row-s$s.json out=$WORK/finch-$row-s$s ck=$CK/finch-$row-s$s log=$WORK/finch-$row-s$s.log
    local exp
    exp=$(sed -n 's/^experiment: *//p' "$cfg")
    local sets=(--set "seed=$((42 + s))" --set "schedule.epochs=$ep" --set "output=$out" --set "checkpoints=$ck")
    [ -n "$SET" ] && sets+=(--set "$SET")
    case $row in distill*) sets+=(--set "distill.teacher.checkpoint=$CK/finch-teacher-s$s.h5") ;; esac
    # Only a run of the same recipe, epochs, seed, SET and (distillation) teacher weights is
    # continued: a last.h5 left by an older recipe (the 128-px teacher's students) or by a finished
    # run that FORCE=1 reruns would otherwise be resumed and its epochs reported as the new ones.
    local stamp resume=()
    stamp="$(recipe_for "$row") epochs=$ep seed=$s set=$SET"
    case $row in distill*) stamp+=" teacher=$(stat -c '%s %Y' "$CK/finch-teacher-s$s.h5" 2>/dev/null)" ;; esac
    if [ "$FORCE" != 1 ] && [ -e "$ck/$exp/latest/last.h5" ] && [ "$(cat "$ck/recipe.txt" 2>/dev/null)" = "$stamp" ]; then
        resume=(--resume "$ck/$exp")
        say "finch $row seed $s: continuing the interrupted run from $ck/$exp/latest/last.h5"
    else
        rm -rf "$out" "$ck" && mkdir -p "$ck" && echo "$stamp" > "$ck/recipe.txt"
    fi
    if ! $TRAIN --config "$cfg" "${sets[@]}" "${resume[@]}" > "$log" 2>&1; then
        if [ ${#resume[@]} -gt 0 ]; then
            say "finch $row seed $s: resume failed (see $log); restarting it from scratch"
            rm -rf "$out" "$ck" && mkdir -p "$ck" && echo "$stamp" > "$ck/recipe.txt"
            $TRAIN --config "$cfg" "${sets[@]}" > "$log" 2>&1 || return 1
        else
            return 1
        fi
    fi
    # A resumed run writes a new run folder holding only the epochs it ran, and a best.h5 only when
    # it improved after the resume: the history is the run folders' epochs in time order (a later
    # folder's record of an epoch wins), the summary and best.h5 the newest ones.
    local run best
    run=$(ls -t "$out/$exp"/*/summary.json 2>/dev/null | head -1)
    [ -n "$run" ] || return 1
    run=$(dirname "$run")
    python3 - "$out/$exp" "$run/summary.json" "$RES/finch-$row-s$s" "$cfg" <<'PY' || return 1
import glob, json, os, sys, yaml
runs, summary, dest, cfg = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
epochs = {}
for folder in sorted(glob.glob(os.path.join(runs, "*", "metrics.jsonl"))):
    for line in open(folder):
        if line.strip():
            r = json.loads(line)
            epochs[r["epoch"]] = line.strip()
s = json.load(open(summary))
s["epochs_run"] = len(epochs)
s["commit"] = os.environ["TABLE_COMMIT"]
# The input sizes, as timm_reference.py records them: a distilled student's result names its
# teacher's resolution, so one from another teacher is rerun (recipe_for).
c = yaml.safe_load(open(cfg))
s["image_size"] = c["data"]["image_size"]
if c.get("distill"):
    s["teacher_image_size"] = (c["distill"].get("teacher") or {}).get("image_size") or s["image_size"]
    t = c["distill"].get("teacher") or {}
    s["teacher_view"] = "own" if t.get("view", "own") == "own" and s["teacher_image_size"] != s["image_size"] else "resized"
with open(dest + ".jsonl.tmp", "w") as f:
    f.write("".join(epochs[e] + "\n" for e in sorted(epochs)))
with open(dest + ".json.tmp", "w") as f:
    json.dump(s, f, indent=2, sort_keys=True)
PY
    mv "$RES/finch-$row-s$s.jsonl.tmp" "$RES/finch-$row-s$s.jsonl"
    if [ "$row" = teacher ]; then
        best=$(ls -t "$ck/$exp"/*/best.h5 2>/dev/null | head -1)
        [ -n "$best" ] && cp "$best" "$CK/finch-teacher-s$s.h5.tmp" && mv "$CK/finch-teacher-s$s.h5.tmp" "$CK/finch-teacher-s$s.h5" || return 1
    fi
    mv "$json.tmp" "$json"
}

run_timm() {
    local row=$1 s=$2 cfg=$3 ep=$4
    local extra=()
    [ -n "$SET" ] && extra+=(--set "$SET")
    [ "$row" = teacher ] && extra+=(--save-weights "$CK/timm-teacher-s$s.pt")
    case $row in distill*) extra+=(--teacher-weights "$CK/timm-teacher-s$s.pt") ;; esac
    python3 Experiments/timm_reference.py --config "$cfg" --set "seed=$((42 + s))" --set "schedule.epochs=$ep" \
        "${extra[@]}" --out "$WORK/timm-$row-s$s.json" > "$WORK/timm-$row-s$s.log" 2>&1 \
        && stamp "$WORK/timm-$row-s$s.json" "$RES/timm-$row-s$s.json"
}

# A finished result (JSON at $1) into the results folder ($2), naming the commit it ran at.
stamp() {
    python3 - "$1" "$2" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
r["commit"] = os.environ["TABLE_COMMIT"]
with open(sys.argv[2] + ".tmp", "w") as f:
    json.dump(r, f, indent=1)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
}

run_ncm() {
    local sd=$1 s=$2
    if [ "$sd" = finch ]; then
        $FINCH ncm --weights Checkpoints/tf_efficientnet_lite0.safetensors --model tf_efficientnet_lite0 \
            --data Datasets/flowers --resolution 128 --json "$WORK/finch-ncm-s$s.json" > "$WORK/finch-ncm-s$s.log" 2>&1 \
            && stamp "$WORK/finch-ncm-s$s.json" "$RES/finch-ncm-s$s.json"
    else
        python3 Experiments/timm_reference.py --ncm --model tf_efficientnet_lite0 --weights Checkpoints/tf_efficientnet_lite0.safetensors \
            --data Datasets/flowers --resolution 128 --out "$WORK/timm-ncm-s$s.json" > "$WORK/timm-ncm-s$s.log" 2>&1 \
            && stamp "$WORK/timm-ncm-s$s.json" "$RES/timm-ncm-s$s.json"
    fi
}

# Whether a side's teacher for seed s is ready: its JSON complete and its weights kept.
teacher_ready() {
    local sd=$1 s=$2 w
    [ "$sd" = finch ] && w=$CK/finch-teacher-s$s.h5 || w=$CK/timm-teacher-s$s.pt
    [ -f "$w" ] && complete "$RES/$sd-teacher-s$s.json" "$(epochs_for teacher)" "$(recipe_for teacher)"
}

# One row, one seed, one side: skipped when its result is complete (FORCE=1 aside).
do_one() {
    local row=$1 s=$2 sd=$3 ep t0 json recipe=""
    json=$RES/$sd-$row-s$s.json   # not in the line above: `local`'s words expand before it assigns
    [ "$sd" = timm ] && [ "$HAVE_TIMM" != 1 ] && return 0
    if [ "$row" = ncm ]; then ep=0; else ep=$(epochs_for "$row"); recipe=$(recipe_for "$row"); fi
    if [ "$FORCE" != 1 ] && complete "$json" "$ep" "$recipe"; then
        # A teacher's JSON without its weights (a fresh clone) is no use to its students.
        if [ "$row" != teacher ] || teacher_ready "$sd" "$s"; then say "$sd $row seed $s: done before, kept"; return 0; fi
    fi
    case $row in
        distill*) if ! teacher_ready "$sd" "$s"; then
                      say "$sd $row seed $s: needs seed $s's teacher first"
                      do_one teacher "$s" "$sd" || return 1
                  fi ;;
    esac
    t0=$(date +%s)
    say "$sd $row seed $s: started ($ep epochs; log $WORK/$sd-$row-s$s.log)"
    local ok=0
    if [ "$row" = ncm ]; then run_ncm "$sd" "$s" || ok=1
    elif [ "$sd" = finch ]; then run_finch "$row" "$s" "$(config_for "$row")" "$ep" || ok=1
    else run_timm "$row" "$s" "$(config_for "$row")" "$ep" || ok=1; fi
    if [ $ok = 0 ] && complete "$json" "$ep" "$recipe"; then
        say "$sd $row seed $s: finished in $(( $(date +%s) - t0 )) s, val top-1 $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["final"]["val/top1"], 4))' "$json")"
    else
        say "$sd $row seed $s: FAILED after $(( $(date +%s) - t0 )) s (see $WORK/$sd-$row-s$s.log)"
        FAILED+=("$sd $row seed $s")
        return 1
    fi
}

# The distilled student (first seed's soft-KD run): ONNX and safetensors, checked in ONNX Runtime
# on exactly the val inputs Finch evaluated.
do_export() {
    local s=${SEEDS%% *} exp=flowers-lite0-distill
    local ck=$CK/finch-distill-s$s/$exp/latest/best.h5 x=$WORK/export
    if [ "$FORCE" != 1 ] && [ -f "$RES/onnx-check.json" ]; then say "export: done before, kept"; return 0; fi
    [ -f "$ck" ] || { say "export: no distilled student for seed $s yet ($ck); skipped"; return 0; }
    python3 -c 'import onnxruntime, safetensors, numpy' 2>/dev/null \
        || { say "export: onnxruntime not importable; skipped (pip install onnxruntime safetensors numpy)"; return 0; }
    say "export: started"
    mkdir -p "$x"
    if $FINCH export --checkpoint "$ck" --format onnx --output "$x/distilled-student.onnx" > "$x/export.log" 2>&1 \
        && $FINCH export --checkpoint "$ck" --format safetensors --output "$x/distilled-student.safetensors" >> "$x/export.log" 2>&1 \
        && $FINCH evaluate --checkpoint "$ck" --data Datasets/flowers --json "$RES/finch-distilled-eval.json" \
            --save-outputs "$x/distilled-val-outputs.safetensors" >> "$x/export.log" 2>&1 \
        && python3 Experiments/onnx_check.py "$x/distilled-val-outputs.safetensors" "$x/distilled-student.onnx" \
            "$x/distilled-student.safetensors" "$RES/onnx-check.json.tmp" >> "$x/export.log" 2>&1; then
        mv "$RES/onnx-check.json.tmp" "$RES/onnx-check.json"
        say "export: finished"
    else
        say "export: FAILED (see $x/export.log)"
        FAILED+=("export")
    fi
}

say "seeds: $SEEDS; rows: $ROWS; sides: $SIDES"
for s in $SEEDS; do
    for row in $ROWS; do
        [ "$row" = export ] && continue
        if [ "$row" != ncm ] && ! config_for "$row" > /dev/null; then say "unknown row '$row'"; exit 2; fi
        for sd in finch timm; do
            side "$sd" || continue
            do_one "$row" "$s" "$sd" || true
        done
    done
done
[[ " $ROWS " == *" export "* ]] && side finch && do_export

python3 Experiments/make_results.py --dir "$RES" --seeds "$RESULT_SEEDS" --output "${RESULTS_MD:-Experiments/RESULTS.md}" \
    --wall-seconds $(( $(date +%s) - START )) && say "wrote ${RESULTS_MD:-Experiments/RESULTS.md}"
if [ ${#FAILED[@]} -gt 0 ]; then
    say "failed: ${FAILED[*]}"
    exit 1
fi
say "all selected rows done"
exit 0
}
