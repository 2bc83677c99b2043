#!/usr/bin/env bash
# A Debian 12 base image without a registry: debootstrap a minimal root file system (python3 included) and import
# it into podman. For hosts that can reach a Debian mirror and PyPI but no image registry; about 2 minutes.
#   components/images/debootstrap-base.sh [TAG]     (default localhost/ufvideo-base:bookworm-minbase; needs root,
#                                                    debootstrap and podman)
set -euo pipefail
tag="${1:-localhost/ufvideo-base:bookworm-minbase}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3-minimal bookworm "$root" "$mirror" >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import - "$tag"
