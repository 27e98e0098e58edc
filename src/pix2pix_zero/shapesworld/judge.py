"""The ShapesWorld judge: a small CNN that reads a rendered 64x64 scene (background, object count,
shapes and colours present). `bench quality` uses it to score edits; the workshop trains it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from . import world as W

JUDGE_CONFIG = dict(
    channels=(32, 64, 128, 128),
    shapes=list(W.SHAPES),
    colors=list(W.COLORS),
    backgrounds=list(W.BG_COLORS),
)


class Judge(nn.Module):
    """Small CNN that reads a 64x64 ShapesWorld image.

    Heads: background colour (softmax), number of objects (1 or 2, softmax),
    shapes present and object colours present (sigmoid, multi-label)."""

    def __init__(self, channels=(32, 64, 128), shapes=W.SHAPES, colors=W.COLORS, backgrounds=W.BG_COLORS):
        super().__init__()
        self.shapes, self.colors, self.backgrounds = list(shapes), list(colors), list(backgrounds)
        layers, cin = [], 3
        for c in channels:
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.SiLU(), nn.MaxPool2d(2)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.maxpool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(2 * cin, len(self.backgrounds) + 2 + len(self.shapes) + len(self.colors))

    def config(self) -> dict:
        chans = [m.out_channels for m in self.features if isinstance(m, nn.Conv2d)]
        return dict(channels=chans, shapes=self.shapes, colors=self.colors, backgrounds=self.backgrounds)

    def forward(self, x: torch.Tensor) -> dict:
        """``x``: float (B, 3, 64, 64) in [-1, 1]."""
        h = self.features(x)
        h = torch.cat([self.pool(h), self.maxpool(h)], 1).flatten(1)
        o = self.head(h)
        nb, ns = len(self.backgrounds), len(self.shapes)
        return {
            "background": o[:, :nb],
            "count": o[:, nb : nb + 2],
            "shapes": o[:, nb + 2 : nb + 2 + ns],
            "colors": o[:, nb + 2 + ns :],
        }

    @torch.no_grad()
    def predict(self, images) -> list[dict]:
        """Predictions for uint8 HxWx3 arrays / PIL images / a (B,3,H,W) tensor in [-1,1]."""
        x = images if torch.is_tensor(images) else images_to_tensor(images)
        out = self(x.to(next(self.parameters()).device, torch.float32))
        res = []
        for i in range(x.shape[0]):
            n = int(out["count"][i].argmax()) + 1
            res.append(
                {
                    "background": self.backgrounds[int(out["background"][i].argmax())],
                    "count": n,
                    "shapes": _label_set(out["shapes"][i], self.shapes, n),
                    "colors": _label_set(out["colors"][i], self.colors, n),
                    "shape_probs": torch.sigmoid(out["shapes"][i]).tolist(),
                    "color_probs": torch.sigmoid(out["colors"][i]).tolist(),
                }
            )
        return res

    def save(self, folder) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.config(), indent=2))
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(folder / "model.safetensors")
        )

    @classmethod
    def load(cls, folder, device="cpu") -> Judge:
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        m = cls(**cfg)
        sd = {
            k: v.float() if v.is_floating_point() else v
            for k, v in load_file(str(folder / "model.safetensors")).items()
        }
        m.load_state_dict(sd)
        return m.to(device).eval()


def _label_set(logits: torch.Tensor, names, k: int) -> list:
    """Sorted distinct labels with probability > 0.5 (at least the best one, at most ``k``)."""
    order = logits.argsort(descending=True).tolist()
    chosen = [j for j in order[:k] if logits[j] > 0] or order[:1]
    return sorted(names[j] for j in chosen)


def images_to_tensor(images) -> torch.Tensor:
    """uint8 HxWx3 arrays or PIL images -> float tensor (B, 3, H, W) in [-1, 1]."""
    import numpy as np

    arr = np.stack([np.asarray(im.convert("RGB") if hasattr(im, "convert") else im) for im in images], 0)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_uint8(x: torch.Tensor):
    """(B,3,H,W) in [-1,1] -> uint8 numpy (B,H,W,3)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
