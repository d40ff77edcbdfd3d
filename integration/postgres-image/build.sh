#!/usr/bin/env bash
# Builds a Postgres 15 image from Debian packages, for machines that cannot pull
# images from a registry. Does nothing when the image already exists.
#
#   integration/postgres-image/build.sh            # builds hookrelay-postgres:15
#   HOOKRELAY_TEST_PG_IMAGE=hookrelay-postgres:15 go test ./...
set -euo pipefail

image=${HOOKRELAY_TEST_PG_IMAGE:-hookrelay-postgres:15}
here=$(cd "$(dirname "$0")" && pwd)

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "image $image exists"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap (apt-get install debootstrap), which builds the image from Debian packages"
  apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# debootstrap's default mirror is Debian's own.
debootstrap --variant=minbase --include=postgresql-15 bookworm "$work/rootfs"
rm -rf "$work/rootfs/var/lib/postgresql/15" "$work/rootfs/var/cache/apt/archives/"*.deb
tar -C "$work/rootfs" -c . | docker import - "$image-base"

cp "$here/Dockerfile" "$here/entrypoint.sh" "$work/"
docker build -q -t "$image" --build-arg BASE="$image-base" "$work"
docker rmi "$image-base" >/dev/null
echo "built $image"
