"""Build script: maps the top-level folders onto sub-packages of ``stimscript`` and builds the Cython twins.

The repository keeps one folder per concern (``dsl/``, ``compiler/``, ...) but installs them all under the
single import package ``stimscript`` via ``package_dir``. Metadata lives in pyproject.toml.
"""
import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_py import build_py
from Cython.Build import cythonize

SUBPACKAGES = ["dsl", "compiler", "programs", "runtime", "drivers", "ext"]

package_dir = {"stimscript": "stimscript"}
package_dir.update({f"stimscript.{name}": name for name in SUBPACKAGES})

HERE = Path(__file__).parent

#: every package of the install: stimscript and its folders (commands/, live/, sheet/, plotting/, ...), the stage
#: folders and theirs (drivers/sciencemode/, ...), found on disk so a new sub-package cannot be left out of a wheel
PACKAGES = ["stimscript"] + [f"stimscript.{p}" for p in find_packages(str(HERE / "stimscript"))]
for _name in SUBPACKAGES:
    PACKAGES += [f"stimscript.{_name}"] + [f"stimscript.{_name}.{p}" for p in find_packages(str(HERE / _name))]
extensions = [
    Extension(f"stimscript.ext.{pyx.stem}", [f"ext/{pyx.name}"]) for pyx in sorted((HERE / "ext").glob("*.pyx"))
]



def _load_by_path(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class build_py_with_tables(build_py):
    """Also writes the parser's LALR tables (dsl/grammar.lalr, and the same tables exported as plain data for
    the fast path: dsl/grammar.tables) so no command builds them at start-up.

    ``pip install .`` puts them into the wheel; ``pip install -e .`` (editable mode) next to grammar.lark in
    the source folder. dsl/tables.py keys them by grammar, lark and Python version, so stale tables are
    never read (the parser then builds and caches fresh ones itself).
    """

    def run(self):
        super().run()
        # loaded by path under their package names (the package itself is not importable during the build);
        # tables.py imports only the standard-library helper atomicfile.py from stimscript
        _load_by_path("stimscript.atomicfile", HERE / "stimscript" / "atomicfile.py")
        tables = _load_by_path("stimscript.dsl.tables", HERE / "dsl" / "tables.py")
        if getattr(self, "editable_mode", False):
            target = HERE / "dsl" / "grammar.lalr"
        else:
            target = Path(self.build_lib) / "stimscript" / "dsl" / "grammar.lalr"
        tables.build_shipped(HERE / "dsl" / "grammar.lark", target)
        self._tables = str(target)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib) / "stimscript" / "dsl" / "grammar.lalr"))
            outputs.append(str(Path(self.build_lib) / "stimscript" / "dsl" / "grammar.tables"))
        return outputs


setup(
    cmdclass={"build_py": build_py_with_tables},
    packages=PACKAGES,
    package_dir=package_dir,
    package_data={
        "stimscript.dsl": ["*.lark"],
        "stimscript.ext": ["*.pyx", "*.pxd", "*.pyi"],
    },
    include_package_data=False,
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
    zip_safe=False,
)
