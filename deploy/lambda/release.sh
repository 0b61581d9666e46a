#!/usr/bin/env bash
# Builds ion's Lambda package, as the original's release.sh did: the NativeAOT `bootstrap` of src/Ion.Lambda for the
# provided.al2023 runtime, zipped with bootstrap at the root of the zip:
#   deploy/lambda/dist/ion-lambda-arm64.zip    (Graviton: the Terraform module's default architecture)
#   deploy/lambda/dist/ion-lambda-x86_64.zip
# Usage: deploy/lambda/release.sh [arm64] [x86_64]     (default: both)
# Needs the .NET 10 SDK. Installs what NativeAOT needs when it is missing (Debian): clang and zlib1g-dev, zip, and to
# build arm64 on an x86-64 machine the cross toolchain (gcc-aarch64-linux-gnu, binutils-aarch64-linux-gnu,
# libc6-dev-arm64-cross, llvm) and arm64's zlib (zlib1g-dev:arm64, which adds the arm64 architecture to dpkg).
# Building x86_64 on an arm64 machine needs the mirror image of that toolchain, which this script does not install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(arm64 x86_64)
host=$(uname -m)

apt_install() {
  echo "release.sh: installing $* (apt-get)" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
need=()
command -v clang >/dev/null || need+=(clang)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v zip >/dev/null || need+=(zip)
for arch in "${archs[@]}"; do
  case $arch in
    arm64) if [ "$host" = x86_64 ]; then
             command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross)
             command -v llvm-objcopy >/dev/null || need+=(llvm)
             if [ ! -f /usr/lib/aarch64-linux-gnu/libz.so ]; then
               dpkg --print-foreign-architectures | grep -qx arm64 || { SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO dpkg --add-architecture arm64; }
               need+=(zlib1g-dev:arm64)
             fi
           fi ;;
    x86_64) [ "$host" = x86_64 ] || { echo "release.sh: building x86_64 on $host needs an x86-64 cross toolchain; build it on an x86-64 machine" >&2; exit 2; } ;;
    *) echo "release.sh: unknown architecture '$arch' (arm64 or x86_64)" >&2; exit 2 ;;
  esac
done
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

mkdir -p deploy/lambda/dist
for arch in "${archs[@]}"; do
  rid=$([ "$arch" = arm64 ] && echo linux-arm64 || echo linux-x64)
  out=$ROOT/.build/lambda/$rid
  zip=$ROOT/deploy/lambda/dist/ion-lambda-$arch.zip
  echo "release.sh: building the $arch bootstrap (dotnet publish -r $rid, NativeAOT)" >&2
  rm -rf "$out"
  dotnet publish src/Ion.Lambda -c Release -r "$rid" -o "$out" -nologo -v quiet >&2
  rm -f "$zip"
  # Only the executable: Lambda runs /var/task/bootstrap, and nothing else of the publish folder is used.
  (cd "$out" && chmod 755 bootstrap && zip -q -9 -X "$zip" bootstrap)
  printf '%s\t%s bytes (bootstrap %s bytes)\n' "${zip#"$ROOT"/}" "$(stat -c %s "$zip")" "$(stat -c %s "$out/bootstrap")"
done
