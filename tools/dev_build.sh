#!/usr/bin/env bash
# Developer build: compiles vpunas._core into build/dev and drops it next to the Python sources,
# so `python/` on sys.path (see README, "Development") imports the fresh build. Serialised with flock
# because several people/agents may build in one tree at once.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
exec 9>"$root/build/.dev_build.lock" 2>/dev/null || { mkdir -p "$root/build"; exec 9>"$root/build/.dev_build.lock"; }
flock 9
if [ ! -f "$root/build/dev/build.ninja" ]; then
  cmake -S "$root" -B "$root/build/dev" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$(command -v "$py")" \
    -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" -DVPUNAS_BUILD_TESTS=ON >/dev/null
fi
cmake --build "$root/build/dev" -j2 "$@"
# Copy then rename: overwriting the .so in place (cp -f truncates it) crashes every Python process that
# has it loaded (SIGBUS / SIGSEGV); a rename leaves them the old inode.
for so in "$root"/build/dev/_core*.so; do
  cp -f "$so" "$root/python/vpunas/.$(basename "$so").tmp"
  mv -f "$root/python/vpunas/.$(basename "$so").tmp" "$root/python/vpunas/$(basename "$so")"
done
