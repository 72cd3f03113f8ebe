# dyt-mm: install, test, demo. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
REQS   := requirements/base.txt requirements/deploy.txt requirements/docs.txt \
          requirements/tensorboard.txt \
          requirements/constraints.txt
STAMP_PKG := $(VENV)/.installed-pkg
# The package is installed as a regular copy (mim needs its .mim/ folder in
# site-packages); it is re-installed whenever one of these files changes.
SOURCES := setup.py model-index.yml $(shell find dyt_mm tools configs -type f \( -name '*.py' -o -name '*.sh' -o -name '*.yml' \) -not -path '*/.mim/*' 2>/dev/null)

.PHONY: install test docs demo demo-seg demo-video demo-det demo-compare demo-multitask \
        demo-dyt-lora precision-table clean-demo

install: $(STAMP_PKG)

# Each step runs only when its inputs changed, so a second `make install` does nothing.
# The optional deploy extra (ONNX export, ONNX Runtime) and docs extra (Sphinx) are installed
# too, so that the tests run the exports and build the docs; so is TensorBoard, which one test logs to.
$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements/base.txt -r requirements/deploy.txt \
		-r requirements/docs.txt -r requirements/tensorboard.txt -c requirements/constraints.txt
	$(PIP) install -q --no-deps openmim==0.3.9
	touch $(STAMP)

$(STAMP_PKG): $(STAMP) $(SOURCES)
	$(PIP) install -q --no-deps --no-build-isolation .
	cd /tmp && $(CURDIR)/$(PY) -c "import dyt_mm, mmpretrain, mmseg.models, mmaction.models, mmdet.models; print('dyt_mm', dyt_mm.__version__, 'ready')"
	touch $(STAMP_PKG)

test: install
	$(PY) -m pytest -q tests

# The Sphinx site, warnings as errors (--keep-going: report them all before failing).
DOCS_OUT ?= docs/_build/html
docs: install
	$(PY) -m sphinx -W --keep-going -q -b html docs $(DOCS_OUT)

demo: install
	$(PY) tools/demo/digits_demo.py

demo-seg: install
	$(PY) tools/demo/seg_demo.py

demo-video: install
	$(PY) tools/demo/video_demo.py

demo-det: install
	$(PY) tools/demo/det_demo.py

demo-compare: install
	$(PY) tools/demo/compare_demo.py

# Reuses the source ViT of `make demo` (work_dirs/digits_demo/source_vit.pth) if it exists.
demo-multitask: install
	$(PY) tools/demo/multitask_demo.py

# the demos' accuracy in fp32, bf16 and int8 (after make demo, demo-seg, demo-video)
precision-table: install
	$(PY) tools/analysis/precision_table.py

# DyT + LoRA against DyT, LoRA and AdaptFormer on the three demos (docs/dyt_lora.md)
demo-dyt-lora: install
	$(PY) tools/demo/dyt_lora_demo.py --out work_dirs/dyt_lora_demo.md
