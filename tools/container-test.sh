#!/usr/bin/env bash
# End-to-end container test (DESIGN.md §7, /work/shared/reference/containers.md):
# debootstrap a Debian 12 base -> podman import -> podman build the Dockerfile (CPU
# variant, --pull=never) -> run it with the fixture model tests/fixtures/lf_base mounted
# read-only at /data/model on a loopback-published port -> /ready -> v2 infer ->
# podman stop (SIGTERM) -> exit code 0. Prints E2E-OK.
#
# Needs root and the Debian mirror (apt-get, debootstrap); no registry is contacted.
# Installs podman runc debootstrap curl bc when missing. Exits 77 (skip) when podman
# cannot run a container on this machine.
#
# Environment: W (work dir, default /var/tmp/longserve-ctest; the debootstrap tarball and
# the podman store are cached there), PORT (host loopback port, default 18300),
# IMAGE (default localhost/longserve:cpu-test), NO_CACHE=1 (podman build --no-cache),
# KEEP=1 (keep the image and the build cache afterwards).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
W=${W:-/var/tmp/longserve-ctest}; mkdir -p "$W"
PORT=${PORT:-18300}
IMAGE=${IMAGE:-localhost/longserve:cpu-test}
BASE_IMAGE=localhost/debian:bookworm-slim
NAME=longserve-ctest-$$
MIRROR=${MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
T0=$(date +%s.%N)
t() { local s; s=$(date +%s.%N); "$@"; echo "TIME $(echo "$(date +%s.%N)-$s" | bc) s: $*" >&2; }
die() { echo "container-test: FAIL: $*" >&2; exit 1; }

# 0. packages
need=()
for c in podman:podman runc:runc debootstrap:debootstrap curl:curl bc:bc; do
  command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
done
if ((${#need[@]})); then
  [[ $(id -u) -eq 0 ]] || { echo "container-test: SKIP: need root to install ${need[*]}" >&2; exit 77; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 1. engine config: runc (crun 1.8.1 rejects the host's cgroup v1/v2 hybrid) and ulimits
# within the host's hard limits (podman 4.3 as root asks for 1048576; no CAP_SYS_RESOURCE;
# podman lowers its own RLIMIT_NPROC to 32768).
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
[[ $NOFILE == unlimited ]] && NOFILE=1048576
if [[ $NPROC == unlimited ]] || ((NPROC > 32768)); then NPROC=32768; fi
cat > "$W/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
export CONTAINERS_CONF="$W/containers.conf"
P=(podman --root "$W/storage" --runroot "$W/run")   # isolated store under $W

# 2. base image from debootstrap (cached as $W/rootfs.tar and in the store)
if ! "${P[@]}" image exists "$BASE_IMAGE"; then
  if [[ ! -f $W/rootfs.tar ]]; then
    rm -rf "$W/rootfs"
    d0=$(date +%s.%N)
    debootstrap --variant=minbase bookworm "$W/rootfs" "$MIRROR" >"$W/debootstrap.log" 2>&1 \
      || { tail -20 "$W/debootstrap.log"; die "debootstrap"; }
    echo "TIME $(echo "$(date +%s.%N)-$d0" | bc) s: debootstrap" >&2
    rm -rf "$W"/rootfs/var/cache/apt/archives/*.deb "$W"/rootfs/var/lib/apt/lists/*
    tar -C "$W/rootfs" -cf "$W/rootfs.tar.tmp" . && mv "$W/rootfs.tar.tmp" "$W/rootfs.tar"
    rm -rf "$W/rootfs"
  fi
  t "${P[@]}" import "$W/rootfs.tar" "$BASE_IMAGE" >/dev/null
fi
if ! "${P[@]}" run --rm --network none "$BASE_IMAGE" true; then
  echo "container-test: SKIP: podman cannot run a container here" >&2; exit 77
fi

# 3. build the CPU variant (docker format: OCI images drop HEALTHCHECK)
build_args=(--pull=never --format docker --build-arg BASE="$BASE_IMAGE"
            --build-arg RUNTIME_BASE="$BASE_IMAGE" --build-arg CUDA=disabled -t "$IMAGE")
[[ ${NO_CACHE:-0} == 1 ]] && build_args+=(--no-cache)
b0=$(date +%s.%N)
"${P[@]}" build "${build_args[@]}" -f "$root/Dockerfile" "$root" >"$W/build.log" 2>&1 \
  || { tail -40 "$W/build.log"; die "podman build (log: $W/build.log)"; }
echo "TIME $(echo "$(date +%s.%N)-$b0" | bc) s: podman build" >&2
grep -m1 '^runtime packages:' "$W/build.log" || true
echo "image size: $("${P[@]}" image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"
"${P[@]}" image inspect --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} stopsignal={{.Config.StopSignal}} healthcheck={{.Config.Healthcheck}}' "$IMAGE" 2>/dev/null \
  || "${P[@]}" image inspect --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}}' "$IMAGE"

# 4. run with the fixture model, read-only, on a loopback-published port
# Afterwards the image and the build's intermediate images are removed (the imported base
# image and $W/rootfs.tar stay); KEEP=1 keeps them, and the next build uses their cache.
cleanup() { "${P[@]}" rm -f -v -t 0 "$NAME" >/dev/null 2>&1 || true
            if [[ ${KEEP:-0} != 1 ]]; then
              "${P[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
              "${P[@]}" image prune -f >/dev/null 2>&1 || true
            fi; }
trap cleanup EXIT
# The container runs as uid 10001: mount a world-readable copy (a checkout may hold the
# fixture 0600, and a non-root server rightly cannot read that).
rm -rf "$W/model" && mkdir -p "$W/model"
cp "$root"/tests/fixtures/lf_base/config.json "$root"/tests/fixtures/lf_base/model.safetensors "$W/model/"
chmod -R a+rX "$W/model"
r0=$(date +%s.%N)
# (podman 4.3 logs "unable to get systemd connection" for the image's HEALTHCHECK timer
# when no systemd runs; harmless, filtered here; `podman healthcheck run` is used below.)
quiet() { "$@" 2> >(grep -v 'systemd connection' >&2); }
# The engine sleeps 500 ms before each batch (testing aid), so a request is in flight
# when SIGTERM arrives in step 6. The image's default CMD is used (--model-id model=/data/model).
quiet "${P[@]}" run -d --name "$NAME" -p "127.0.0.1:$PORT:3000" -e LONGSERVE_DEBUG_ENGINE_DELAY_MS=500 \
  -v "$W/model:/data/model:ro" "$IMAGE" >/dev/null \
  || die "podman run"
ready=
for _ in $(seq 300); do
  if [[ $(curl -s -o /dev/null -w '%{http_code}' -m 2 "http://127.0.0.1:$PORT/ready" 2>/dev/null) == 200 ]]; then
    ready=1; break
  fi
  [[ $("${P[@]}" inspect -f '{{.State.Running}}' "$NAME") == true ]] || break
  sleep 0.1
done
[[ -n $ready ]] || { "${P[@]}" logs "$NAME" | tail -20; die "/ready never returned 200"; }
echo "TIME $(echo "$(date +%s.%N)-$r0" | bc) s: podman run -> /ready 200" >&2
health=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "http://127.0.0.1:$PORT/health")
[[ $health == 200 ]] || die "/health: $health"
if "${P[@]}" healthcheck run "$NAME" >/dev/null 2>&1; then echo "HEALTHCHECK: healthy"
else echo "HEALTHCHECK: podman healthcheck run did not report healthy (non-fatal)"; fi
uid=$("${P[@]}" exec "$NAME" id -u 2>/dev/null || echo '?')
echo "container uid: $uid"; [[ $uid != 0 ]] || die "container runs as root"

# 5. a KServe v2 infer request
body=$(curl -s -w '\n%{http_code}' -m 30 -H 'Content-Type: application/json' \
  --data @"$root/tests/fixtures/lf_base/cases/short_nomask.request.json" \
  "http://127.0.0.1:$PORT/v2/models/model/infer")
code=${body##*$'\n'}; body=${body%$'\n'*}
echo "infer: HTTP $code ${body:0:120}..."
[[ $code == 200 ]] || die "infer returned $code"
[[ $body == *'"name":"last_hidden_state"'* ]] || die "infer output lacks last_hidden_state"
[[ $body == *'"shape":[1,5,32]'* ]] || die "infer output shape is not [1,5,32]"

# 6. SIGTERM through podman stop while a request is in flight: the server drains it
# (200), then exits 0
curl -s -o /dev/null -w '%{http_code}' -m 30 -H 'Content-Type: application/json' \
  --data @"$root/tests/fixtures/lf_base/cases/short_nomask.request.json" \
  "http://127.0.0.1:$PORT/v2/models/model/infer" >"$W/inflight.code" &
inflight=$!
sleep 0.2
s0=$(date +%s.%N)
quiet "${P[@]}" stop -t 40 "$NAME" >/dev/null
echo "TIME $(echo "$(date +%s.%N)-$s0" | bc) s: podman stop" >&2
rc=$("${P[@]}" inspect -f '{{.State.ExitCode}}' "$NAME")
"${P[@]}" logs "$NAME" 2>&1 | tail -3
[[ $rc == 0 ]] || die "exit code after SIGTERM: $rc"
wait "$inflight" || true
echo "in-flight request during SIGTERM: HTTP $(cat "$W/inflight.code")"
[[ $(cat "$W/inflight.code") == 200 ]] || die "in-flight request was not drained"
quiet "${P[@]}" rm -v "$NAME" >/dev/null
echo "TIME $(echo "$(date +%s.%N)-$T0" | bc) s: total" >&2
echo E2E-OK
