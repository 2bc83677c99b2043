#!/usr/bin/env bash
# Build time and size of the CPU image (components/images/Dockerfile.cpu) with podman, on a host without an image
# registry: the debootstrap base (made first when missing, timed separately), torch from the local wheel directory,
# everything else from PyPI through the host's CA bundle. Run from the repository root, as root:
#   bench/bench_image.sh            # cached build (what a code-only change costs after the first build)
#   bench/bench_image.sh --cold     # every layer rebuilt from the base image (--no-cache)
set -euo pipefail
export CONTAINERS_CONF="$PWD/tests/containers/containers.conf"
base="${UFVIDEO_BASE_IMAGE:-localhost/ufvideo-base:bookworm-minbase}"
wheels="${UFVIDEO_WHEELS:-/opt/wheels}"
ca="${UFVIDEO_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}"
if ! podman image exists "$base"; then
  start=$(date +%s); components/images/debootstrap-base.sh "$base" >/dev/null
  echo "base image $base: $(( $(date +%s) - start )) s"
fi
args="-v $wheels:$wheels:ro --build-arg WHEELS=$wheels -v $ca:/run/host-ca.crt:ro --build-arg CA_BUNDLE=/run/host-ca.crt"
[ "${1:-}" = "--cold" ] && args="$args --no-cache"
start=$(date +%s)
make image ENGINE=podman BASE_IMAGE="$base" TORCH_INDEX= IMAGE_ARGS="$args" >/tmp/bench_image.log 2>&1 \
  || { tail -20 /tmp/bench_image.log; exit 1; }
seconds=$(( $(date +%s) - start ))
size=$(podman image inspect --format '{{.Size}}' ghcr.io/ufvideo/ufvideo:0.1.0)
echo "make image ${1:---cached}: ${seconds} s; image ghcr.io/ufvideo/ufvideo:0.1.0: $(( size / 1000000 )) MB"
podman image history --format '{{.Size}}\t{{.CreatedBy}}' ghcr.io/ufvideo/ufvideo:0.1.0 | awk -F'\t' \
  '$1 !~ /^0 ?B$/ {printf "  %8s  %s\n", $1, substr($2, 1, 90)}'
