#!/usr/bin/env bash
# Compiles our TensorRT plugin against the public headers of several TensorRT releases, without TensorRT libraries
# or a GPU: plugins/patchAttention/patchAttentionPlugin.cpp (IPluginV3, TensorRT >= 10) or
# patchAttentionPluginLegacy.cpp (IPluginV2DynamicExt, 8.x), as CMakeLists.txt picks by the major version, each
# with patchAttentionPluginCommon.cpp.
# It never builds NVIDIA's code: for each tag it only extracts `include/` from a NVIDIA/TensorRT git checkout into a
# temporary folder outside this repository and runs our CMake build with DSRIR_TRT_COMPILE_ONLY=ON (an OBJECT
# library, no libnvinfer).
#
#   scripts/check_plugin_headers.sh /path/to/NVIDIA/TensorRT [TAG ...]
#   (default tags: 8.5.3 v8.6.1 v10.3.0 v10.16 v11.1; NVIDIA's 8.5 tags have no leading v)
#
# A tag passes when the version's two objects compile with zero warnings (-Wall -Wextra, TensorRT headers as system
# includes) and together export with C linkage exactly the entry points of its version: getPluginCreators (TensorRT
# 8.x, IPluginV2DynamicExt path) or getCreators (TensorRT >= 10, IPluginV3 path), plus setLoggerFinder from 8.6 (8.5
# has no ILoggerFinder); the other names must be absent. Exit status 0 when every tag passes.
# Environment: JOBS (parallel build jobs, default 2), DSRIR_CUDA_ARCH (default 87-real),
# DSRIR_KEEP_TMP=1 keeps the temporary folder for inspection.
set -u -o pipefail

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    usage
    exit 2
fi

trt_repo=$1
shift
tags=("$@")
if [[ ${#tags[@]} -eq 0 ]]; then
    tags=(8.5.3 v8.6.1 v10.3.0 v10.16 v11.1)
fi
jobs=${JOBS:-2}
cuda_arch=${DSRIR_CUDA_ARCH:-87-real}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

if ! git -C "$trt_repo" rev-parse --git-dir > /dev/null 2>&1; then
    echo "error: $trt_repo is not a git checkout (or bare mirror) of NVIDIA/TensorRT" >&2
    exit 2
fi
for tool in cmake tar nm; do
    if ! command -v "$tool" > /dev/null; then
        echo "error: $tool not found" >&2
        exit 2
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/dsrir-trt-headers.XXXXXX") || exit 2
work=$(cd "$work" && pwd -P)
case "$work/" in
"$repo_root"/*)
    echo "error: temporary folder $work is inside the repository; set TMPDIR elsewhere" >&2
    rmdir "$work"
    exit 2
    ;;
esac
cleanup() {
    if [[ "${DSRIR_KEEP_TMP:-0}" == "1" ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

plugin_object_dir="CMakeFiles/dsrir_trt_plugins.dir/plugins/patchAttention"
summary=()
failures=0

for tag in "${tags[@]}"; do
    dir="$work/$tag"
    build="$work/build-$tag"
    mkdir -p "$dir"
    echo "=== $tag"
    if ! git -C "$trt_repo" rev-parse --verify --quiet "$tag^{commit}" > /dev/null; then
        summary+=("$(printf '%-10s FAIL  tag not found in %s' "$tag" "$trt_repo")")
        failures=$((failures + 1))
        continue
    fi
    if ! git -C "$trt_repo" archive "$tag" include | tar -x -C "$dir"; then
        summary+=("$(printf '%-10s FAIL  could not extract include/' "$tag")")
        failures=$((failures + 1))
        continue
    fi
    # NV_TENSORRT_MAJOR/MINOR are numbers in older headers; newer ones (10.16, 11.x) define them as
    # TRT_MAJOR_ENTERPRISE/TRT_MINOR_ENTERPRISE, which hold the numbers
    major=$(sed -nE 's/^#define (NV_TENSORRT_MAJOR|TRT_MAJOR_ENTERPRISE) ([0-9]+).*/\2/p' \
        "$dir/include/NvInferVersion.h" | head -n 1)
    minor=$(sed -nE 's/^#define (NV_TENSORRT_MINOR|TRT_MINOR_ENTERPRISE) ([0-9]+).*/\2/p' \
        "$dir/include/NvInferVersion.h" | head -n 1)
    if [[ -z "$major" || -z "$minor" ]]; then
        summary+=("$(printf '%-10s FAIL  no version in NvInferVersion.h' "$tag")")
        failures=$((failures + 1))
        continue
    fi
    version="$major.$minor"
    if ((major >= 10)); then
        expected=(getCreators setLoggerFinder)
        forbidden=(getPluginCreators)
        path="IPluginV3"
        implementation=patchAttentionPlugin
    elif ((major == 8 && minor >= 6)); then
        expected=(getPluginCreators setLoggerFinder)
        forbidden=(getCreators)
        path="IPluginV2DynamicExt"
        implementation=patchAttentionPluginLegacy
    else
        # ILoggerFinder and IPluginRegistry::loadLibrary (the caller of setLoggerFinder) appear in 8.6
        expected=(getPluginCreators)
        forbidden=(getCreators setLoggerFinder)
        path="IPluginV2DynamicExt"
        implementation=patchAttentionPluginLegacy
    fi
    # the objects CMakeLists.txt builds for this major: the implementation and the shared code
    object_rules=("$plugin_object_dir/$implementation.cpp.o" "$plugin_object_dir/patchAttentionPluginCommon.cpp.o")

    if ! cmake -S "$repo_root" -B "$build" -G "Unix Makefiles" -DTRT_INCLUDE_DIR="$dir/include" \
        -DDSRIR_TRT_COMPILE_ONLY=ON -DCMAKE_CUDA_ARCHITECTURES="$cuda_arch" -DDSRIR_BUILD_TESTS=OFF \
        > "$work/configure-$tag.log" 2>&1 || ! grep -q "building dsrir_trt_plugins" "$work/configure-$tag.log"; then
        tail -n 20 "$work/configure-$tag.log"
        summary+=("$(printf '%-10s FAIL  CMake configure (see output above)' "$tag")")
        failures=$((failures + 1))
        continue
    fi

    # The kernels are a dependency of dsrir_trt_plugins but not what this script checks: build them first with
    # their own log, so that the plugin log below holds only the plugin's compilation.
    note=""
    if cmake --build "$build" --target dsrir_kernels -j "$jobs" > "$work/kernels-$tag.log" 2>&1; then
        cmake --build "$build" --target dsrir_trt_plugins -j "$jobs" > "$work/plugin-$tag.log" 2>&1
        rc=$?
    else
        note=" (dsrir_kernels failed to build: plugin objects compiled alone)"
        make -C "$build" -f CMakeFiles/dsrir_trt_plugins.dir/build.make "${object_rules[@]}" \
            > "$work/plugin-$tag.log" 2>&1
        rc=$?
    fi
    warnings=$(grep -c 'warning' "$work/plugin-$tag.log")
    errors=$(grep -c 'error' "$work/plugin-$tag.log")
    objects=()
    for rule in "${object_rules[@]}"; do
        [[ -f "$build/$rule" ]] && objects+=("$build/$rule")
    done
    missing=()
    unexpected=()
    if [[ $rc -eq 0 && ${#objects[@]} -ne ${#object_rules[@]} ]]; then
        # a build that succeeded without one of the two objects compiled other sources than CMakeLists.txt should
        rc=1
        note+=" (expected objects ${object_rules[*]##*/})"
    fi
    if [[ $rc -eq 0 ]]; then
        symbols=$(nm "${objects[@]}")
        for symbol in "${expected[@]}"; do
            # C linkage: the plain, unmangled name is a defined text symbol
            if ! grep -qE "^[0-9a-f]+ T ${symbol}\$" <<< "$symbols"; then
                missing+=("$symbol")
            fi
        done
        for symbol in "${forbidden[@]}"; do
            if grep -qE " ${symbol}\$" <<< "$symbols"; then
                unexpected+=("$symbol")
            fi
        done
    fi
    if [[ $rc -ne 0 || $warnings -ne 0 || ${#missing[@]} -ne 0 || ${#unexpected[@]} -ne 0 ]]; then
        grep -E 'warning|error' "$work/plugin-$tag.log" | head -n 40
        [[ $rc -ne 0 ]] && tail -n 20 "$work/plugin-$tag.log"
        summary+=("$(printf '%-10s FAIL  TensorRT %s, %s path (%s.cpp): exit %d, %d warnings, %d errors%s%s%s' "$tag" \
            "$version" "$path" "$implementation" "$rc" "$warnings" "$errors" \
            "${missing[*]:+, missing exports: ${missing[*]}}" \
            "${unexpected[*]:+, unexpected symbols: ${unexpected[*]}}" "$note")")
        failures=$((failures + 1))
    else
        summary+=("$(printf '%-10s PASS  TensorRT %s, %s path (%s.cpp): 0 warnings, exports %s%s' "$tag" "$version" \
            "$path" "$implementation" "${expected[*]}" "$note")")
    fi
    rm -rf "$build"
done

echo
echo "Plugin header check against $(git -C "$trt_repo" rev-parse --show-toplevel 2> /dev/null || echo "$trt_repo"):"
printf '  %s\n' "${summary[@]}"
if ((failures > 0)); then
    echo "$failures of ${#tags[@]} tag(s) failed"
    exit 1
fi
echo "all ${#tags[@]} tag(s) passed"
