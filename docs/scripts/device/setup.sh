# On the device machine, sourced at the start of each script (the call carries .device, made by pack.sh):
# installs the carried wheels beside the image's PyTorch and writes FER-2013 back into a CSV, once per machine;
# sets RUNS, where the call's runs go.
# The code that runs is this working tree's, not the packed wheel's (that one only provides the console
# scripts), so a change made after pack.sh still reaches the device.
[ -d /tmp/site/optuna ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .device/wheels/*.whl || return 1
ln -sfn ../conf fer_lightning/conf  # what the wheel maps conf/ to
export PYTHONPATH=$PWD:/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
[ -f /tmp/fer2013.csv ] || python3 docs/scripts/device/fer_pack.py unpack .device/fer2013.med.xz /tmp/fer2013.csv
export FER2013_CSV=/tmp/fer2013.csv
export RUNS=${RUNS:-/tmp/runs}  # every run, study and stack of the call, and the data cache
mkdir -p "$RUNS"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, lightning, fer_lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, fer_lightning.__file__)"
