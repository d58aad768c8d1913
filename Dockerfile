# bids-deepwmh: the BIDS App with its model, HD-BET's weights (and their ONNX conversion) and the
# template files inside; nothing is downloaded at run time.  CUDA when the container is given a GPU
# (`docker run --gpus all`, `podman run --device nvidia.com/gpu=all`, `apptainer run --nv`),
# the CPU otherwise, with the same command.
#
#   docker build -t deepwmh .                                   # PyPI's torch (CUDA libraries inside)
#   docker build -t deepwmh:cpu --build-arg TORCH_VARIANT=cpu .  # CPU-only torch, a much smaller image
#
# Build arguments:
#   BASE_IMAGE           a Debian bookworm image (python3 3.11 is installed if it lacks it); a base
#                        made locally (mmdebstrap + podman import) where no registry is reachable
#   TORCH_VARIANT        cuda (default: PyPI's wheel, which brings the CUDA runtime; torch 2.13's needs
#                        an NVIDIA driver >= 580 for CUDA 13), a PyTorch CUDA index such as cu126 (older
#                        drivers), or cpu (a wheel in container/wheels/ if there is one, else the
#                        PyTorch CPU index)
#   TEMPLATEFLOW_SOURCE  download (default: from TemplateFlow at build time) or build-context
#                        (a TemplateFlow home copied into container/templateflow/)
# Builds behind a TLS-inspecting proxy: mount the host's CA bundle over the image's, e.g.
#   podman build --network host -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro ...
# Keep Singularity.def equivalent to this file.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BASE_IMAGE} AS base
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8
RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null || [ ! -f /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -c "import sys; assert sys.version_info[:2] >= (3, 10), 'bids-deepwmh needs Python >= 3.10'"

FROM base AS build
ARG TORCH_VARIANT=cuda
ARG TEMPLATEFLOW_SOURCE=download
# pip and TemplateFlow trust the system's CA bundle (the host's, where one is mounted).
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    NIPYPE_NO_ET=1
COPY container/ /build/container/
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip
ENV PATH=/opt/venv/bin:$PATH
# torch first, so that installing the package keeps the variant chosen; capped as in pyproject.toml.
RUN set -e; torch_requirement="torch>=2.2,<=2.13.0"; \
    case "$TORCH_VARIANT" in \
      cuda) pip install "$torch_requirement" ;; \
      cu[0-9]*) pip install --index-url "https://download.pytorch.org/whl/$TORCH_VARIANT" "$torch_requirement" ;; \
      cpu) wheel="$(ls /build/container/wheels/torch-*+cpu-*.whl 2>/dev/null | head -n 1)"; \
           if [ -n "$wheel" ]; then pip install "$wheel"; \
           else pip install --index-url https://download.pytorch.org/whl/cpu "$torch_requirement"; fi ;; \
      *) echo "TORCH_VARIANT must be cuda, cpu or a PyTorch CUDA index (e.g. cu126), not '$TORCH_VARIANT'" >&2; \
         exit 1 ;; \
    esac
COPY pyproject.toml README.md CHANGES.md /src/
COPY bids_deepwmh /src/bids_deepwmh
RUN pip install /src \
 && python -c "import sys, torch; cpu = '+cpu' in torch.__version__; \
sys.exit(0 if cpu == ('$TORCH_VARIANT' == 'cpu') else f'torch {torch.__version__} is not the $TORCH_VARIANT variant')"
# The template files the package requests, into a TemplateFlow home outside $HOME.
RUN set -e; case "$TEMPLATEFLOW_SOURCE" in \
      download) source_home="$(mktemp -d)/templateflow" ;; \
      build-context) source_home=/build/container/templateflow; \
           [ -d "$source_home/tpl-MNI152NLin2009cAsym" ] || { echo "TEMPLATEFLOW_SOURCE=build-context:" \
           "copy a TemplateFlow home with tpl-MNI152NLin2009cAsym into container/templateflow/" >&2; exit 1; } ;; \
      *) echo "TEMPLATEFLOW_SOURCE must be download or build-context, not '$TEMPLATEFLOW_SOURCE'" >&2; exit 1 ;; \
    esac; \
    python /build/container/install_templates.py --source "$source_home" --dest /opt/templateflow \
 && chmod -R a+rX /opt/templateflow
# HD-BET and the bundled network converted for ONNX Runtime (the CPU's) once, here, not at every run.
RUN DEEPWMH_CACHE=/opt/deepwmh-cache python -c "from bids_deepwmh.utils.onnx_models import convert_shipped_networks; convert_shipped_networks()" \
 && chmod -R a+rX /opt/deepwmh-cache

FROM base
ARG TORCH_VARIANT=cuda
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/templateflow /opt/templateflow
COPY --from=build /opt/deepwmh-cache /opt/deepwmh-cache
COPY container/entrypoint.sh /usr/local/bin/deepwmh-entrypoint
# Nothing is written inside the image at run time: no bytecode, no TemplateFlow updates, no
# Nipype version check; caches go to a temporary home when $HOME is not writable (entrypoint).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    DEEPWMH_CACHE=/opt/deepwmh-cache \
    NIPYPE_NO_ET=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    DEEPWMH_CONTAINER=docker
LABEL org.opencontainers.image.title="bids-deepwmh" \
      org.opencontainers.image.description="Annotation-free white matter hyperintensity segmentation of FLAIR MRI (BIDS App); torch ${TORCH_VARIANT}" \
      org.opencontainers.image.source="https://github.com/bids-deepwmh/bids-deepwmh" \
      org.opencontainers.image.licenses="Apache-2.0"
# The default work folder (-w work) lands in /tmp, writable where the image is read-only.
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/deepwmh-entrypoint"]
CMD ["--help"]
