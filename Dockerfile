# longserve container image (DESIGN.md §7): multi-stage, build -> slim runtime.
#
# CPU variant (default; what tools/container-test.sh builds and runs):
#   podman build --format docker -t longserve:cpu .
#   docker build -t longserve:cpu .
#
# GPU variant (CUDA kernels; needs a CUDA base with nvcc in the build stage and the CUDA
# runtime libraries in the runtime stage; meson needs >= 1.0, so Ubuntu 24.04 or newer):
#   docker build -t longserve:cuda \
#     --build-arg CUDA=enabled \
#     --build-arg BASE=nvidia/cuda:12.6.3-devel-ubuntu24.04 \
#     --build-arg RUNTIME_BASE=nvidia/cuda:12.6.3-runtime-ubuntu24.04 .
#   docker run --gpus all -p 3000:3000 -v /models/x:/data/model:ro longserve:cuda --backend cuda
# (Untested here: no CUDA base image can be pulled on the test machines.)
#
# Models are mounted, not baked in: a Hugging Face model directory at /data/model (the
# default CMD), or anywhere with an explicit --model-id NAME=DIR (KServe: /mnt/models).
#   docker run -p 3000:3000 -v $PWD/models/all-MiniLM-L6-v2:/data/model:ro longserve:cpu
#   docker run ... longserve:cpu --model-id minilm=/data/model --window 512

ARG BASE=debian:bookworm-slim
ARG RUNTIME_BASE=debian:bookworm-slim

# ---------------------------------------------------------------- build stage
FROM ${BASE} AS build
ARG CUDA=disabled
ENV DEBIAN_FRONTEND=noninteractive
# Build deps from tools/install-deps.sh (python3 is only for fetching models, not needed).
# check and libyaml-dev are needed at configure time: tests/meson.build requires them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential meson ninja-build pkg-config \
      libopenblas-openmp-dev check libcjson-dev libyaml-dev \
      libuv1-dev libmicrohttpd-dev libutf8proc-dev libpcre2-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=${PATH}:/usr/local/cuda/bin
WORKDIR /src
COPY . .
RUN meson setup /build --buildtype=release -Dcuda=${CUDA} \
 && ninja -C /build server/longserve \
 && install -D -m 0755 /build/server/longserve /out/usr/local/bin/longserve \
 && /out/usr/local/bin/longserve --help >/dev/null
# The runtime packages are derived from what the binary really links (dpkg owners of its
# shared libraries), so the runtime stage cannot drift from the build. Libraries that no
# package owns (e.g. CUDA's, in /usr/local/cuda) come with RUNTIME_BASE.
RUN needed=$(objdump -p /out/usr/local/bin/longserve | awk '$1=="NEEDED"{print $2}' | tr '\n' ' ') \
 && ldd /out/usr/local/bin/longserve | awk -v n="$needed" 'BEGIN{split(n,a);for(i in a)d[a[i]]=1} d[$1] && $3 ~ /^\//{print $3}' \
    | while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true; done \
    | cut -d: -f1 | grep -v -E '^(libc6|libgcc-s1)$' | sort -u > /out/runtime-packages \
 && echo "runtime packages:" $(cat /out/runtime-packages)

# ---------------------------------------------------------------- runtime stage
FROM ${RUNTIME_BASE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages /usr/local/share/longserve/runtime-packages
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(cat /usr/local/share/longserve/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /data \
      --shell /usr/sbin/nologin longserve \
 && mkdir -p /data /mnt/models && chown 10001:10001 /data
COPY --from=build /out/usr/local/bin/longserve /usr/local/bin/longserve
# Fail the build if any shared library is missing from the runtime image.
RUN ! ldd /usr/local/bin/longserve | grep 'not found' && longserve --help >/dev/null

ENV LONGSERVE_PORT=3000 \
    LONGSERVE_HOSTNAME=0.0.0.0 \
    OMP_WAIT_POLICY=PASSIVE
USER 10001:10001
WORKDIR /data
EXPOSE 3000
VOLUME /data
# bash's /dev/tcp: no curl in the image. /health is 200 while the process serves
# (/ready is for traffic gating: orchestrator probes, see deploy/).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${LONGSERVE_PORT:-3000} && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
# longserve drains in-flight requests on SIGTERM for up to --shutdown-timeout (30 s),
# then exits 0; give `docker stop -t` / terminationGracePeriodSeconds more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["longserve"]
CMD ["--model-id", "model=/data/model"]
