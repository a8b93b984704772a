"""Build the bridge Lambda's deployment package: ``dist/bridge-lambda.zip`` (``make lambda-zip``).

What goes in:

* **opsagent, only what the bridge loads.** The modules reachable from the handler
  (``opsagent.bridge.handler``) by their imports, read with ``ast`` (imports inside functions
  included, ``if TYPE_CHECKING:`` blocks not), and the JSON/YAML data files beside them. The
  walk does not enter ``EXCLUDED``: the embedded sandbox (moto; a deployed bridge refuses to
  run on it), the evals, the CLI and the HTTP service's FastAPI app. Every edge it did not
  follow is printed, and tests/e2e/test_infrastructure_deploy.py imports every module of the
  package from the unzipped directory alone, so an exclusion the bridge does need fails there.
* **Third-party, only the bridge's.** The distributions that provide the top-level modules
  those opsagent modules import, with their own dependencies, at the versions of
  constraints.txt, as wheels for the Lambda runtime (``pip install --platform
  manylinux2014_aarch64 --implementation cp --python-version 3.12 --only-binary=:all:
  --target ... -c constraints.txt``). No dev dependency is imported by the bridge, so none
  goes in. ``--from-env`` copies the same distributions from the running environment instead
  (no network, this machine's platform): what the tests run the handler from.
* **Optionally the registry** (``--registry accounts.json``), at the zip's root as
  ``registry.json`` (bridge-gateway.yaml's RegistryFile default).

No ``.pyc``: pip would compile them with the building interpreter (3.11 here), which the
python3.12 runtime cannot use, and ``/var/task`` is read-only, so a cold start compiles what
it imports either way (benchmarks/bridge_cold_start.py measures it, and with ``--compiled``
what precompiling would save).

Lambda's limits ("Lambda quotas", https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
"Deployment package (.zip file archive) size: 50 MB (zipped, for direct upload), 250 MB
(unzipped, including layers)"; MB there is 1024 KB): the build fails, saying which, when the
zip is over 50 MB or its contents over 250 MB. The template deploys from S3, where only the
unzipped limit binds, but staying under both keeps `aws lambda update-function-code
--zip-file` working too.

    python infrastructure/lambda_zip.py                       # arm64, python3.12 (as make)
    python infrastructure/lambda_zip.py --from-env --out /tmp/bridge.zip
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "opsagent"
ENTRY = "opsagent.bridge.handler"
HANDLER = "opsagent.bridge.handler.handler"
DEFAULT_OUT = ROOT / "dist" / "bridge-lambda.zip"
CONSTRAINTS = ROOT / "constraints.txt"

# Subpackages and modules the bridge never loads in Lambda, with why.
EXCLUDED = {
    "opsagent.sandbox": "the embedded sandbox (moto, the MCP stand-in); never in a deployed Lambda",
    "opsagent.evals": "the offline evals",
    "opsagent.service.cli": "the opsagent command line (typer, rich)",
    "opsagent.service.http.app": "the HTTP service's FastAPI app (the bridge uses auth.py only)",
}
DATA_SUFFIXES = {".json", ".yaml", ".yml"}

MIB = 1024 * 1024
ZIPPED_LIMIT = 50 * MIB  # 52,428,800 bytes
UNZIPPED_LIMIT = 250 * MIB  # 262,144,000 bytes
PLATFORMS = {
    # Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux2014 (glibc 2.17)
    # wheels, and manylinux_2_28 ones for packages that no longer publish 2014 wheels.
    "arm64": ["manylinux2014_aarch64", "manylinux_2_28_aarch64"],
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_28_x86_64"],
}
# Fixed timestamp for every entry: the same inputs give the same zip, byte for byte.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class BuildError(Exception):
    """The package cannot be built as asked; the message says why."""


# --- which opsagent modules, which third-party modules --------------------------------------


def module_file(name: str, root: Path = ROOT) -> Path | None:
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _excluded(name: str) -> str | None:
    for prefix in EXCLUDED:
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from .x import y
        base = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    return [target, *(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")]


@dataclass
class Closure:
    modules: set[str] = field(default_factory=set)  # opsagent modules to ship
    third_party: dict[str, set[str]] = field(default_factory=dict)  # top-level -> importers
    skipped: dict[str, set[str]] = field(default_factory=dict)  # excluded module -> importers


def bridge_closure(entry: str = ENTRY, root: Path = ROOT) -> Closure:
    """The opsagent modules the entry reaches and the third-party names they import."""
    if module_file(entry, root) is None:
        raise BuildError(
            f"{entry.replace('.', '/')}.py does not exist: the bridge handler is not written yet"
        )
    closure = Closure()
    todo = [entry]
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    while todo:
        name = todo.pop()
        if name in closure.modules:
            continue
        path = module_file(name, root)
        if path is None:
            continue
        closure.modules.add(name)
        # A module's packages are imported before it.
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _imports(tree):
            for imported in _imported_names(node, name, path.name == "__init__.py"):
                top = imported.split(".")[0]
                if top == PACKAGE:
                    if module_file(imported, root) is None:
                        continue  # a name inside a module, not a module
                    if prefix := _excluded(imported):
                        closure.skipped.setdefault(prefix, set()).add(name)
                        continue
                    todo.append(imported)
                elif top and top not in stdlib:
                    closure.third_party.setdefault(top, set()).add(name)
    return closure


def project_extras() -> dict[str, str]:
    """Distribution -> the extras the project's own dependency asks for (``pyjwt[crypto]``),
    from the installed project's metadata; dev-only requirements left out."""
    from packaging.requirements import Requirement

    extras = {}
    for text in importlib.metadata.requires(PACKAGE) or ():
        req = Requirement(text)
        if req.marker is not None and "extra" in str(req.marker):
            continue
        if req.extras:
            extras[_canonical(req.name)] = ",".join(sorted(req.extras))
    return extras


def distributions_for(names: Iterable[str]) -> dict[str, str]:
    """Top-level module name -> the installed distribution that provides it."""
    provided = importlib.metadata.packages_distributions()
    found, missing = {}, []
    for name in sorted(names):
        dists = provided.get(name)
        if not dists:
            missing.append(name)
            continue
        found[name] = dists[0]
    if missing:
        raise BuildError(
            "no installed distribution provides " + ", ".join(missing) + " (imported by the "
            "bridge's modules); install the project (make install) and build again"
        )
    return found


# --- third-party files ----------------------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_install(
    requirements: list[str], target: Path, *, arch: str, python: str, constraints: Path
) -> None:
    """The requirements and their dependencies as wheels for the Lambda runtime."""
    if arch not in PLATFORMS:
        raise BuildError(f"--arch {arch!r}: one of {', '.join(PLATFORMS)}")
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--only-binary=:all:",
        "--target",
        str(target),
        "-c",
        str(constraints),
        *(f"--platform={platform}" for platform in PLATFORMS[arch]),
        *requirements,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "ERROR" in line] or [
            done.stderr.strip()[-2000:]
        ]
        raise BuildError(
            f"pip could not install the bridge's dependencies for {arch}/cp{python}:\n  "
            + "\n  ".join(errors)
        )


def _requirement_closure(roots: Iterable[str]) -> dict[str, importlib.metadata.Distribution]:
    """Installed distributions for the roots and everything they require, markers evaluated
    for this interpreter (extras followed as requested)."""
    from packaging.requirements import Requirement

    found: dict[str, importlib.metadata.Distribution] = {}
    todo: list[tuple[str, frozenset[str]]] = [
        (req.name, frozenset(req.extras)) for req in map(Requirement, roots)
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = (_canonical(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise BuildError(f"{name} is required but not installed") from exc
        found[_canonical(dist.metadata["Name"])] = dist
        for text in dist.requires or ():
            req = Requirement(text)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in environments):
                todo.append((req.name, frozenset(req.extras)))
    return found


def copy_from_env(requirements: list[str], target: Path) -> list[str]:
    """The same distributions, copied from this environment's site-packages."""
    dists = _requirement_closure(requirements)
    for dist in dists.values():
        base = Path(str(dist.locate_file("")))
        for file in dist.files or ():
            relative = Path(str(file))
            if relative.parts[0] == ".." or "__pycache__" in relative.parts:
                continue  # console scripts outside site-packages; bytecode
            source = base / relative
            if not source.is_file():
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    return sorted(f"{d.metadata['Name']}=={d.version}" for d in dists.values())


def _installed_distributions(target: Path) -> list[str]:
    found = []
    for info in sorted(target.glob("*.dist-info")):
        meta = info / "METADATA"
        if not meta.is_file():
            continue
        fields = dict(
            line.split(": ", 1) for line in meta.read_text().splitlines()[:10] if ": " in line
        )
        found.append(f"{fields.get('Name')}=={fields.get('Version')}")
    return found


# --- the package ----------------------------------------------------------------------------


def copy_opsagent(modules: Iterable[str], target: Path, root: Path = ROOT) -> list[str]:
    """The modules' files, and the data files of every package they are in."""
    written: set[Path] = set()
    for name in modules:
        path = module_file(name, root)
        assert path is not None
        written.add(path)
        if path.name == "__init__.py":
            written.update(p for p in path.parent.iterdir() if p.suffix in DATA_SUFFIXES)
    for path in written:
        destination = target / path.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    return sorted(str(p.relative_to(root)) for p in written)


def _prune(target: Path) -> None:
    """What pip's --target leaves that a Lambda never runs: console scripts, bytecode."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    for stray in target.rglob("*.py[co]"):
        stray.unlink()


def write_zip(source: Path, out: Path, compresslevel: int = 9) -> tuple[int, int, int]:
    """(files, unzipped bytes, zipped bytes). Entries sorted, one timestamp, files 0644 and
    0755 as they were executable: Lambda needs every file readable by its runtime user."""
    out.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    unzipped = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_DATE)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=compresslevel)
    return len(files), unzipped, out.stat().st_size


def largest(source: Path, count: int = 8) -> list[tuple[str, int]]:
    sizes: dict[str, int] = {}
    for path in source.rglob("*"):
        if path.is_file():
            top = path.relative_to(source).parts[0]
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    return sorted(sizes.items(), key=lambda item: -item[1])[:count]


def _mb(size: int) -> str:
    return f"{size / MIB:.1f} MB"


def limit_problems(zipped: int, unzipped: int) -> list[str]:
    problems = []
    if zipped > ZIPPED_LIMIT:
        problems.append(
            f"the zip is {_mb(zipped)} ({zipped:,} bytes), over Lambda's 50 MB "
            f"({ZIPPED_LIMIT:,} bytes) for a direct upload"
        )
    if unzipped > UNZIPPED_LIMIT:
        problems.append(
            f"its contents are {_mb(unzipped)} ({unzipped:,} bytes) unzipped, over Lambda's "
            f"250 MB ({UNZIPPED_LIMIT:,} bytes) including layers"
        )
    return problems


@dataclass
class Built:
    out: Path
    directory: Path | None
    files: int
    unzipped: int
    zipped: int
    seconds: float
    manifest: dict[str, object]


def build(
    out: Path = DEFAULT_OUT,
    *,
    arch: str = "arm64",
    python: str = "3.12",
    from_env: bool = False,
    registry: Path | None = None,
    constraints: Path = CONSTRAINTS,
    keep_dir: Path | None = None,
    compresslevel: int = 9,
    check_limits: bool = True,
    log=print,
) -> Built:
    """Build the zip; raise BuildError (the zip is not written) when it cannot be built or,
    unless ``check_limits`` is false, is over a limit. ``keep_dir``: also leave the unzipped
    tree there."""
    started = time.perf_counter()
    closure = bridge_closure()
    provided = distributions_for(closure.third_party)
    extras = project_extras()
    requirements = sorted(
        f"{name}[{extras[name]}]" if name in extras else name
        for name in {_canonical(d) for d in provided.values()}
    )
    for prefix, importers in sorted(closure.skipped.items()):
        importers_text = ", ".join(sorted(importers))
        log(f"not packaged: {prefix} ({EXCLUDED[prefix]}); imported by {importers_text}")
    with tempfile.TemporaryDirectory(prefix="bridge-lambda-") as scratch:
        tree = Path(scratch) / "package"
        tree.mkdir()
        if from_env:
            platform = f"this environment ({sys.implementation.cache_tag}, {os.uname().machine})"
            log(f"copying {len(requirements)} distributions and their dependencies from {platform}")
            installed = copy_from_env(requirements, tree)
        else:
            platform = f"{arch}, cp{python.replace('.', '')}"
            log(f"pip: {len(requirements)} distributions and their dependencies for {platform}")
            pip_install(requirements, tree, arch=arch, python=python, constraints=constraints)
            installed = _installed_distributions(tree)
        _prune(tree)
        shipped = copy_opsagent(closure.modules, tree)
        if registry is not None:
            if not registry.is_file():
                raise BuildError(f"--registry {registry}: no such file")
            shutil.copyfile(registry, tree / "registry.json")
        building = out.with_name(out.name + ".building")
        files, unzipped, zipped = write_zip(tree, building, compresslevel)
        manifest: dict[str, object] = {
            "handler": HANDLER,
            "platform": platform,
            "arch": None if from_env else arch,
            "python": None if from_env else python,
            "from_env": from_env,
            "requirements": requirements,
            "distributions": installed,
            "opsagent_files": shipped,
            "not_packaged": {p: sorted(i) for p, i in sorted(closure.skipped.items())},
            "registry": registry is not None,
            "files": files,
            "unzipped_bytes": unzipped,
            "zipped_bytes": zipped,
        }
        problems = limit_problems(zipped, unzipped) if check_limits else []
        if problems:
            building.unlink()
            biggest = ", ".join(f"{name} {_mb(size)}" for name, size in largest(tree))
            raise BuildError(
                "over Lambda's deployment package limits: "
                + "; ".join(problems)
                + f". Largest: {biggest}. Limits: "
                "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
            )
        building.replace(out)
        out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
        if keep_dir is not None:
            shutil.rmtree(keep_dir, ignore_errors=True)
            shutil.copytree(tree, keep_dir)
    seconds = time.perf_counter() - started
    return Built(out, keep_dir, files, unzipped, zipped, seconds, manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--arch", default="arm64", choices=sorted(PLATFORMS))
    parser.add_argument("--python", default="3.12", help="the Lambda runtime's Python version")
    parser.add_argument(
        "--from-env",
        action="store_true",
        help="copy the dependencies from this environment (offline; this machine's platform)",
    )
    parser.add_argument("--registry", type=Path, help="a registry file to ship as registry.json")
    parser.add_argument("--constraints", type=Path, default=CONSTRAINTS)
    parser.add_argument("--keep-dir", type=Path, help="also leave the unzipped tree here")
    parser.add_argument(
        "--compresslevel",
        type=int,
        default=9,
        choices=range(0, 10),
        metavar="0-9",
        help="deflate level: 9 (default) is the smallest zip, 6 about four times faster",
    )
    args = parser.parse_args(argv)
    try:
        built = build(
            args.out,
            arch=args.arch,
            python=args.python,
            from_env=args.from_env,
            registry=args.registry,
            constraints=args.constraints,
            keep_dir=args.keep_dir,
            compresslevel=args.compresslevel,
        )
    except BuildError as exc:
        print(f"lambda-zip: {exc}", file=sys.stderr)
        return 1
    shown = built.out.relative_to(ROOT) if built.out.is_relative_to(ROOT) else built.out
    print(
        f"{shown}: {built.files} files, {_mb(built.zipped)} zipped ({built.zipped:,} bytes, "
        f"limit {ZIPPED_LIMIT:,}), {_mb(built.unzipped)} unzipped ({built.unzipped:,} bytes, "
        f"limit {UNZIPPED_LIMIT:,}); {built.manifest['platform']}; built in {built.seconds:.1f} s"
    )
    print(f"handler {HANDLER}; {len(built.manifest['distributions'])} distributions")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
