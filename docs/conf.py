"""Sphinx configuration of dyt-mm's docs (`make docs`; pages in Markdown through myst-parser)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # autodoc documents this checkout, not an installed copy

import dyt_mm  # noqa: E402  (first: it makes the toolboxes importable on CPU-only mmcv-lite)

project = 'dyt-mm'
copyright = '2024-2026, dyt-mm authors'
release = version = dyt_mm.__version__

extensions = ['myst_parser', 'sphinx.ext.autodoc', 'sphinx.ext.napoleon', 'sphinx.ext.viewcode']
source_suffix = {'.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build']

# Markdown: `#`-anchors for every heading down to ###, so pages link to each other's sections
# (`[text](page.md#a-heading)`), as README's links did.
myst_heading_anchors = 3
myst_enable_extensions = ['colon_fence']

# The API reference (api.md) documents what each module lists in __all__, in source order.
autodoc_default_options = {'members': True, 'show-inheritance': True}
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = 'furo'
html_title = f'dyt-mm {release}'

# Sections of DyTViT's docstring that list options as Args does.
napoleon_custom_sections = [('Family options', 'params_style'), ('ViTDet options', 'params_style')]
