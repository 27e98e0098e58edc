"""The algorithm modules stay torch-only; diffusers/transformers are touched only by the adapters."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pix2pix_zero"
CORE = ["ddim", "regularizers", "guidance", "directions", "inversion", "editing", "config", "cuda_graphs", "files"]
ALLOWED_THIRD_PARTY = {"torch", "safetensors"}
FRONT_ENDS = {"cli", "cli_common", "ui", "bench", "shapesworld", "__main__"}  # __main__: `python -m pix2pix_zero`


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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_imports(path: Path) -> set[str]:
    """The pix2pix_zero modules `path` imports anywhere (top level or inside functions), as dotted names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("pix2pix_zero")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("pix2pix_zero"):
                module = node.module
            else:
                continue
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from . import sentences` names a module
    return found


def test_front_ends_import_only_the_librarys_public_names():
    """CLI, web app and benchmarks call the public API: no `_private` name of a library module (front ends may share
    their own)."""
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if name == "pix2pix_zero" or name.split(".")[1] not in FRONT_ENDS:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            parts = module.split(".")
            if parts[0] != "pix2pix_zero" or (len(parts) > 1 and parts[1] in FRONT_ENDS):
                continue
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
            assert not private, f"{name} imports {private} from {module}"


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _package_imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first search (each reported once per back edge)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycles():
    """No module imports one that (directly or through others) imports it back, not even inside a function:
    a package's __init__ and its submodules aside (importing a submodule runs its package first by design)."""
    graph = _import_graph()
    assert "pix2pix_zero.cli" in graph and "pix2pix_zero.bench.commands" in graph["pix2pix_zero.cli"]
    for name in graph:  # a submodule importing its own package's __init__ is not a cycle
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert _cycles(graph) == []
