"""Meta-tests (STYLE.md): dvc.yaml, params.yaml, the stage modules and the CLI agree."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from pipeline.cli import cli
from pipeline.params import REPO_ROOT, read_params

DVC_YAML = REPO_ROOT / "dvc.yaml"
TEMPLATE_RE = re.compile(r"\$\{\s*([\w.]+)\s*\}")


def dvc_stages() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(DVC_YAML.read_text(encoding="utf-8"))["stages"]


def lookup(params: dict[str, Any], dotted: str) -> Any:
    """`params["a"]["b"]` for "a.b"; KeyError when a part is missing."""
    value: Any = params
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def substitute(text: str, params: dict[str, Any]) -> str:
    """`text` with every `${key}` replaced from params.yaml, as `dvc` does."""
    return TEMPLATE_RE.sub(lambda m: str(lookup(params, m.group(1))), text)


def entry_paths(entries: list[Any] | None, params: dict[str, Any]) -> list[str]:
    """The paths of a deps/outs/metrics list (items are strings or {path: options})."""
    paths = []
    for item in entries or []:
        paths += [item] if isinstance(item, str) else list(item)
    return [substitute(p, params) for p in paths]


def stage_ids() -> list[str]:
    return list(dvc_stages())


def defines_main(module: Path) -> bool:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)


@pytest.mark.parametrize("stage", stage_ids())
def test_every_stage_runs_its_module_with_a_main(stage):
    cmd = dvc_stages()[stage]["cmd"]
    assert cmd.split() == ["python", "-m", f"pipeline.{stage}"], cmd
    module = REPO_ROOT / "pipeline" / f"{stage}.py"
    assert module.is_file(), f"stage {stage}: {module} missing"
    assert defines_main(module), f"stage {stage}: {module.name} has no main()"


@pytest.mark.parametrize("stage", stage_ids())
def test_every_dependency_exists(stage):
    """Deps that another stage writes are produced by `dvc repro`, so they need not exist in a
    clean checkout; everything else (inputs, config, code) must be in the repository."""
    params = read_params()
    stages = dvc_stages()
    produced = {
        path
        for spec in stages.values()
        for key in ("outs", "metrics", "plots")
        for path in entry_paths(spec.get(key), params)
    }
    deps = entry_paths(stages[stage].get("deps"), params)
    assert deps, f"stage {stage} lists no deps"
    missing = [d for d in deps if d not in produced and not (REPO_ROOT / d).exists()]
    assert not missing, f"stage {stage}: deps not in the repository: {missing}"
    unknown = [d for d in deps if d in produced and not _written_before(stage, d, stages, params)]
    assert not unknown, f"stage {stage}: deps written by itself or a later stage: {unknown}"


def _written_before(stage: str, path: str, stages: dict, params: dict) -> bool:
    order = list(stages)
    for other in order[: order.index(stage)]:
        spec = stages[other]
        if any(path in entry_paths(spec.get(k), params) for k in ("outs", "metrics", "plots")):
            return True
    return False


def test_every_template_in_dvc_yaml_resolves():
    params = read_params()
    keys = TEMPLATE_RE.findall(DVC_YAML.read_text(encoding="utf-8"))
    assert keys
    missing = []
    for key in keys:
        try:
            lookup(params, key)
        except KeyError:
            missing.append(key)
    assert not missing, f"dvc.yaml uses keys missing from params.yaml: {missing}"


@pytest.mark.parametrize("stage", stage_ids())
def test_params_sections_used_by_each_stage_exist(stage):
    params = read_params()
    used = dvc_stages()[stage].get("params") or []
    names = [name for item in used for name in ([item] if isinstance(item, str) else item)]
    missing = []
    for name in names:
        try:
            lookup(params, name)
        except KeyError:
            missing.append(name)
    assert not missing, f"stage {stage} uses params missing from params.yaml: {missing}"


def all_commands(group: click.Group) -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in all_commands(command)]
    return found


@pytest.mark.parametrize(("name", "command"), all_commands(cli), ids=lambda x: str(x))
def test_every_cli_command_has_help_with_an_example(name, command):
    assert command.help, f"`buurtlens {name}` has no help text"
    assert "Example" in command.help, f"`buurtlens {name}` help has no Example line"


def pipeline_modules() -> list[str]:
    return sorted(f"pipeline.{p.stem}" for p in (REPO_ROOT / "pipeline").glob("*.py"))


# Runs in a fresh interpreter: records what importing every module does. spaCy's loaders are
# wrapped before the import, and every file opened is logged.
_IMPORT_PROBE = """
import builtins, io, json, sys
opened, loaded = [], []
_open, _io_open = builtins.open, io.open
def spy(file, *args, **kwargs):
    opened.append(str(file))
    return _open(file, *args, **kwargs)
builtins.open = io.open = spy
try:
    import spacy
    for name in ("load", "blank"):
        real = getattr(spacy, name)
        setattr(spacy, name, lambda *a, _n=name, _r=real, **k: (loaded.append(_n), _r(*a, **k))[1])
except ImportError:
    pass
import importlib
for module in sys.argv[1:]:
    importlib.import_module(module)
builtins.open, io.open = _open, _io_open
print(json.dumps({"modules": sorted(sys.modules), "opened": opened, "loaded": loaded}))
"""


@pytest.fixture(scope="module")
def import_probe() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, "pipeline.cli", *pipeline_modules()],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 0, f"importing the pipeline modules failed:\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_loads_no_deduce_and_no_spacy_model(import_probe):
    # docdeid (deduce's small framework) is imported for a base class; deduce itself, which builds
    # its lookup tables, must wait until a stage asks for it.
    assert not [m for m in import_probe["modules"] if m.split(".")[0] == "deduce"]
    assert not [m for m in import_probe["modules"] if m.startswith("nl_core_news")]
    assert import_probe["loaded"] == [], "spacy.load/blank called at import time"


def test_importing_reads_no_params_or_data(import_probe):
    read = [
        p
        for p in import_probe["opened"]
        if Path(p).name in ("params.yaml", "dvc.yaml")
        or any(part in ("data", "config", "models", "metrics") for part in Path(p).parts)
    ]
    assert not read, f"files read at import time: {read}"


@pytest.mark.parametrize(
    ("stage", "module"),
    [("ingest", "ingest"), ("nlp", "nlp"), ("train", "train"), ("tag", "tag")],
)
def test_the_code_a_stage_caches_on_is_a_dvc_dependency(stage, module):
    """Each per-transcript cache is salted with the code that decides its results; DVC must
    watch the same files, or a change there would not re-run the stage at all."""
    import importlib

    code = getattr(importlib.import_module(f"pipeline.{module}"), f"{module.upper()}_CODE")
    deps = entry_paths(dvc_stages()[stage]["deps"], read_params())
    missing = [f"pipeline/{file}" for file in code if f"pipeline/{file}" not in deps]
    assert not missing, f"stage {stage}: salted with, but no DVC dependency: {missing}"


def imports_at_load(module: str, package: Path = REPO_ROOT / "pipeline") -> set[str]:
    """The pipeline modules (file stems) that loading `pipeline.<module>` runs: its own, and
    those its module-level imports load, transitively. Imports inside functions are not
    followed: `tag.tag_folder`, for one, chains other stages for `buurtlens tag`, not for DVC."""
    seen: set[str] = set()
    todo = ["__init__", module]  # a package runs its __init__ before any of its modules
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        statements = list(tree.body)
        while statements:
            node = statements.pop()
            if isinstance(node, ast.If | ast.Try | ast.With):
                statements += [
                    n
                    for part in ("body", "orelse", "finalbody", "handlers")
                    for n in getattr(node, part, [])
                ]
            elif isinstance(node, ast.ExceptHandler):
                statements += node.body
            elif isinstance(node, ast.ImportFrom) and node.module == "pipeline":
                todo += [a.name for a in node.names if (package / f"{a.name}.py").exists()]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline."):
                todo.append(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                todo += [a.name.split(".")[1] for a in node.names if a.name.startswith("pipeline.")]
    return seen


def test_imports_at_load_follows_module_level_imports_only(tmp_path):
    modules = {
        "stage": "import json\nfrom pipeline import io, params\nfrom pipeline.schemas import T\n"
        "try:\n    import pipeline.fast\nexcept ImportError:\n    pass\n"
        "def run():\n    from pipeline import other\n",
        "io": "from pipeline.params import paths\n",
        "params": "import yaml\n",
        "schemas": "",
        "fast": "",
        "other": "",
        "__init__": "from pipeline.first import setting\n",  # runs before any module
        "first": "",
    }
    for name, code in modules.items():
        (tmp_path / f"{name}.py").write_text(code, encoding="utf-8")
    assert imports_at_load("stage", tmp_path) == {
        "__init__", "first", "stage", "io", "params", "schemas", "fast"
    }


@pytest.mark.parametrize("stage", stage_ids())
def test_every_pipeline_module_a_stage_loads_is_a_dvc_dependency(stage):
    """DVC re-runs a stage only when a dependency changes: a module the stage imports but does
    not list (io.py shapes turns.parquet's row groups, say) could change its output unseen."""
    deps = entry_paths(dvc_stages()[stage]["deps"], read_params())
    loaded = sorted(f"pipeline/{module}.py" for module in imports_at_load(stage))
    missing = [path for path in loaded if path not in deps]
    assert not missing, f"stage {stage} imports, but does not list as a dependency: {missing}"


def locked_versions() -> dict[str, str]:
    """Package -> version pinned in requirements.lock (names normalised as in PEP 503)."""
    lines = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def test_the_lock_pins_every_direct_dependency():
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"], "bertopic"]
    names = {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ;]", dep)[0]).lower() for dep in wanted}
    assert names - set(locked_versions()) == set()


def test_the_environment_has_the_locked_versions():
    """The figures in dvc.lock and metrics/ come from these versions; `make setup` installs them
    (unpinned, a fresh install in December 2026 trained another model: macro-F1 0.8065 to
    0.8075)."""
    from importlib.metadata import PackageNotFoundError, version

    differing = {}
    for name, pinned in locked_versions().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            differing[name] = f"{installed} (locked: {pinned})"
    assert differing == {}, "run `make setup` again, or `make lock` after a deliberate upgrade"


BENCHMARKS = sorted(p.stem for p in (REPO_ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("module", BENCHMARKS)
def test_every_benchmark_imports(module):
    """Benchmarks are not run by the tests, but a rename in pipeline/ must not break them."""
    import importlib

    assert callable(importlib.import_module(f"benchmarks.{module}").main)
