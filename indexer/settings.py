"""One settings object, from `PIXDEX_*` environment variables; CLI flags override fields."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_path, user_data_path
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PILLOW_MAX_PIXELS = 2 * 89_478_485  # Pillow refuses larger images (DecompressionBombError) in Image.open


def default_catalog() -> str:
    return f"sqlite:///{user_data_path('pixdex') / 'catalog.db'}"


class ImageLimits(BaseModel):
    """What the decoder refuses; each refusal becomes a FAILED record saying which limit."""

    max_bytes: int = 50 * 1024 * 1024
    # checked per decode from the header; at most Pillow's own ceiling, which pixdex does not change
    # (2x PIL.Image.MAX_IMAGE_PIXELS: 178,956,970 pixels)
    max_pixels: int = Field(default=150_000_000, ge=1, le=PILLOW_MAX_PIXELS)
    min_side: int = 32
    max_aspect: float = 20.0  # long side / short side: a 360-degree panorama is 8:1 to 12:1
    # JPEG structure, read before decoding: a progressive JPEG costs a pass over all its pixels per
    # scan (encoders write about 10), and every segment costs a little; thousands are a cost bomb
    max_scans: int = 100
    max_segments: int = 2000
    decode_seconds: float = 10.0  # one image's decode, checked as Pillow reads the bytes


class ModelSettings(BaseModel):
    # "efficientnet-lite0" or the path of a TorchScript file (bring your own model)
    name: str = "efficientnet-lite0"
    labels: Path | None = None  # labels file for a TorchScript model
    input_size: int = 224  # square input side for a TorchScript model
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch intra-op threads on CPU (None: torch's default)
    faces: bool = True  # the face detector (person, people, portrait...): PIXDEX_FACES=false turns it off
    top_k: int = 5  # classes kept per image
    # parent concepts kept per image at or above this; big concepts (animal: 398 classes) collect
    # a few percent from tiny class probabilities, which is noise to a person searching "animal"
    min_concept_confidence: float = 0.15
    runtime: str = "auto"  # auto | eager | channels_last | compiled (indexer.model.runtimes)
    compiled: Path = Field(default_factory=lambda: user_cache_path("pixdex") / "compiled")  # compiled packages


class OpenSearchSettings(BaseModel):
    """How to reach OpenSearch when PIXDEX_CATALOG is an http(s) URL (PIXDEX_OPENSEARCH__*)."""

    user: str | None = None  # basic auth (fine-grained access control's internal users)
    password: SecretStr | None = None
    ca_bundle: Path | None = None  # PEM file to verify the server's certificate against
    verify_certs: bool = True
    aws_service: Literal["es", "aoss"] | None = None  # SigV4: Amazon OpenSearch Service / Serverless
    aws_region: str | None = None  # default: the AWS SDK's region
    refresh: Literal["wait_for"] | bool = "wait_for"  # after writes: searchable when they return; false: bulk loads
    embedding_dim: int = 1280  # the knn_vector size: the default model's embedding

    def basic_auth(self) -> tuple[str, str] | None:
        if not self.user:
            return None
        return self.user, self.password.get_secret_value() if self.password else ""

    def tls_verify(self) -> str | bool:
        """What requests' `verify` takes: the CA bundle's path, or whether to check certificates."""
        return str(self.ca_bundle) if self.ca_bundle else self.verify_certs


class AwsSettings(BaseModel):
    """Credentials and region for pixdex's own AWS clients (PIXDEX_AWS__*), for a caller that must not
    change the process's environment (`pixdex stack`). Unset: boto3's chain (AWS_* variables,
    profiles, instance and task roles), which is what deployments use."""

    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    region: str | None = None

    def session_kwargs(self) -> dict[str, str]:
        """What boto3.session.Session takes, for the fields that are set."""
        out = {"aws_access_key_id": self.access_key_id, "region_name": self.region,
               "aws_secret_access_key": self.secret_access_key.get_secret_value() if self.secret_access_key else None}
        return {k: v for k, v in out.items() if v}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIXDEX_", env_nested_delimiter="__", extra="ignore")

    catalog: str = Field(default_factory=default_catalog)
    index: str = "pixdex-images"
    model: str = "efficientnet-lite0"
    model_labels: Path | None = None
    model_input_size: int = 224
    device: str = "auto"
    batch_size: int = 16
    decode_workers: int = Field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    model_threads: int | None = None  # torch threads on CPU; default: torch's choice (all cores)
    model_runtime: str = "auto"  # auto | eager | channels_last | compiled (indexer.model.runtimes)
    model_compiled: Path = Field(default_factory=lambda: user_cache_path("pixdex") / "compiled")
    faces: bool = True  # detect faces (person, people, portrait, group); needs facenet-pytorch's weight files
    limits: ImageLimits = ImageLimits()
    # S3-compatible endpoint (MinIO, an emulator); unset: boto3's AWS_ENDPOINT_URL, else AWS itself
    s3_endpoint: str | None = None
    aws_max_attempts: int = 5  # botocore adaptive retries per request (throttling, 5xx, connection)
    aws: AwsSettings = AwsSettings()
    opensearch: OpenSearchSettings = OpenSearchSettings()
    # the app's thumbnails and previews, made once per image version (PIXDEX_THUMBNAILS)
    thumbnails: Path = Field(default_factory=lambda: user_cache_path("pixdex") / "thumbnails")
    # where the app's uploads go: s3://bucket/prefix/ (the bucket's events index them), else this folder
    upload_bucket: str | None = None
    uploads: Path = Field(default_factory=lambda: user_data_path("pixdex") / "uploads")
    # images submitted by URL (indexer.sources.remote): time limit, and "host:port" pairs exempt from the
    # public-address rule (a private deployment's own servers), as JSON: PIXDEX_URL_ALLOW='["cdn.lan:80"]'
    url_timeout: float = 10.0
    url_allow: list[str] = []

    def upload_uri(self, folder: str, name: str = "") -> str:
        """`s3://bucket/prefix/<folder>/<name>` under PIXDEX_UPLOAD_BUCKET: the API keeps its images in
        `api/`, the app in `uploads/`."""
        return f"{(self.upload_bucket or '').rstrip('/')}/{folder}/{name}"

    def model_settings(self) -> ModelSettings:
        return ModelSettings(
            name=self.model, labels=self.model_labels, input_size=self.model_input_size, device=self.device,
            threads=self.model_threads, faces=self.faces, runtime=self.model_runtime, compiled=self.model_compiled,
        )
