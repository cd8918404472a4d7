"""The scoring core compiled by mypyc (services/scorer/native.py): the tests run
against the compiled modules when they are built (always in CI: make setup
builds them), and a compiled module whose .py changed refuses to import."""

import hashlib
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.scorer import native


def loaded_from(name: str) -> str:
    module = importlib.import_module(f"services.scorer.{name}")
    return module.__file__ or ""


def test_the_core_runs_compiled_when_built_and_always_in_ci() -> None:
    built = {path.name.split(".", 1)[0] for path in native.compiled_modules()}
    if os.environ.get("CI") or built:
        assert built >= set(native.MODULES), "make setup compiles every module"
        assert native.status() == 0  # all fresh
        for name in native.MODULES:
            assert loaded_from(name).endswith(native.SUFFIX), name
    else:  # a developer ran `make pure`
        for name in native.MODULES:
            assert loaded_from(name).endswith(".py"), name


def test_a_compiled_module_with_an_edited_source_refuses_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "core.py"
    source.write_text("x = 1\n", encoding="utf-8")
    manifest = tmp_path / "native.json"
    digest = hashlib.sha256(b"x = 1\n").hexdigest()
    manifest.write_text(json.dumps({"core": digest}), encoding="utf-8")
    monkeypatch.setattr(native, "HERE", tmp_path)
    monkeypatch.setattr(native, "MANIFEST", manifest)
    native._manifest.cache_clear()
    try:
        compiled = str(tmp_path / f"core{native.SUFFIX}")
        native.check_fresh(compiled)  # the source it was compiled from: fine
        native.check_fresh(str(source))  # running the .py itself: nothing to check
        source.write_text("x = 2\n", encoding="utf-8")
        with pytest.raises(native.StaleModuleError, match=r"make native.*make pure"):
            native.check_fresh(compiled)
        manifest.unlink()  # built, but the manifest is gone: not trusted either
        native._manifest.cache_clear()
        source.write_text("x = 1\n", encoding="utf-8")
        with pytest.raises(native.StaleModuleError):
            native.check_fresh(compiled)
    finally:
        native._manifest.cache_clear()


def test_an_edited_core_module_fails_at_import_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """The real thing, in another interpreter whose manifest says another source for
    matching.py: a compiled core fails loudly; the .py files (`make pure`) just run."""
    recorded = json.loads(native.MANIFEST.read_text()) if native.MANIFEST.exists() else {}
    recorded["matching"] = "0" * 64
    manifest = tmp_path / "native.json"
    manifest.write_text(json.dumps(recorded), encoding="utf-8")
    code = (
        "import pathlib, services.scorer.native as n; "
        f"n.MANIFEST = pathlib.Path({str(manifest)!r}); "
        "import services.scorer.core; print('imported')"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    if native.compiled_modules():
        assert run.returncode != 0
        assert "StaleModuleError" in run.stderr
        assert "matching.py" in run.stderr
    else:
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "imported"
