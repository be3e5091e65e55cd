#!/bin/sh
# Installs the Debian packages a target needs, only those missing.
#   build: compilers' libraries (OpenBLAS OpenMP build, FFTW, cJSON)
#   data:  the King James Bible text for the demo
#   r:     R (r-base-core), whose datasets tools/export_r_series.sh exports
#   torch: the PyTorch oracle (Debian's python3-torch)
#   fuzz:  clang with libFuzzer and the sanitizer runtimes, for `make fuzz`
#   chromium: headless Chromium, which tests/test_report.c opens `seqlab report`'s page in
set -e
case "$1" in
build) pkgs="gcc make libc6-dev pkg-config libopenblas-openmp-dev libfftw3-dev libcjson-dev" ;;
data) pkgs="bible-kjv bible-kjv-text" ;;
r) pkgs="r-base-core" ;;
torch) pkgs="python3-torch python3-numpy" ;;
fuzz) pkgs="clang libclang-rt-14-dev libomp-14-dev" ;;
chromium) pkgs="chromium" ;;
*) echo "usage: $0 build|data|r|torch|fuzz|chromium" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "seqlab: missing Debian packages:$missing (run as root, or apt-get install them)" >&2
    exit 1
fi
echo "seqlab: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
