"""Face detection: MTCNN (Zhang et al. 2016), a cascade of three small CNNs, in plain PyTorch.

P-Net slides a 12x12 window over an image pyramid and keeps the windows it finds face-like; R-Net
rescores 24x24 crops of those and O-Net 48x48 crops of the survivors. Each stage regresses the box,
squares it, and merges overlaps by non-maximum suppression (NMS). The weights are the state dicts
that the `facenet-pytorch` 2.6.0 wheel ships in `facenet_pytorch/data/` (MIT; ported from the
authors' models). Only those files are read: that package's code needs torchvision, which pixdex
does not install, so it is located with `find_spec` and never imported.

Speed: the detector runs on every indexed image, on CPU, and must cost less than the classifier.
It looks at a copy whose longest side is `work_size` (faces under `min_face` px of that copy are
not looked for), crops with `grid_sample` from the pyramid level nearest the crop's scale (so no
per-crop resize), and batches R-Net and O-Net over every image of a call. As in labeller.py, torch
is imported where the model is built or run, so importing this module costs nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer.errors import ModelError

if TYPE_CHECKING:
    import torch

WEIGHTS_PACKAGE = "facenet_pytorch"
WEIGHT_FILES = ("pnet.pt", "rnet.pt", "onet.pt")
INSTALL = "pip install --no-deps facenet-pytorch==2.6.0"
WORK_SIZE = 480  # longest side of the copy detected on (see the module docstring and README)
FACTOR = 0.709  # pyramid step: each level 0.709x the last (the paper's, ~1/sqrt(2))
NMS_BLOCK = 1024  # boxes compared at once by nms(): bounds its memory to NMS_BLOCK**2 booleans
CHUNK = {24: 128, 48: 32}  # crops per R-Net / O-Net pass: activations that stay in cache run fastest on CPU


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the pixels of the image given
    score: float  # O-Net probability


def default_weights_dir() -> Path | None:
    """`facenet_pytorch/data` of the installed wheel, found without importing the package (its
    `__init__` imports torchvision); None when it is not installed."""
    try:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class FaceDetector:
    """MTCNN on uint8 RGB images of any sizes: `detect()` gives each image's faces, best first.

    `min_face` is in pixels of the working copy (longest side `work_size`, never enlarged);
    `thresholds` are the P-, R- and O-Net score cut-offs; `weights` a folder with pnet.pt, rnet.pt
    and onet.pt (default: facenet-pytorch's). Loading is lazy, under a lock, as for the labellers.
    """

    name = "mtcnn"

    def __init__(self, device: str = "auto", min_face: int = 20,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 weights: Path | None = None, work_size: int = WORK_SIZE) -> None:
        if min_face < 1 or work_size < 12 or len(thresholds) != 3:
            raise ValueError("min_face >= 1, work_size >= 12 and three thresholds, please")
        self.wanted_device = device
        self.min_face = min_face
        self.thresholds = tuple(float(t) for t in thresholds)
        self.weights = weights
        self.work_size = work_size
        self._lock = threading.Lock()
        self._nets: tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module] | None = None
        self.weights_hash = ""

    @property
    def model_id(self) -> str:
        self.load()
        return f"{self.name}@{self.weights_hash}"

    def load(self) -> None:
        """Read the three state dicts (once); a missing or unreadable file is a ModelError naming the fix."""
        with self._lock:
            if self._nets is None:
                self._load()

    def _load(self) -> None:
        import torch

        from indexer.model.labeller import pick_device

        folder = self.weights if self.weights is not None else default_weights_dir()
        paths = [folder / f for f in WEIGHT_FILES] if folder is not None else []
        if folder is None or not all(p.is_file() for p in paths):
            where = f"no {'/'.join(WEIGHT_FILES)} in {folder}" if folder is not None else "no facenet-pytorch"
            raise ModelError(f"face detector: the MTCNN weights are missing ({where}); install them with `{INSTALL}`")
        device = pick_device(self.wanted_device)
        nets = _networks()
        digest = hashlib.sha256()
        for net, path in zip(nets, paths, strict=True):
            try:
                net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
            except (OSError, RuntimeError, ValueError, EOFError) as exc:
                raise ModelError(f"face detector: {path} is not MTCNN weights ({exc}); reinstall with `{INSTALL}`") \
                    from exc
            digest.update(path.read_bytes())
            net.eval().to(device)
        self.device = device
        self.weights_hash = digest.hexdigest()[:12]
        self._nets = nets

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Faces of each (H, W, 3) uint8 RGB image, one list per image in order, best score first."""
        import torch

        for img in images:
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"detect() takes (H, W, 3) uint8 RGB images, not {img.dtype} {img.shape}")
        self.load()
        if not images:
            return []
        with torch.inference_mode():
            return self._detect(images)

    def _detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        import torch

        assert self._nets is not None
        pnet, rnet, onet = self._nets
        t1, t2, t3 = self.thresholds
        pyramids = [self._pyramid(img) for img in images]

        # Stage 1: P-Net on each pyramid level; NMS within the level, then across levels, per image.
        boxes, scores, owner = [], [], []
        for i, pyr in enumerate(pyramids):
            b, s = pyr.propose(pnet, t1)
            boxes.append(b)
            scores.append(s)
            owner.append(torch.full((len(b),), i, dtype=torch.long, device=b.device))
        boxes, scores, owner = torch.cat(boxes), torch.cat(scores), torch.cat(owner)

        # Stages 2 and 3: rescore crops of every image at once, regress, merge.
        for net, size, threshold, mode in ((rnet, 24, t2, "union"), (onet, 48, t3, "min")):
            if len(boxes) == 0:
                break
            crops = torch.cat([pyr.crops(boxes[owner == i], size) for i, pyr in enumerate(pyramids)])
            order = torch.cat([torch.nonzero(owner == i).squeeze(1) for i in range(len(pyramids))])
            boxes, scores, owner = boxes[order], scores[order], owner[order]
            reg, prob = _run(net, crops)
            keep = prob > threshold
            boxes, scores, owner, reg = boxes[keep], prob[keep], owner[keep], reg[keep]
            if mode == "union":  # R-Net: merge, then regress and square for O-Net
                pick = batched_nms(boxes, scores, owner, 0.7, "union")
                boxes, scores, owner = _square(_regress(boxes[pick], reg[pick])), scores[pick], owner[pick]
            else:  # O-Net: regress, then merge with the 'Min' overlap (a box inside another goes)
                boxes = _regress(boxes, reg)
                pick = batched_nms(boxes, scores, owner, 0.7, "min")
                boxes, scores, owner = boxes[pick], scores[pick], owner[pick]

        out: list[list[Face]] = [[] for _ in images]
        boxes, scores, owner = boxes.float().cpu().numpy(), scores.float().cpu().numpy(), owner.cpu().numpy()
        for k in np.argsort(-scores, kind="stable"):
            i = int(owner[k])
            pyr = pyramids[i]
            x1, y1, x2, y2 = (boxes[k] * pyr.to_given).tolist()
            x1, x2 = max(0.0, x1), min(float(pyr.given[1]), x2)
            y1, y2 = max(0.0, y1), min(float(pyr.given[0]), y2)
            if x2 > x1 and y2 > y1:
                out[i].append(Face((x1, y1, x2, y2), float(scores[k])))
        return out

    def _pyramid(self, img: np.ndarray) -> _Pyramid:
        import torch
        import torch.nn.functional as F

        height, width = img.shape[:2]
        if not img.flags.writeable:  # torch.from_numpy warns on read-only arrays (Pillow's); nothing writes here
            img = img.copy()
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)  # channels-last uint8
        if self.device.type != "cpu":
            x = x.to(self.device).float()  # uint8 resizing is a CPU fast path
        s = min(1.0, self.work_size / max(height, width))
        h, w = max(1, round(height * s)), max(1, round(width * s))
        if (h, w) != (height, width):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        return _Pyramid(x, self.min_face, (height, width))


class _Pyramid:
    """One image's working copy and its scaled levels (made on first use), in work pixels."""

    def __init__(self, work: torch.Tensor, min_face: int, given: tuple[int, int]) -> None:
        self.work = work  # (1, 3, h, w), uint8 on CPU
        self.h, self.w = work.shape[2:]
        self.given = given
        self.to_given = np.array([given[1] / self.w, given[0] / self.h] * 2, dtype=np.float32)
        # P-Net scales (facenet-pytorch's): a face of min_face px becomes 12 px, then steps of FACTOR
        # while the short side keeps >= 12 px
        self.pnet_scales: list[float] = []
        scale = 12.0 / min_face
        while min(self.h, self.w) * scale >= 12:
            self.pnet_scales.append(scale)
            scale *= FACTOR
        # levels to crop from: those, plus steps above them up to the working copy itself
        up = [12.0 / min_face / FACTOR ** k for k in range(1, 8)]
        self.crop_scales = sorted({1.0, *(s for s in self.pnet_scales + up if s < 1.0)})
        self._levels: dict[float, torch.Tensor] = {}

    def level(self, scale: float) -> torch.Tensor:
        """The image at `scale` of the working copy, float in [0, 255], (1, 3, lh, lw)."""
        import torch
        import torch.nn.functional as F

        if scale not in self._levels:
            if scale == 1.0:
                x = self.work
            else:  # facenet-pytorch's level size
                size = (int(self.h * scale + 1), int(self.w * scale + 1))
                x = F.interpolate(self.work, size=size, mode="bilinear", antialias=scale < 1, align_corners=False)
            self._levels[scale] = x.float().contiguous(memory_format=torch.channels_last)
        return self._levels[scale]

    def propose(self, pnet: torch.nn.Module, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net windows scoring >= threshold, regressed and squared: (n, 4) boxes, (n,) scores."""
        import torch

        boxes, scores, regs = [], [], []
        for scale in self.pnet_scales:
            level = self.level(scale)
            reg, prob = pnet((level - 127.5) * 0.0078125)
            ys, xs = torch.nonzero(prob[0] >= threshold, as_tuple=True)
            if len(ys) == 0:
                continue
            s, r = prob[0, ys, xs], reg[0, :, ys, xs].T
            sy, sx = level.shape[2] / self.h, level.shape[3] / self.w  # the level's true scale, per axis
            x, y = xs.to(level.dtype) * 2, ys.to(level.dtype) * 2  # cell (y, x): the 12x12 window at (2y, 2x)
            b = torch.stack([x / sx, y / sy, (x + 12) / sx, (y + 12) / sy], dim=1)
            pick = nms(b, s, 0.5, "union")
            boxes.append(b[pick])
            scores.append(s[pick])
            regs.append(r[pick])
        if not boxes:
            empty = torch.zeros(0, 4, device=self.work.device)
            return empty, empty[:, 0]
        b, s, r = torch.cat(boxes), torch.cat(scores), torch.cat(regs)
        pick = nms(b, s, 0.7, "union")
        return _square(_regress(b[pick], r[pick])), s[pick]

    def crops(self, boxes: torch.Tensor, size: int) -> torch.Tensor:
        """(n, 3, size, size) crops of `boxes` (work px), black outside the image. Each box is
        sampled bilinearly from the level where it is nearest `size` px (and not smaller), so the
        bilinear sampling never skips pixels: about an area resize, at one `grid_sample` per level."""
        import torch
        import torch.nn.functional as F

        n = len(boxes)
        out = torch.empty(n, 3, size, size, device=self.work.device)
        if n == 0:
            return out
        side = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1).clamp(min=1e-3)
        scales = torch.tensor(self.crop_scales, device=boxes.device, dtype=boxes.dtype)
        # the smallest level at least size/side of the working copy; the copy itself when none is
        which = torch.searchsorted(scales, (size / side).contiguous()).clamp(max=len(scales) - 1)
        t = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
        gx = (boxes[:, 0:1] + t * (boxes[:, 2:3] - boxes[:, 0:1])) * (2 / self.w) - 1  # (n, size)
        gy = (boxes[:, 1:2] + t * (boxes[:, 3:4] - boxes[:, 1:2])) * (2 / self.h) - 1
        grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (n, size, size, 2)
        for k in torch.unique(which).tolist():
            sel = torch.nonzero(which == k).squeeze(1)
            g = grid[sel].reshape(1, len(sel) * size, size, 2)
            sampled = F.grid_sample(self.level(self.crop_scales[k]), g, mode="bilinear",
                                    padding_mode="zeros", align_corners=False)
            out[sel] = sampled.reshape(3, len(sel), size, size).transpose(0, 1)
        return out


def _run(net: torch.nn.Module, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A net over crops in [0, 255], CHUNK[size] at a time, channels-last (2-3x faster on CPU for these
    few-channel convolutions): (n, 4) box regression, (n,) face probability."""
    import torch

    regs, probs = [], []
    chunk = CHUNK[crops.shape[-1]]
    for i in range(0, len(crops), chunk):
        x = ((crops[i:i + chunk] - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)
        reg, prob = net(x)
        regs.append(reg)
        probs.append(prob)
    return torch.cat(regs), torch.cat(probs)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Move each edge by its regression offset, a fraction of the box's width or height."""
    import torch

    wh = boxes[:, 2:] - boxes[:, :2]
    return boxes + reg * torch.cat([wh, wh], dim=1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """The square of the longer side around each box's centre (MTCNN's `rerec`): the nets take squares."""
    import torch

    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True) / 2
    return torch.cat([centre - half, centre + half], dim=1)


def _overlap(a: torch.Tensor, b: torch.Tensor, mode: str) -> torch.Tensor:
    """(len(a), len(b)) overlap of boxes: intersection over union, or over the smaller area ('min')."""
    import torch

    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    if mode == "min":
        denom = torch.minimum(area_a[:, None], area_b[None, :])
    elif mode == "union":
        denom = area_a[:, None] + area_b[None, :] - inter
    else:
        raise ValueError(f"overlap mode {mode!r}: 'union' or 'min'")
    return inter / denom.clamp(min=1e-12)


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union") -> torch.Tensor:
    """Greedy NMS: indices of the boxes kept, best score first. A box goes when it overlaps a kept,
    better-scoring box by more than `threshold` ('union': IoU; 'min': over the smaller box).

    Exact, without a Python loop per box: boxes are taken NMS_BLOCK at a time in score order; a
    block first loses the boxes that earlier blocks' kept boxes suppress, then solves its own
    greedy pass as the fixed point of keep[j] = alive[j] and no kept i < j overlaps j (each round
    settles at least the next box, and it ends in a few)."""
    import torch

    n = len(boxes)
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)
    ordered = boxes[order]
    kept: list[torch.Tensor] = []
    for start in range(0, n, NMS_BLOCK):
        block = ordered[start:start + NMS_BLOCK]
        alive = torch.ones(len(block), dtype=torch.bool, device=boxes.device)
        if kept:
            alive &= ~(_overlap(ordered[torch.cat(kept)], block, mode) > threshold).any(dim=0)
        beats = (_overlap(block, block, mode) > threshold).triu(diagonal=1) & alive[:, None]
        keep = alive
        while True:
            again = alive & ~(beats & keep[:, None]).any(dim=0)
            if torch.equal(again, keep):
                break
            keep = again
        kept.append(torch.nonzero(keep).squeeze(1) + start)
    return order[torch.cat(kept)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float,
                mode: str = "union") -> torch.Tensor:
    """nms() within each group (here: each image), never across: indices of the boxes kept."""
    import torch

    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    picks = []
    for g in torch.unique(groups).tolist():
        idx = torch.nonzero(groups == g).squeeze(1)
        picks.append(idx[nms(boxes[idx], scores[idx], threshold, mode)])
    return torch.cat(picks)


@cache
def _classes() -> tuple[type, type, type]:
    """The three nets, with the layer names of the state dicts (conv1, prelu1, ..., dense6_3)."""
    from torch import nn

    class PNet(nn.Module):
        """12x12 windows, fully convolutional: (regression (N, 4, h, w), face probability (N, h, w))."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
            self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
            self.conv4_1 = nn.Conv2d(32, 2, 1)
            self.conv4_2 = nn.Conv2d(32, 4, 1)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
            return self.conv4_2(x), self.conv4_1(x).softmax(dim=1)[:, 1]

    class RNet(nn.Module):
        """24x24 crops: (regression (N, 4), face probability (N,))."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
            self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
            self.dense5_1 = nn.Linear(128, 2)
            self.dense5_2 = nn.Linear(128, 4)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x))
            x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))  # the ported weights' (w, h, c) order
            return self.dense5_2(x), self.dense5_1(x).softmax(dim=1)[:, 1]

    class ONet(nn.Module):
        """48x48 crops: (regression (N, 4), face probability (N,)); its landmarks head (dense6_3) is loaded, unused."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1 = nn.Linear(256, 2)
            self.dense6_2 = nn.Linear(256, 4)
            self.dense6_3 = nn.Linear(256, 10)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
            return self.dense6_2(x), self.dense6_1(x).softmax(dim=1)[:, 1]

    return PNet, RNet, ONet


def _networks() -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    return tuple(cls() for cls in _classes())  # type: ignore[return-value]
