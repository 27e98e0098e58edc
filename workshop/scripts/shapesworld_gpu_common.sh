# Shared settings of the ShapesWorld GPU scripts (sourced, not run).
DEVICE=${DEVICE:-cuda}
THREADS=${THREADS:-2}
CLI=(python -m pix2pix_zero shapesworld)
BIG=1000000  # step caps: the time limits decide

start_pool() {  # the logs folder, then the pre-rendered scene pool in $WORK/pool; sets t0
  mkdir -p "$WORK/logs"
  t0=$(date +%s)
  "${CLI[@]}" pool "$WORK/pool" --size "$POOL_SIZE"
  echo "pool ready after $(( $(date +%s) - t0 ))s"
}

train_variant() {  # train_variant NAME VARIANT [options...]: one model of one variant, in $WORK/VARIANT
  local name=$1 v=$2; shift 2
  "${CLI[@]}" train "$name" --device "$DEVICE" --threads "$THREADS" --work-dir "$WORK/$v" --pool "$WORK/pool" \
    --save-every 2000 --steps $BIG "$@" >"$WORK/logs/$v-$name.out" 2>"$WORK/logs/$v-$name.err"
}

keep() {  # keep VARIANT MODEL...: the init's finals for the models this variant does not train
  local v=$1; shift
  for m in "$@"; do rm -rf "$WORK/$v/$m/final"; mkdir -p "$WORK/$v/$m"; cp -r "$INIT/$m" "$WORK/$v/$m/final"; done
}

export_and_report() {  # export_and_report VARIANT: $WORK/VARIANT/bundle, then its report.json and samples
  local v=$1
  "${CLI[@]}" export --work-dir "$WORK/$v" --out "$WORK/$v/bundle" >"$WORK/logs/$v-export.out" 2>&1 &&
    "${CLI[@]}" report --model-dir "$WORK/$v/bundle" --num-scenes "$REPORT_SCENES" --seed 0 --device "$DEVICE" \
      --json "$WORK/$v/report.json" --samples-dir "$WORK/$v/samples" >"$WORK/logs/$v-report.out" 2>&1
}

report_variants() {  # report_variants: wait for the training jobs in $pids, then export and report every variant in $VARIANTS
  wait "${pids[@]}" || true  # a failed variant only loses the comparison; its log says why
  echo "trained after $(( $(date +%s) - t0 ))s"
  for v in $VARIANTS; do
    export_and_report "$v" &
  done
  wait || true
  echo "reported after $(( $(date +%s) - t0 ))s"
}
