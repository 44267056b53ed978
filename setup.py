"""Build script: compiles the codec core and the segment counter, or skips them when asked.

A compiler error fails the build loudly (no silent fall back to the pure twin);
a pure install is something the user asks for with HPGFAST_NO_EXTENSIONS=1.
"""

import os

from setuptools import Extension, setup

if os.environ.get("HPGFAST_NO_EXTENSIONS"):
    ext_modules = []
else:
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [
            Extension(
                "hpgfast._codec_c",
                ["src/hpgfast/_codec_c.pyx"],
                extra_compile_args=["-O3"],
            ),
            Extension(
                "hpgfast._sms_c",
                ["src/hpgfast/_sms_c.pyx"],
                extra_compile_args=["-O3"],
            ),
        ],
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    )

setup(ext_modules=ext_modules)
