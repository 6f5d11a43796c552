#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Berth needs on a Linux host, and only
# those that are missing.  Usage: host-deps.sh run|test
#   run   what `make run` needs (build the seed images, run containers)
#   test  run + the reference tools the test suite drives (registry, dockerd...)
# Each package is listed with the reason it is needed, and printed when installed.
set -euo pipefail

profile=${1:-run}

# name|why
run_pkgs=(
  "python3-venv|a virtualenv (.venv) for Berth and its Python dependencies"
  "gcc|compiles the hello-world seed image's static binary"
  "libc6-dev|static libc for that binary"
  "make|the quick-start commands"
  "busybox-static|the busybox seed image"
  "mmdebstrap|builds the debian:bookworm-slim seed image from Debian packages"
  "libseccomp2|seccomp filters for containers (loaded through pyseccomp)"
  "iptables|NAT and port publishing for container networks"
  "iproute2|network namespaces and veths"
)
test_pkgs=(
  "docker-registry|a real local registry for pull/push tests"
  "apache2-utils|htpasswd, for the registry's basic-auth variant"
  "skopeo|seeds the test registry with the seed images, independently of Berth"
  "docker.io|the reference dockerd that proves the seed archives load into real Docker"
  "runc|reference OCI runtime for behaviour tests and benchmarks"
  "crun|reference OCI runtime for benchmarks"
  "uidmap|user-namespace tests (newuidmap)"
  "docker-compose|Debian's compose 1.29 (docker-py 5), driven against berthd by the compose tests"
  "curl|the network tests and bench fetch published ports from inside berthd's test netns"
  "openssh-server|a private loopback sshd for the ssh:// engine-address tests (started per test, never the service)"
  "qemu-system-x86|boots the pure cgroup-v2 test guest (installers/vm) that runs the v2 cgroup suite"
  "kmod|depmod for the test guest's kernel modules (installers/vm/kernel.py)"
)

wanted=("${run_pkgs[@]}")
[ "$profile" = test ] && wanted+=("${test_pkgs[@]}")

missing=()
for entry in "${wanted[@]}"; do
  pkg=${entry%%|*}
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    # python3-venv is only needed when the interpreter on PATH cannot make a venv
    # (a pyenv or distro-built Python already can).
    if [ "$pkg" = python3-venv ] && python3 -c 'import ensurepip, venv' 2>/dev/null; then
      continue
    fi
    missing+=("$entry")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "host-deps ($profile): all Debian packages present"
  exit 0
fi

echo "host-deps ($profile): installing ${#missing[@]} missing Debian package(s):"
names=()
for entry in "${missing[@]}"; do
  printf '  %-16s %s\n' "${entry%%|*}" "${entry#*|}"
  names+=("${entry%%|*}")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "host-deps: not root and no sudo; install these packages and re-run: ${names[*]}" >&2
    exit 1
  fi
fi
# Services shipped by these packages (dockerd, registry) must not start on
# install: tests start their own instances on private sockets and ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${names[@]}" >/dev/null
echo "host-deps ($profile): done"
