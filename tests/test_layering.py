"""The algorithm modules stay torch-only; diffusers/transformers are touched only by the adapters."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pix2pix_zero"
CORE = ["ddim", "regularizers", "guidance", "directions", "inversion", "editing", "config", "cuda_graphs", "files"]
ALLOWED_THIRD_PARTY = {"torch", "safetensors"}
FRONT_ENDS = {"cli", "ui", "bench", "shapesworld", "__main__"}  # __main__: `python -m pix2pix_zero`


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


@pytest.mark.parametrize("name", CORE)
def test_core_modules_import_only_torch_and_core(name):
    import sys

    for imported in _imports(PACKAGE / f"{name}.py"):
        if imported.startswith("."):
            assert imported.lstrip(".") in CORE, f"{name}.py imports {imported}"
        else:
            root = imported.split(".")[0]
            assert root in ALLOWED_THIRD_PARTY or root in sys.stdlib_module_names, f"{name}.py imports {imported}"


def test_only_adapters_touch_diffusers_and_transformers():
    allowed = {"attention.py", "components.py", "components_sdxl.py", "captioning.py", "sentences.py", "api.py"}
    for module in PACKAGE.glob("*.py"):
        if module.name in allowed or module.stem in FRONT_ENDS:
            continue
        roots = {i.split(".")[0] for i in _imports(module)}
        assert not roots & {"diffusers", "transformers"}, f"{module.name} imports diffusers/transformers"


def test_library_never_imports_front_ends():
    for module in PACKAGE.glob("*.py"):
        if module.stem in FRONT_ENDS:
            continue
        for imported in _imports(module):
            assert imported.lstrip(".").split(".")[0] not in FRONT_ENDS, f"{module.name} imports {imported}"


def test_the_product_never_imports_the_workshop():
    """Training and lab scripts (workshop/) use the product's public API; the product never reaches back."""
    for module in PACKAGE.rglob("*.py"):
        for imported in _imports(module):
            assert not imported.startswith("pix2pix_zero_workshop"), f"{module.relative_to(PACKAGE)} imports {imported}"
