"""Build script: maps the top-level folders onto sub-packages of ``stimscript`` and builds the Cython twins.

The repository keeps one folder per concern (``dsl/``, ``compiler/``, ...) but installs them all under the
single import package ``stimscript`` via ``package_dir``. Metadata lives in pyproject.toml.
"""
from pathlib import Path

from setuptools import Extension, setup
from Cython.Build import cythonize

SUBPACKAGES = ["dsl", "compiler", "runtime", "drivers", "ext"]

package_dir = {"stimscript": "stimscript"}
package_dir.update({f"stimscript.{name}": name for name in SUBPACKAGES})

HERE = Path(__file__).parent
extensions = [
    Extension(f"stimscript.ext.{pyx.stem}", [f"ext/{pyx.name}"]) for pyx in sorted((HERE / "ext").glob("*.pyx"))
]

setup(
    packages=list(package_dir) + ["stimscript.commands"],
    package_dir=package_dir,
    package_data={
        "stimscript.dsl": ["*.lark"],
        "stimscript.compiler": ["data/*.json"],
        "stimscript.ext": ["*.pyx", "*.pxd"],
    },
    include_package_data=False,
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
    zip_safe=False,
)
