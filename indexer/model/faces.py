"""Face detection: MTCNN (Zhang et al. 2016), a cascade of three small CNNs, in plain PyTorch.

P-Net slides a 12x12 window over an image pyramid and keeps the windows it finds face-like; R-Net
rescores 24x24 crops of those and O-Net 48x48 crops of the survivors. Each stage regresses the box,
squares it, and merges overlaps by non-maximum suppression (NMS). The weights are the state dicts
that the `facenet-pytorch` 2.6.0 wheel ships in `facenet_pytorch/data/` (MIT; ported from the
authors' models). Only those files are read: that package's code needs torchvision, which pixdex
does not install, so it is located with `find_spec` and never imported.

Speed: the detector runs on every indexed image, on CPU, and must cost less than the classifier.
It looks at a copy whose longest side is `work_size` (faces under `min_face` px of that copy are
not looked for); images of one working shape share a pyramid; P-Net reads the small levels of
every image of a call as one canvas (one pass, not one per level and shape: `_Canvas`); crops come
from `grid_sample` on the pyramid level nearest each crop's scale (no per-crop resize); R-Net and
O-Net run over the crops of every image of a call at once, all in channels-last layout; NMS is
batched per image.
As in labeller.py, torch is imported where a net is built or run: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
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
WORK_SIZE = 416  # longest side of the copy detected on (8.5 ms a photo at batch 16, the int8 classifier 12.3: README)
THRESHOLDS = (0.6, 0.7, 0.7)  # P-, R- and O-Net score cut-offs (facenet-pytorch's)
FACTOR = 0.709  # pyramid step: each level 0.709x the last (the paper's, ~1/sqrt(2))
NMS_BLOCK = 256  # boxes compared at once by batched_nms(): its memory and work go as NMS_BLOCK**2 per block
PACK_PIXELS = 100_000  # a P-Net level of this many pixels over a call's images runs alone; the smaller share a canvas
CANVAS_PIXELS = 150_000  # levels' pixels a shared canvas holds: its activations stay in cache
PNET_PIXELS = 1_000_000  # level pixels per P-Net pass: fewer, larger passes thread better on two cores
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
                 thresholds: tuple[float, float, float] = THRESHOLDS,
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
        """The weights and what decides which faces are found: the working size, the smallest face
        and the three nets' score cut-offs (the defaults leave them out: mtcnn@<hash>-416px-min20)."""
        self.load()
        cuts = "" if self.thresholds == THRESHOLDS else "-t" + ",".join(f"{t:g}" for t in self.thresholds)
        return f"{self.name}@{self.weights_hash}-{self.work_size}px-min{self.min_face}{cuts}"

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
            except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
                why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
                raise ModelError(f"face detector: {path} is not MTCNN weights ({why}); reinstall with `{INSTALL}`") \
                    from exc
            digest.update(path.read_bytes())
            _take_raw_pixels(net.conv1)
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
        works = [self._work_copy(img) for img in images]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, x in enumerate(works):
            by_shape.setdefault((x.shape[2], x.shape[3]), []).append(i)
        # (torch.cat of one-image channels-last tensors gives the default layout: resizing and the float
        # copies of that run 3-10x slower, so the stack is put back)
        pyramids = [_Pyramid(torch.cat([works[i] for i in members]).contiguous(memory_format=torch.channels_last),
                             members, self.min_face)
                    for members in by_shape.values()]
        home = {i: (pyr, j) for pyr in pyramids for j, i in enumerate(pyr.members)}  # image -> its pyramid, row

        # Stage 1: P-Net over every pyramid's levels (large ones by shape, the small ones of all together).
        boxes, scores, owner = _propose(pyramids, pnet, t1)

        # Stages 2 and 3: rescore crops of every image at once, regress, merge.
        for net, size, threshold in ((rnet, 24, t2), (onet, 48, t3)):
            if len(boxes) == 0:
                break
            order = torch.argsort(owner, stable=True)
            boxes, scores, owner = boxes[order], scores[order], owner[order]
            counts = torch.bincount(owner, minlength=len(images)).tolist()
            crops = torch.cat([home[i][0].crops(b, home[i][1], size)
                               for i, b in enumerate(torch.split(boxes, counts)) if len(b)])
            reg, prob = _run(net, crops)
            keep = prob > threshold
            boxes, scores, owner, reg = boxes[keep], prob[keep], owner[keep], reg[keep]
            if net is rnet:  # merge, then regress and square for O-Net
                pick = batched_nms(boxes, scores, owner, 0.7, "union")
                boxes, scores, owner = _square(_regress(boxes[pick], reg[pick])), scores[pick], owner[pick]
            else:  # regress, then merge with the 'Min' overlap: a box mostly inside a better one goes
                boxes = _regress(boxes, reg)
                pick = batched_nms(boxes, scores, owner, 0.7, "min")
                boxes, scores, owner = boxes[pick], scores[pick], owner[pick]

        out: list[list[Face]] = [[] for _ in images]
        boxes, scores, owner = boxes.float().cpu().numpy(), scores.float().cpu().numpy(), owner.cpu().numpy()
        for k in np.argsort(-scores, kind="stable"):
            i = int(owner[k])
            height, width = images[i].shape[:2]
            pyr = home[i][0]
            sx, sy = width / pyr.w, height / pyr.h
            x1, y1, x2, y2 = boxes[k].tolist()
            x1, x2 = max(0.0, x1 * sx), min(float(width), x2 * sx)
            y1, y2 = max(0.0, y1 * sy), min(float(height), y2 * sy)
            if x2 > x1 and y2 > y1:
                out[i].append(Face((x1, y1, x2, y2), float(scores[k])))
        return out

    def _work_copy(self, img: np.ndarray) -> torch.Tensor:
        """(1, 3, h, w): the image with its longest side brought down to work_size (antialiased)."""
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
        return x.contiguous(memory_format=torch.channels_last)  # the fast layout for the levels' resizing


class _Pyramid:
    """The working copies of images of one shape, stacked, and their scaled levels (made on first
    use). Boxes are in working-copy pixels; `members` are the images' indices in the call."""

    def __init__(self, work: torch.Tensor, members: list[int], min_face: int) -> None:
        self.work = work  # (n, 3, h, w); uint8 on CPU
        self.members = members
        self.h, self.w = work.shape[2], work.shape[3]
        # P-Net scales (facenet-pytorch's): a face of min_face px becomes 12 px, then steps of FACTOR
        # while the short side keeps >= 12 px
        self.pnet_scales: list[float] = []
        scale = 12.0 / min_face
        while min(self.h, self.w) * scale >= 12:
            self.pnet_scales.append(scale)
            scale *= FACTOR
        # levels to crop from: those, and steps above them up to the working copy itself
        up, scale = [], 12.0 / min_face / FACTOR
        while scale < 1.0:
            up.append(scale)
            scale /= FACTOR
        self.crop_scales = sorted({1.0, *(s for s in self.pnet_scales if s < 1.0), *up})
        self._levels: dict[float, torch.Tensor] = {}

    def level(self, scale: float) -> torch.Tensor:
        """The images at `scale` of the working copy: (n, 3, lh, lw) float in [0, 255], channels-last."""
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

    def crops(self, boxes: torch.Tensor, row: int, size: int) -> torch.Tensor:
        """(n, 3, size, size) crops of `boxes` of image `row`, black outside the image. Each box is
        sampled bilinearly from the level where it is nearest `size` px (and not smaller), so the
        bilinear sampling never skips pixels: about an area resize, at one `grid_sample` per level."""
        import torch
        import torch.nn.functional as F

        n = len(boxes)
        out = torch.empty(n, 3, size, size, device=boxes.device)
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
            level = self.level(self.crop_scales[k])[row:row + 1]
            sampled = F.grid_sample(level, g, mode="bilinear", padding_mode="zeros", align_corners=False)
            out[sel] = sampled.reshape(3, len(sel), size, size).transpose(0, 1)
        return out


def _propose(pyramids: list[_Pyramid], pnet: torch.nn.Module,
             threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """P-Net windows scoring >= threshold over the pyramids of a call, merged within each image's
    level, then across its levels, then regressed and squared: (k, 4) boxes in the working-copy
    pixels of their image, (k,) scores, (k,) owners (image indices in the call).

    A level of PACK_PIXELS or more (over its pyramid's images) is a pass of its own, its images
    together. Every smaller level of every image is laid into shared canvases (`_Canvas`), so P-Net
    runs once over them instead of once per level and shape: such a pass is mostly per-operator
    overhead (the whole detector: 0.85x at one image a call, 0.74x at a batch of 16 of mixed shapes).
    A canvas holds CANVAS_PIXELS of levels: P-Net over a larger one leaves the cache and runs slower."""
    import torch

    device = pyramids[0].work.device
    depth = max(len(pyr.pnet_scales) for pyr in pyramids)  # group = image * depth + level
    boxes, scores, regs, groups = [], [], [], []

    def windows(prob, reg, js, ys, xs, x0, y0, sx, sy, owner, level) -> None:
        """The 12x12 windows of cells (y, x), each at (2(y - y0), 2(x - x0)) of its level."""
        x, y = ((xs - x0) * 2).to(prob.dtype), ((ys - y0) * 2).to(prob.dtype)
        boxes.append(torch.stack([x / sx, y / sy, (x + 12) / sx, (y + 12) / sy], dim=1))
        scores.append(prob[js, ys, xs])
        regs.append(reg[js, ys, xs])
        groups.append(owner * depth + level)

    shared = []  # (one image's level (1, 3, h, w), its pyramid, the image's row, the level's index)
    for pyr in pyramids:
        members = torch.tensor(pyr.members, device=device)
        for li, scale in enumerate(pyr.pnet_scales):
            level = pyr.level(scale)
            h, w = level.shape[2], level.shape[3]
            if len(pyr.members) * h * w < PACK_PIXELS:
                shared += [(level[row:row + 1], pyr, row, li) for row in range(len(pyr.members))]
                continue
            step = max(1, PNET_PIXELS // (h * w))  # images a pass: bounds the activations' memory
            for first in range(0, len(pyr.members), step):
                reg, prob = pnet(level[first:first + step])
                js, ys, xs = torch.nonzero(prob >= threshold, as_tuple=True)
                windows(prob, reg, js, ys, xs, 0, 0, w / pyr.w, h / pyr.h, members[js + first], li)
    shared.sort(key=lambda e: -e[0].shape[2])  # the tallest first: they set a canvas's height
    while shared:
        take, area = 0, 0  # a canvas of at most CANVAS_PIXELS (and at least one level)
        while take < len(shared) and (take == 0 or area + _pixels(shared[take][0]) <= CANVAS_PIXELS):
            area += _pixels(shared[take][0])
            take += 1
        chunk, shared = shared[:take], shared[take:]
        canvas = _Canvas([(e[0].shape[2], e[0].shape[3]) for e in chunk], device)
        reg, prob = pnet(canvas.fill([e[0] for e in chunk]), canvas.edges)
        js, ys, xs = torch.nonzero((prob >= threshold) & (canvas.cells >= 0), as_tuple=True)
        ei = canvas.cells[ys, xs]  # each window's entry of the canvas: per entry, where and what it is
        at = torch.tensor([[oy // 2, ox // 2, e[1].members[e[2]], e[3]]
                           for e, (oy, ox) in zip(chunk, canvas.offsets, strict=True)], device=device)[ei]
        scale = torch.tensor([[e[0].shape[3] / e[1].w, e[0].shape[2] / e[1].h] for e in chunk],
                             device=device, dtype=prob.dtype)[ei]
        windows(prob, reg, js, ys, xs, at[:, 1], at[:, 0], scale[:, 0], scale[:, 1], at[:, 2], at[:, 3])
    if not boxes:
        return (torch.zeros(0, 4, device=device), torch.zeros(0, device=device),
                torch.zeros(0, dtype=torch.long, device=device))
    b, s, r, g = torch.cat(boxes), torch.cat(scores), torch.cat(regs), torch.cat(groups)
    pick = batched_nms(b, s, g, 0.5, "union")  # within each image's level
    b, s, r, owner = b[pick], s[pick], r[pick], g[pick] // depth
    pick = batched_nms(b, s, owner, 0.7, "union")  # across an image's levels
    return _square(_regress(b[pick], r[pick])), s[pick], owner[pick]


class _Canvas:
    """Where each pyramid level (of any image) goes in one image for P-Net: columns of levels, the
    tallest first, at even offsets (P-Net's cells are every second pixel, so a level's cells are the
    ones it has alone), each slot one even row and column larger than its level, so that the last
    window of an odd-sized level (P-Net pools with ceil_mode) never reads the next level. `edges`:
    the conv1 outputs over that black edge, which P-Net sets to -inf before its pool, so that the
    pool sees what it sees on the level alone (where ceil_mode leaves them out). `cells[y, x]` is
    the level whose window P-Net's output cell (y, x) is wholly on (as it would be on that level
    alone), or -1."""

    def __init__(self, sizes: list[tuple[int, int]], device: torch.device) -> None:
        import torch

        def slot(n: int) -> int:
            return n + 2 - n % 2  # the next even number above n
        self.height = slot(sizes[0][0])
        columns: list[list[int]] = []  # [x, width, rows used]
        self.offsets: list[tuple[int, int]] = []
        for h, w in sizes:
            sh, sw = slot(h), slot(w)
            column = next((c for c in columns if c[1] >= sw and c[2] + sh <= self.height), None)
            if column is None:
                column = [sum(c[1] for c in columns), sw, 0]
                columns.append(column)
            self.offsets.append((column[2], column[0]))
            column[2] += sh
        self.width = sum(c[1] for c in columns)
        self.sizes = sizes
        self.cells = torch.full((_pnet_cells(self.height), _pnet_cells(self.width)), -1, dtype=torch.long,
                                device=device)
        ys, xs = [], []
        for i, ((h, w), (oy, ox)) in enumerate(zip(sizes, self.offsets, strict=True)):
            self.cells[oy // 2:oy // 2 + _pnet_cells(h), ox // 2:ox // 2 + _pnet_cells(w)] = i
            # an odd level's last 2x2 pool holds one row (column) of its conv1 outputs alone; on the
            # canvas its partner is the conv1 output over the slot's black edge, which must not count
            if w % 2:
                ys.append(torch.arange(oy, oy + h - 1))
                xs.append(torch.full((h - 1,), ox + w - 2))
            if h % 2:
                ys.append(torch.full((w - 1,), oy + h - 2))
                xs.append(torch.arange(ox, ox + w - 1))
        self.edges = (torch.cat(ys).to(device), torch.cat(xs).to(device)) if ys else None
        self.device = device

    def fill(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """(n, 3, height, width) channels-last float: the n images' levels in their places, black between."""
        import torch

        n = levels[0].shape[0]
        out = torch.zeros(n, 3, self.height, self.width, device=self.device).contiguous(
            memory_format=torch.channels_last)
        for level, (h, w), (oy, ox) in zip(levels, self.sizes, self.offsets, strict=True):
            out[:, :, oy:oy + h, ox:ox + w] = level
        return out


def _pixels(level: torch.Tensor) -> int:
    return level.shape[2] * level.shape[3]


def _pnet_cells(n: int) -> int:
    """P-Net's output cells along a side of n pixels: 3x3 convolution, 2x2 max pool (ceil), two 3x3."""
    return max(0, (n - 2 + 1) // 2 - 4)


def _take_raw_pixels(conv: torch.nn.Conv2d) -> None:
    """Fold MTCNN's input normalisation, (x - 127.5) * 0.0078125, into the first convolution, so the
    nets take pixels in [0, 255] and no pass over the pyramid or the crops is spent on it. Exact:
    these convolutions have no padding, and black outside a crop is 0 before normalising, as in MTCNN."""
    import torch

    with torch.no_grad():
        conv.bias -= 127.5 * 0.0078125 * conv.weight.sum(dim=(1, 2, 3))
        conv.weight *= 0.0078125


def _run(net: torch.nn.Module, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A net over crops in [0, 255], CHUNK[size] at a time, channels-last (2-3x faster on CPU for these
    few-channel convolutions): (n, 4) box regression, (n,) face probability."""
    import torch

    regs, probs = [], []
    chunk = CHUNK[crops.shape[-1]]
    for i in range(0, len(crops), chunk):
        reg, prob = net(crops[i:i + chunk].contiguous(memory_format=torch.channels_last))
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
    """Greedy NMS of one set of boxes: indices of the boxes kept, best score first. A box goes when it
    overlaps a kept, better-scoring box by more than `threshold` ('union': IoU; 'min': over the smaller box)."""
    import torch

    return batched_nms(boxes, scores, torch.zeros(len(boxes), dtype=torch.long, device=boxes.device), threshold, mode)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float,
                mode: str = "union") -> torch.Tensor:
    """nms() within each group (an image, or an image's pyramid level), never across: indices of the
    boxes kept, by group, then best score first.

    Exact, and without a Python loop per box or per group: the boxes, sorted by group and then score,
    are taken NMS_BLOCK at a time. A block first loses what its first group's boxes kept in earlier
    blocks suppress (only that group can span blocks), then solves its own greedy pass as the fixed
    point of keep[j] = alive[j] and no kept i < j of j's group overlaps j: each round settles at
    least the next box, and real boxes settle in a few rounds."""
    import torch

    n = len(boxes)
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]
    ordered, owner = boxes[order], groups[order]
    kept: list[torch.Tensor] = []
    for start in range(0, n, NMS_BLOCK):
        block, group = ordered[start:start + NMS_BLOCK], owner[start:start + NMS_BLOCK]
        alive = torch.ones(len(block), dtype=torch.bool, device=boxes.device)
        if kept:
            prior = torch.cat(kept)
            prior = prior[owner[prior] == group[0]]
            if len(prior):
                alive &= ~((_overlap(ordered[prior], block, mode) > threshold).any(dim=0) & (group == group[0]))
        beats = (_overlap(block, block, mode) > threshold).triu(diagonal=1)
        beats &= (group[:, None] == group[None, :]) & alive[:, None]
        keep = alive
        while True:
            again = alive & ~(beats & keep[:, None]).any(dim=0)
            if torch.equal(again, keep):
                break
            keep = again
        kept.append(torch.nonzero(keep).squeeze(1) + start)
    return order[torch.cat(kept)]


def _max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """max_pool2d(x, 2, 2, ceil_mode=True) as three in-place maxima of strided views: the same
    numbers, ~2.5x faster on channels-last tensors of few channels (P-Net's 10) than the ATen kernel."""
    import torch

    out = x[:, :, 0::2, 0::2].contiguous(memory_format=torch.channels_last)
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        part = x[:, :, dy::2, dx::2]
        view = out[:, :, :part.shape[2], :part.shape[3]]  # an odd last row or column has no partner
        torch.max(view, part, out=view)
    return out


@cache
def _classes() -> tuple[type, type, type]:
    """The three nets, with the layer names of the state dicts (conv1, prelu1, ..., dense6_3)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class PNet(nn.Module):
        """12x12 windows, fully convolutional: (regression (N, h, w, 4), face probability (N, h, w))."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
            self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
            self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
            self.conv4_1 = nn.Conv2d(32, 2, 1)
            self.conv4_2 = nn.Conv2d(32, 4, 1)

        def forward(self, x, edges=None):
            x = self.prelu1(self.conv1(x))
            if edges is not None:  # a canvas: what ceil_mode pools alone at an odd level's last row/column
                x[:, :, edges[0], edges[1]] = float("-inf")
            x = _max_pool_2x2(x)
            x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
            # both 1x1 heads as one matrix product over the channels-last pixels: (N, h, w, 6)
            weight = torch.cat([self.conv4_2.weight, self.conv4_1.weight]).flatten(1)
            out = F.linear(x.permute(0, 2, 3, 1), weight, torch.cat([self.conv4_2.bias, self.conv4_1.bias]))
            return out[..., :4], torch.sigmoid(out[..., 5] - out[..., 4])  # softmax of two = sigmoid of the difference

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
