#!/usr/bin/env bash
# Builds the static binary and the container image of a Synod node (deploy/Containerfile,
# FROM scratch), then takes the binary back out of the image into target/image/synod, where
# the tests start clusters from it (`podman run` is refused on the development machines, so
# the image's binary is checked by running it outside the image).
#
#   scripts/image.sh                 # image localhost/synod:<git describe>, also :latest
#   TAG=registry.example/synod:1.2 scripts/image.sh
#
# Installs podman (Debian) if it is missing. The binary is glibc linked statically
# (-C target-feature=+crt-static): it resolves peer names itself (hickory-resolver reads
# /etc/hosts and /etc/resolv.conf) and so needs no NSS modules in the empty image.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v podman >/dev/null; then
  echo "installing podman"
  (apt-get install -y -qq podman >/dev/null 2>&1) ||
    (apt-get update -qq && apt-get install -y -qq podman >/dev/null)
fi

target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --locked --release --target "$target" -p synod
bin="target/$target/release/synod"
if readelf --dynamic "$bin" | grep -q NEEDED; then
  echo "$bin needs shared libraries, which the empty image does not have:" >&2
  readelf --dynamic "$bin" | grep NEEDED >&2
  exit 1
fi

version=$(git describe --always --dirty 2>/dev/null || echo dev)
tag=${TAG:-localhost/synod:$version}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$bin" "$context/synod"
# Line tables stay in target/; the image carries a stripped binary (89 MB -> 23 MB).
strip --strip-debug "$context/synod"
mkdir "$context/data"
podman build --quiet --tag "$tag" --file deploy/Containerfile "$context" >/dev/null
if [ -z "${TAG:-}" ]; then
  podman tag "$tag" localhost/synod:latest
fi

# The binary as the image holds it, for the tests (scripts/test.sh) to run.
mkdir -p target/image
container=$(podman create "$tag")
podman cp "$container:/synod" target/image/synod
podman rm "$container" >/dev/null
podman image inspect "$tag" \
  --format 'user {{.Config.User}}, ports {{.Config.ExposedPorts}}, volumes {{.Config.Volumes}}' \
  > target/image/config.txt
echo "image $tag ($(podman image inspect "$tag" --format '{{.Size}}') bytes): $(cat target/image/config.txt)"
echo "its binary: target/image/synod ($(target/image/synod --version))"
