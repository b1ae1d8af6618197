"""SSBA, sample-specific invisible triggers (Li, Li, Wu, Li, He & Lyu, ICCV 2021, "Invisible Backdoor Attack
with Sample-Specific Triggers"; code yuezunli/ISSBA).

An image-steganography encoder hides a fixed secret string in every poisoned image: the trigger is the
encoder's residual, invisible and different for every image; poisoned images are relabelled to the target (a
dirty-label attack) and at test time encoding any image with the same secret pulls it to the target.

The original uses a StegaStamp encoder (Tancik et al. 2020: a U-Net encoder and a decoder with a spatial
transformer, 100 bits, L2, LPIPS and adversarial image losses and simulated distortions) trained by Li et al. on
ImageNet images; BackdoorBench ships CIFAR-10 images pre-encoded by it. Ours is trained by us, small, on the
attacker's own training images (`fit`: `fit_images` seeded images, `epochs` epochs of batches of 128, Adam 1e-3,
bf16 autocast where the hardware runs it natively): an encoder (the secret mapped by a linear layer to a 3x8x8 map,
upsampled to the image and concatenated with it into a `TinyUNet`, width 16 with skips; residual = tanh(raw) *
`max_residual`) and a decoder (three stride-2 convs, a 2x2 average pool, a linear layer) learn, with a random
secret per image, to hide and read `secret_bits` = 32 bits (binary cross-entropy), while an L2 loss on the residual
over its bound (weight `image_weight`, off for the first half of training, then ramped in: on from the start it
shrinks the residual to zero before any bit is learned) keeps it small. No perceptual or GAN loss, no distortion
layer. The poison is encode(x, secret) with a fixed secret drawn from the seed; `fit` returns the decoder's bit
accuracy on encoded uint8 images, on clean ones, the mean |residual| (uint8 levels) and the PSNR as `metric.*`.

Defaults: max_residual 16/255, which gives encoded images of PSNR ~27 dB (Li et al. report ~27 dB for theirs);
rate 0.1 (the paper's and BackdoorBench's). The official EBYD code has no SSBA. Measured: docs/methods.md, "SSBA".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..train import autocast
from .base import Attack
from .components import TinyUNet, batch_indices, load_module, module_tensors, seeded, subsample

FIT_SEED_OFFSET = 307  # the encoder/decoder training seed is seed + this
SECRET_SEED_OFFSET = 308  # the fixed secret is drawn from seed + this
BATCH = 128  # images per training step
SECRET_GRID = 8  # the secret's map is 3 x SECRET_GRID x SECRET_GRID before upsampling


class SecretEncoder(nn.Module):
    """(images in [0, 1], bits in {0, 1}) -> raw residual (unbounded; SSBA bounds it)."""

    def __init__(self, bits: int, width: int = 16):
        super().__init__()
        self.secret_map = nn.Linear(bits, 3 * SECRET_GRID * SECRET_GRID)
        self.net = TinyUNet(6, 3, width, skips=True)

    def forward(self, x01, bits):
        secret = self.secret_map(2 * bits - 1).view(-1, 3, SECRET_GRID, SECRET_GRID)
        secret = F.interpolate(secret, size=x01.shape[-2:], mode="bilinear", align_corners=False)
        return self.net(torch.cat([x01 - 0.5, secret.expand(len(x01), -1, -1, -1)], 1))


class SecretDecoder(nn.Module):
    """images -> bit logits."""

    def __init__(self, bits: int, width: int = 32):
        super().__init__()
        layers, c_in = [], 3
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(4 * c_in, bits)

    def forward(self, x01):
        return self.head(self.features(x01 - 0.5))


@dataclass
class SSBA(Attack):
    max_residual: float = 16 / 255  # bound on |residual| per pixel ([0, 1] pixel units)
    secret_bits: int = 32  # length of the hidden secret
    image_weight: float = 0.1  # weight of the L2 residual loss (residual over its bound), beside the bit loss
    fit_images: int = 10000  # training images the encoder/decoder learn from (0 = all)
    epochs: int = 6  # encoder/decoder training epochs (batches of 128)

    name = "ssba"
    needs_fit = True

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.max_residual <= 1:
            raise ValueError(
                f"SSBA max_residual must be in (0, 1] ([0, 1] pixel units, e.g. 8/255); got {self.max_residual!r}"
            )
        if self.image_weight < 0:
            raise ValueError(f"SSBA image_weight must be >= 0; got {self.image_weight!r}")
        for field, value, low in (
            ("secret_bits", self.secret_bits, 1),
            ("fit_images", self.fit_images, 0),
            ("epochs", self.epochs, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"SSBA {field} must be an int >= {low}; got {value!r}")

    def secret(self) -> torch.Tensor:
        """The fixed secret (secret_bits,), 0/1 floats, drawn from the seed."""
        gen = torch.Generator().manual_seed(self.seed + SECRET_SEED_OFFSET)
        return torch.randint(0, 2, (self.secret_bits,), generator=gen).float()

    def residual(self, encoder, x01, bits):
        return torch.tanh(encoder(x01, bits)) * self.max_residual

    # -- the component
    def fit(self, x, y, num_classes, progress=False):
        with seeded(self.seed + FIT_SEED_OFFSET, x.device) as gen:
            x, _ = subsample(x, y, self.fit_images, gen)
            x01 = x.float().div(255).contiguous(memory_format=torch.channels_last)
            encoder = SecretEncoder(self.secret_bits).to(x.device, memory_format=torch.channels_last)
            decoder = SecretDecoder(self.secret_bits).to(x.device, memory_format=torch.channels_last)
            optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], 1e-3)
            total = self.epochs * -(-len(x01) // BATCH)
            for step, idx in enumerate(
                i for _ in range(self.epochs) for i in batch_indices(len(x01), BATCH, gen, x.device)
            ):
                bits = torch.randint(0, 2, (len(idx), self.secret_bits), generator=gen).float().to(x.device)
                with autocast(x.device):
                    residual = self.residual(encoder, x01[idx], bits).float()
                    logits = decoder((x01[idx] + residual).clamp(0, 1)).float()
                # bits first, then hide them: the image loss is off for the first half, then ramps in (StegaStamp
                # ramps its image losses in too; on from the start, it shrinks the residual to 0 before any bit
                # is learned)
                weight = self.image_weight * min(1.0, max(0.0, 2 * step / total - 1))
                loss = (
                    F.binary_cross_entropy_with_logits(logits, bits)
                    + weight * (residual / self.max_residual).pow(2).mean()
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            encoder.eval()
            decoder.eval()
            metrics = self._metrics(encoder, decoder, x[torch.randperm(len(x), generator=gen)[:500].to(x.device)])
        if progress:
            print("ssba component: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        return {
            **module_tensors(encoder, "encoder"),
            **module_tensors(decoder, "decoder"),
            "secret": self.secret(),
            **{f"metric.{k}": torch.tensor(v) for k, v in metrics.items()},
        }

    @torch.no_grad()
    def _metrics(self, encoder, decoder, x):
        """The decoder's bit accuracy on encoded images (the fixed secret, rounded to uint8, as poisoned) and on
        clean ones (against the secret: ~0.5 when the decoder reads the residual, not the image), the mean
        |residual| in uint8 levels and the PSNR (dB) of the encoded images."""
        x01 = x.float() / 255
        bits = self.secret().to(x.device).expand(len(x), -1)
        stego = ((x01 + self.residual(encoder, x01, bits)).clamp(0, 1) * 255).round() / 255

        def bit_accuracy(images):
            return ((decoder(images) > 0).float() == bits).float().mean().item()

        mse = (stego - x01).pow(2).mean().item()
        return {
            "bit_accuracy": bit_accuracy(stego),
            "clean_bit_accuracy": bit_accuracy(x01),
            "mean_abs_residual": (stego - x01).abs().mean().item() * 255,
            "psnr": 10 * math.log10(1 / max(mse, 1e-12)),
        }

    def load_component(self, tensors):
        super().load_component(tensors)
        self._encoder = load_module(lambda: SecretEncoder(self.secret_bits), tensors, "encoder")
        self._decoder = load_module(lambda: SecretDecoder(self.secret_bits), tensors, "decoder")

    @torch.no_grad()
    def decode(self, x01: torch.Tensor) -> torch.Tensor:
        """The bits the decoder reads from images (N, secret_bits), 0/1 floats."""
        self.require_component()
        return (self._decoder.to(x01.device)(x01) > 0).float()

    # -- per-image triggers
    @torch.no_grad()
    def stamp(self, x01, batch_size: int = 500):
        self.require_component()
        encoder = self._encoder.to(x01.device)
        bits = self.secret().to(x01.device)[None]
        return torch.cat(
            [
                x01[i : i + batch_size] + self.residual(encoder, x01[i : i + batch_size], bits)
                for i in range(0, len(x01), batch_size)
            ]
            or [x01.clone()]
        )

    def trigger(self, h, w):
        self.require_component()
        grey = torch.full((1, 3, h, w), 0.5, device=next(self._encoder.parameters()).device)
        return torch.zeros(1, h, w), (self.stamp(grey) - grey + 0.5).clamp(0, 1)[0].cpu()
