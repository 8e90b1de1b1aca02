#!/usr/bin/env bash
# The README's comparison: all six methods, 3 seeds, the default params otherwise, on one quiet
# machine. It runs, one by one, the stages `dvc exp run -S 'compare.methods=[reuse,selective_backprop,
# infobatch,rho_loss]' -S 'train.seeds=[0,1,2]'` would run, in a scratch clone (default /tmp/six_methods),
# so the committed results stay the default's; its report is <scratch>/reports/README.md.
# Usage: bash benchmarks/six_methods.sh [scratch folder]   (about 80 minutes on 2 CPU cores)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${1:-/tmp/six_methods}"
rm -rf "$scratch" && git clone -q "$repo" "$scratch" && cd "$scratch"
mkdir -p data/raw && for archive in "$repo"/data/raw/*.tar.gz; do ln -s "$(realpath "$archive")" data/raw/; done
export PATH="$repo/.venv/bin:$PATH"
python - <<'PY'
import yaml

params = yaml.safe_load(open("params.yaml"))
params["compare"]["methods"] = ["reuse", "selective_backprop", "infobatch", "rho_loss"]
params["train"]["seeds"] = [0, 1, 2]
yaml.safe_dump(params, open("params.yaml", "w"), sort_keys=False)
PY
rm -rf results checkpoints
for stage in "prepare" "tables --method rho_loss" "train --method upper_bound" "train --method uniform" \
  "train --method reuse" "train --method selective_backprop" "train --method infobatch" "train --method rho_loss" \
  "timing" "timing --method reuse" "timing --method selective_backprop" "timing --method infobatch" \
  "timing --method rho_loss" "report"; do
  echo "== $stage $(date +%T)"
  /usr/bin/time -f "== $stage: %e s" python -m stages.$stage
done
