"""Build script: compiles the codec core and the segment counter, or skips them when asked.

A compiler error fails the build loudly (no silent fall back to the pure twin), and
says in one paragraph what failed and how to ask for a pure install instead:
``HPGFAST_NO_EXTENSIONS=1 pip install .``.

On Linux the extensions are built without debug information (``-g0``) and linked
stripped (``-Wl,--strip-all``): CPython's own flags ask for ``-g``, which made the
three modules 3.2 MB of the wheel where the code is well under a third of that.
``HPGFAST_DEBUG_SYMBOLS=1`` keeps them, for a debugger or a profiler. The sanitizer
build (``fuzz/run_sanitizers.sh``) compiles with its own flags and keeps its ``-g``.
"""

import os
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PURE_HINT = """
hpgfast: building the compiled codec core (hpgfast._codec_c) failed: {error}.
The compiled core needs a working C compiler and the Python headers (on Debian or
Ubuntu: apt-get install build-essential python3-dev). To install hpgfast without it,
as pure Python (the same results; its codec is 20 to 35 times slower), run:

    HPGFAST_NO_EXTENSIONS=1 pip install .
"""


def _called_process_error(exc):
    """The ``subprocess.CalledProcessError`` a build error was raised from, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, subprocess.CalledProcessError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class BuildExt(build_ext):
    """``build_ext`` that turns a compiler failure into one clear paragraph."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # CompileError, LinkError, a missing compiler
            self._fail(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc):
        error = str(exc).strip().rstrip(".") or type(exc).__name__
        # The compiler's name and status say it; its whole command line is above.
        # They are read off the CalledProcessError under the CompileError, not off
        # setuptools' wording, which differs: 84 passes "Command '['gcc', ...]'
        # returned non-zero exit status 1" up as it is, while 82 (the newest for
        # Python 3.9) says "command '/usr/bin/gcc' failed with exit code 1".
        called = _called_process_error(exc)
        if called is not None:
            cmd = called.cmd
            program = os.path.basename(str(cmd[0] if isinstance(cmd, (list, tuple)) else cmd))
            error = f"the C compiler '{program}' ended with exit status {called.returncode}"
        sys.stderr.write(PURE_HINT.format(error=error))
        sys.stderr.flush()
        raise SystemExit("hpgfast: the compiled codec core was not built (see above)")


compile_args = ["-O3"]
link_args = []
if sys.platform.startswith("linux") and not os.environ.get("HPGFAST_DEBUG_SYMBOLS"):
    # After CPython's CFLAGS, so -g0 wins over their -g.
    compile_args.append("-g0")
    link_args.append("-Wl,--strip-all")

if os.environ.get("HPGFAST_NO_EXTENSIONS"):
    ext_modules = []
else:
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [
            Extension(
                f"hpgfast.{module}",
                [f"src/hpgfast/{module}.pyx"],
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
            for module in ("_codec_c", "_sms_c", "_response_c")
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

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
