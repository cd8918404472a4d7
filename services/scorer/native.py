"""The scoring core compiled to C with mypyc: same code, about 1.7x faster.

`make setup` (and `make native`) compiles the modules in MODULES into C
extensions placed next to their .py files (`core.cpython-311-...so`); Python
imports an extension before a .py of the same name. `native.json` records the
SHA-256 of each source compiled. Each of those modules calls `check_fresh`
first thing: a compiled module whose .py has changed since refuses to import
(ImportError naming the file and the fix), so an edited .py never runs as stale
compiled code. After editing one: `make native` (or `make test`, which runs
setup) compiles again; `make pure` removes the compiled modules and the .py
files run as they are.

Run: python -m services.scorer.native build | clean | status
Build needs gcc and the Python headers (python3.11-dev); it fails loudly without.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE = "services.scorer"
HERE = Path(__file__).resolve().parent
MODULES = ("compiled", "core", "evaluate", "matching", "murmur2", "outputs", "record_loop", "state")
"""The scoring core's hot path (services/scorer/<name>.py)."""
MANIFEST = HERE / "native.json"
GROUP = "_native"
"""mypyc's shared library: services/scorer/_native__mypyc.<suffix>."""
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


class StaleModuleError(ImportError):
    """A compiled module was built from another version of its .py file."""


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def _manifest() -> dict[str, str]:
    try:
        recorded: dict[str, str] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return recorded


def check_fresh(file: str) -> None:
    """Raise StaleModuleError if `file` (a module's __file__) is a compiled module
    whose .py no longer is the source it was compiled from. A .py: nothing to check.

    (Inside a module mypyc compiled, __file__ names the extension, though not
    always its directory while the module initialises: the name is what counts.)"""
    if file.endswith(".py"):
        return
    name = Path(file).name.split(".", 1)[0]
    compiled = HERE / f"{name}{SUFFIX}"
    source = HERE / f"{name}.py"
    if _manifest().get(name) != source_hash(source):
        raise StaleModuleError(
            f"{compiled} was compiled from another version of {source}: "
            "run `make native` to compile it again, or `make pure` to remove the "
            "compiled modules and run the .py files"
        )


def compiled_modules() -> list[Path]:
    """The compiled files present (modules and mypyc's shared library)."""
    return sorted(
        path
        for path in HERE.glob(f"*{SUFFIX}")
        if path.name.split(".", 1)[0] in (*MODULES, f"{GROUP}__mypyc")
    )


def clean() -> None:
    for path in compiled_modules():
        path.unlink()
    MANIFEST.unlink(missing_ok=True)
    _manifest.cache_clear()


def build() -> None:
    """Compile MODULES with mypyc in a scratch directory, then put the extensions
    next to their sources and write the manifest (last: no manifest, no import)."""
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    root = HERE.parents[1]
    sources = [HERE / f"{name}.py" for name in MODULES]
    hashes = {path.stem: source_hash(path) for path in sources}
    clean()
    with tempfile.TemporaryDirectory(prefix="hotlead-native-") as scratch:
        work = Path(scratch)
        config = work / "mypy.ini"
        config.write_text(
            "[mypy]\npython_version = 3.11\nplugins = pydantic.mypy\n"
            "[mypy-faust.*,mode.*,aiokafka.*,rocksdict.*]\nignore_missing_imports = True\n",
            encoding="utf-8",
        )
        cwd = Path.cwd()
        try:
            os.chdir(root)  # mypyc names the modules from their paths under the root
            extensions = mypycify(
                # mypy's command line: the options, then the files
                ["--config-file", str(config), *(str(p.relative_to(root)) for p in sources)],
                opt_level="3",
                group_name=f"{PACKAGE}.{GROUP}",
                target_dir=str(work / "c"),
            )
            # setuptools in the scratch directory: it must not read the project's
            # pyproject.toml (the package itself is installed by pip, not here)
            os.chdir(work)
            _setup(setup, extensions, work)
        finally:
            os.chdir(cwd)
        built = sorted((work / "lib" / "services" / "scorer").glob(f"*{SUFFIX}"))
        names = {path.name.split(".", 1)[0] for path in built}
        missing = {*MODULES, f"{GROUP}__mypyc"} - names
        if missing:
            raise SystemExit(f"native build: no extension built for {sorted(missing)}")
        for path in built:
            shutil.copy2(path, HERE / path.name)
    MANIFEST.write_text(json.dumps(hashes, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _manifest.cache_clear()


def _setup(setup: Any, extensions: list[Any], work: Path) -> None:
    setup(
        name="hotlead-native",
        ext_modules=extensions,
        script_args=[
            "--no-user-cfg",
            "build_ext",
            "--build-lib",
            str(work / "lib"),
            "--build-temp",
            str(work / "temp"),
        ],
    )


def status() -> int:
    """0 if every module is compiled and fresh, 1 otherwise (printed)."""
    present = {path.name.split(".", 1)[0] for path in compiled_modules()}
    stale = 0
    for name in MODULES:
        source = HERE / f"{name}.py"
        if name not in present:
            state = "not compiled"
            stale += 1
        elif _manifest().get(name) != source_hash(source):
            state = "STALE (compiled from another version)"
            stale += 1
        else:
            state = "compiled, fresh"
        print(f"{PACKAGE}.{name}: {state}")
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "clean", "status"])
    args = parser.parse_args(argv)
    if args.command == "build":
        build()
        return status()
    if args.command == "clean":
        clean()
        return 0
    return status()


if __name__ == "__main__":
    sys.exit(main())
