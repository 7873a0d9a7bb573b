#!/usr/bin/env bash
# Compiles the dvdi isolator module against a Mesos *source tree*, without building Mesos:
# generates include/mesos/version.hpp and the .pb.h/.pb.cc of include/mesos/**/*.proto into a
# build directory, then runs this folder's Makefile with MESOS_SRC + MESOS_BUILD.
#
#   build-against-mesos-source.sh MESOS_SRC BUILD_DIR
#
# MESOS_SRC  an Apache Mesos source tree (needs include/, 3rdparty/stout/include,
#            3rdparty/libprocess/include and configure.ac) -- you bring it; nothing here
#            downloads it.
# BUILD_DIR  where generated headers and the module go; must be outside this repository
#            (no Mesos code or anything generated from it is ever committed here).
#
# picojson is header-only and stout is written against Mesos' own copy of it (Mesos 1.7.0's
# stout does not compile with today's picojson, 1.7.1+ does), so when the source tree
# carries 3rdparty/picojson-*.tar.gz it is unpacked (and its Mesos patch applied) into
# BUILD_DIR, as Mesos' own build does; SYSTEM_PICOJSON=1 uses the system's instead.
#
# Environment: PROTOC (default: protoc -- must be the protoc of the libprotobuf whose headers
# the compiler sees), DVDI_LIB (directory of libdvdi_ffi.so; default: <repo>/target/release),
# DVDI_INCLUDE (default: <repo>/ffi/include), CXX, CXXSTD, EXTRA_CPPFLAGS.
#
# The result, BUILD_DIR/module/libmesos_dvdi_isolator.so, leaves Mesos, glog and protobuf
# symbols to the agent that loads it. It is a true build for an agent of the same Mesos
# version only if that agent was built with the same protobuf, glog and boost as used here.
set -euo pipefail

usage() {
    echo "usage: $0 MESOS_SRC BUILD_DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mesos_src="$(cd "$1" && pwd)"
mkdir -p "$2"
build_dir="$(cd "$2" && pwd)"
protoc="${PROTOC:-protoc}"

case "$build_dir/" in
    "$repo"/*)
        echo "$0: BUILD_DIR $build_dir is inside the repository $repo; choose one outside it" >&2
        exit 2
        ;;
esac

for required in include/mesos/version.hpp.in include/mesos/mesos.proto \
                3rdparty/stout/include/stout/json.hpp \
                3rdparty/libprocess/include/process/future.hpp configure.ac; do
    if [ ! -e "$mesos_src/$required" ]; then
        echo "$0: $mesos_src is not a Mesos source tree: $required is missing" >&2
        exit 1
    fi
done

# The version Mesos' configure would substitute: AC_INIT([mesos], [X.Y.Z]).
version="$(sed -n 's/^AC_INIT(\[mesos\], *\[\([0-9][0-9.]*\)\]).*/\1/p' "$mesos_src/configure.ac")"
if ! [[ "$version" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
    echo "$0: cannot read the Mesos version from $mesos_src/configure.ac" >&2
    exit 1
fi
major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}" patch="${BASH_REMATCH[3]}"

gen="$build_dir/mesos"
stamp="$gen/.generated-by"
want_stamp="mesos $version from $mesos_src; $("$protoc" --version); system picojson: ${SYSTEM_PICOJSON:-0}"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want_stamp" ]; then
    echo "== generating Mesos $version headers into $gen with $("$protoc" --version)"
    rm -rf "$gen"
    mkdir -p "$gen/include/mesos"

    sed -e "s/@PACKAGE_VERSION@/$version/" \
        -e "s/@MESOS_MAJOR_VERSION@/$major/g" \
        -e "s/@MESOS_MINOR_VERSION@/$minor/g" \
        -e "s/@MESOS_PATCH_VERSION@/$patch/g" \
        "$mesos_src/include/mesos/version.hpp.in" > "$gen/include/mesos/version.hpp"

    # Every proto under include/mesos, as Mesos' own build does; they import each other
    # by paths relative to include/.
    (cd "$mesos_src/include" && find mesos -name '*.proto' -print0 | sort -z |
        xargs -0 "$protoc" --proto_path=. --cpp_out="$gen/include")

    picojson_tar="$(find "$mesos_src/3rdparty" -maxdepth 1 -name 'picojson-*.tar.gz' | sort | tail -n 1)"
    if [ -n "$picojson_tar" ] && [ "${SYSTEM_PICOJSON:-0}" != 1 ]; then
        picojson_dir="$(basename "$picojson_tar" .tar.gz)"
        echo "== unpacking Mesos' bundled $picojson_dir"
        mkdir -p "$gen/3rdparty"
        tar -xzf "$picojson_tar" -C "$gen/3rdparty"
        if [ -f "$mesos_src/3rdparty/$picojson_dir.patch" ]; then
            patch -d "$gen/3rdparty/$picojson_dir" -p1 --quiet < "$mesos_src/3rdparty/$picojson_dir.patch"
        fi
    fi

    echo "$want_stamp" > "$stamp"
else
    echo "== reusing Mesos $version headers in $gen"
fi

echo "== compiling the module against Mesos $version"
make -C "$here" \
    MESOS_SRC="$mesos_src" \
    MESOS_BUILD="$gen" \
    BUILD_DIR="$build_dir/module" \
    DVDI_INCLUDE="${DVDI_INCLUDE:-$repo/ffi/include}" \
    DVDI_LIB="${DVDI_LIB:-$repo/target/release}" \
    ${CXX:+CXX="$CXX"} ${CXXSTD:+CXXSTD="$CXXSTD"} \
    ${EXTRA_CPPFLAGS:+EXTRA_CPPFLAGS="$EXTRA_CPPFLAGS"} \
    all check-symbols

echo "== built $build_dir/module/libmesos_dvdi_isolator.so for Mesos $version"
