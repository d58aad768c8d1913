# bids-deepwmh: CPU everywhere, the GPU when one is present (CUDA runtime base).
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    NIPYPE_NO_ET=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    DEEPWMH_CONTAINER=docker

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md CHANGES.md ./
COPY bids_deepwmh ./bids_deepwmh
RUN pip install --upgrade pip && pip install . && rm -rf /src

# Fetch the template files at build time, into a TemplateFlow home outside $HOME.
RUN python -c "from templateflow import api; \
[api.get('MNI152NLin2009cAsym', resolution=r, suffix=s, **e) \
 for r in (1, 2) \
 for s, e in (('T1w', {'desc': 'brain'}), ('mask', {'desc': 'brain'}), ('probseg', {'atlas': None}), ('dseg', {'atlas': None}))]" \
 && chmod -R a+rX $TEMPLATEFLOW_HOME

WORKDIR /work
ENTRYPOINT ["deepwmh"]
CMD ["--help"]
