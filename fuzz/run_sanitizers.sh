#!/usr/bin/env bash
# Build the compiled core (the codec, the segment counter and the reply reader) with
# AddressSanitizer and UndefinedBehaviorSanitizer into a temporary directory, and run
# against it, for SECONDS in all after the build (default 60):
#   - the differential fuzz targets (fuzz.py: compiled against pure, hostile input),
#     about two fifths of the time,
#   - the GIL-release race checks (races.py: the batch changed by other threads),
#     about a fifth,
#   - the leak check over every error path (leaks.py; LeakSanitizer at exit), the
#     rest: each path LEAK_RUNS times (default 10,000) or until its share of the
#     time is spent, whichever comes first, but at least 20 times (the paths cut
#     short are counted in its output; each path costs a few tenths of a second of
#     warm-up and garbage collection under ASan whatever its runs).
# Each phase gets its share of the time still left, so one that overruns is taken
# out of the next ones; the whole stays within SECONDS plus a few seconds (the last
# call of a phase, interpreters starting, LeakSanitizer's scan at exit). The build
# comes on top: the three modules are built side by side (about a minute and a half
# on two busy cores).
#
#   fuzz/run_sanitizers.sh             # the short pass .ci/run makes
#   fuzz/run_sanitizers.sh 3600        # a long one
#   LEAK_RUNS=100000 fuzz/run_sanitizers.sh 7200
#
# Needs gcc (libasan, libubsan) and Cython (the `dev` extra). Python itself is not
# rebuilt: libasan is preloaded, and PYTHONMALLOC=malloc hands every Python object
# to ASan's allocator so that a use after free of one is caught too. Any sanitizer
# report, twin disagreement or leak fails the run. The repository is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
leak_runs="${LEAK_RUNS:-10000}"
python="${PYTHON:-python}"
cc="${CC:-gcc}"
started=$SECONDS

work="$(mktemp -d "${TMPDIR:-/tmp}/hpgfast-sanitizers.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pkg"
cp -r src/hpgfast "$work/pkg/"
find "$work/pkg" \( -name '*.so' -o -name '*.c' -o -name __pycache__ \) -prune -exec rm -rf {} +

# The directives of setup.py: the sanitizers must see the code that ships. Every
# compiled module: the codec core, the segment counter and the reply reader, each
# held against its pure twin by the fuzz targets and checked by the leak paths.
modules=(_codec_c _sms_c _response_c)
include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
suffix="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
build() {
    "$python" -m cython -3 -o "$work/$1.c" \
        --directive boundscheck=False,wraparound=False,cdivision=True,initializedcheck=False \
        "src/hpgfast/$1.pyx"
    "$cc" -shared -fPIC -O1 -g -fno-omit-frame-pointer \
        -fsanitize=address,undefined -fno-sanitize-recover=all \
        -I"$include" "$work/$1.c" -o "$work/pkg/hpgfast/$1$suffix"
}
pids=()
for module in "${modules[@]}"; do
    build "$module" > "$work/build-$module.log" 2>&1 &
    pids+=($!)
done
for k in "${!modules[@]}"; do
    if ! wait "${pids[$k]}"; then
        cat "$work/build-${modules[$k]}.log" >&2
        echo "sanitizers: building ${modules[$k]} failed" >&2
        exit 2
    fi
done
echo "sanitizers: core built in $((SECONDS - started)) s"
checks=$SECONDS
deadline=$((checks + seconds))
# A phase's seconds: PERCENT of the time left until the deadline, at least 1.
left() { local rest=$((deadline - SECONDS)); echo $(( rest * $1 / 100 > 1 ? rest * $1 / 100 : 1 )); }

asan="$("$cc" -print-file-name=libasan.so)"
if [ ! -e "$asan" ]; then
    echo "sanitizers: $cc has no libasan.so" >&2
    exit 2
fi
export LD_PRELOAD="$asan"
export PYTHONPATH="$work/pkg"
export PYTHONMALLOC=malloc
export HPGFAST_SANITIZED=1
# Python's own allocations at exit are not the core's business: leaks are checked
# only in the leak run, and only those with the core in their stack count.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:exitcode=86:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"

"$python" - "$work" <<'PY'
import sys
import hpgfast._codec_c as core
import hpgfast._response_c as reader
import hpgfast._sms_c as counter
import hpgfast.codec as codec
import hpgfast.sms as sms
compiled = codec.IMPLEMENTATION == sms.IMPLEMENTATION == "compiled"
for module in (core, counter, reader):
    if not module.__file__.startswith(sys.argv[1]) or not compiled:
        sys.exit(f"sanitizers: the sanitized core is not the one imported ({module.__file__})")
    print("sanitizers: running", module.__file__)
PY

"$python" fuzz/fuzz.py --seconds "$(left 40)"
"$python" fuzz/races.py --seconds "$(left 33)"

# LeakSanitizer over the leak check: a block lost with the core in its allocation
# stack is a leak of the core's (CPython loses a few of its own at exit: those make
# LSan's exit code, 86, which alone is no failure). Every ASan report goes to the log.
rc=0
# A tenth of what is left is kept for LeakSanitizer's scan at exit.
leak_seconds=$(( (deadline - SECONDS) * 9 / 10 ))
if [ "$leak_seconds" -lt 1 ]; then
    leak_seconds=1
fi
ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=0/detect_leaks=1}:log_path=$work/asan" \
    "$python" fuzz/leaks.py --runs "$leak_runs" --seconds "$leak_seconds" || rc=$?
if grep -q "ERROR: AddressSanitizer" "$work"/asan.* 2>/dev/null; then
    cat "$work"/asan.* >&2
    echo "sanitizers: AddressSanitizer report in the leak check" >&2
    exit 1
fi
if grep -qE "_codec_c|_sms_c|_response_c" "$work"/asan.* 2>/dev/null; then
    grep -B2 -A12 -E "_codec_c|_sms_c|_response_c" "$work"/asan.* | head -80 >&2
    echo "sanitizers: LeakSanitizer found blocks the core lost" >&2
    exit 1
fi
if [ "$rc" -ne 0 ] && [ "$rc" -ne 86 ]; then
    echo "sanitizers: the leak check failed (exit $rc)" >&2
    exit 1
fi
echo "sanitizers: no sanitizer report, twins agree, no leak" \
    "(checks $((SECONDS - checks)) s of $seconds s, $((SECONDS - started)) s with the build)"
