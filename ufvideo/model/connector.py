"""The `stc_connector_v35` projector: RegStage -> 2x2x2 stride-2 Conv3d + SiLU -> RegStage -> 2-layer MLP.

RegStage is re-implemented here with timm's exact module names (`s1.b1.conv1.conv.weight`, `...se.fc1`,
`...downsample.bn`) so released VideoRefer/UFVideo weights load unchanged; importing timm would also drag in
torchvision, which is optional for this package.
"""

from __future__ import annotations

import torch
from torch import nn

from ufvideo.model.configuration import UFVideoConfig


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dim of an NCHW map (timm's `LayerNormAct2d` without the activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNormAct(nn.Module):
    """Bias-free conv, channel LayerNorm, optional SiLU; attribute names match timm's `ConvNormAct`."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, groups=groups, bias=False)
        self.bn = LayerNorm2d(out_chs, eps=1e-5)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """timm `SEModule`: global mean -> 1x1 conv -> SiLU -> 1x1 conv -> sigmoid gate."""

    def __init__(self, channels: int, rd_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, rd_channels, 1)
        self.act = nn.SiLU()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


class Bottleneck(nn.Module):
    """RegNet bottleneck (bottle_ratio 1, group_size 1 = depthwise 3x3, SE ratio 0.25 of the block input)."""

    def __init__(self, in_chs: int, out_chs: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_chs, out_chs, 1)
        self.conv2 = ConvNormAct(out_chs, out_chs, 3, groups=out_chs)
        self.se = SqueezeExcite(out_chs, int(round(in_chs * se_ratio)))
        self.conv3 = ConvNormAct(out_chs, out_chs, 1, act=False)
        self.downsample = ConvNormAct(in_chs, out_chs, 1, act=False) if in_chs != out_chs else nn.Identity()
        self.act3 = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.se(self.conv2(self.conv1(x))))
        return self.act3(y + self.downsample(x))


class RegStage(nn.Module):
    """`depth` bottlenecks named b1..bN; only the first changes the channel count."""

    def __init__(self, depth: int, in_chs: int, out_chs: int) -> None:
        super().__init__()
        for i in range(depth):
            self.add_module(f"b{i + 1}", Bottleneck(in_chs if i == 0 else out_chs, out_chs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


class STCConnector(nn.Module):
    """Maps SigLIP features (B, T, N, C_v) of a clip to LLM tokens (B, T'*H'*W', C_llm) in (t, h, w) order."""

    def __init__(self, config: UFVideoConfig) -> None:
        super().__init__()
        c_in, c_out = config.vision_config.hidden_size, config.text_config.hidden_size
        ts, ss = config.connector_temporal_stride, config.connector_spatial_stride
        self.s1 = RegStage(config.connector_depth, c_in, c_out)
        self.sampler = nn.Sequential(nn.Conv3d(c_out, c_out, (ts, ss, ss), stride=(ts, ss, ss)), nn.SiLU())
        self.s2 = RegStage(config.connector_depth, c_out, c_out)
        self.readout = nn.Sequential(nn.Linear(c_out, c_out), nn.GELU(), nn.Linear(c_out, c_out))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, t, n, c = features.shape
        side = int(round(n**0.5))
        if side * side != n:
            raise ValueError(f"connector expects a square patch grid, got {n} tokens per frame")
        x = features.reshape(b * t, side, side, c).permute(0, 3, 1, 2)
        x = self.s1(x)  # (B*T, C, H, W)
        x = x.reshape(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)  # (B, C, T, H, W)
        x = self.sampler(x)
        b, c, t, h, w = x.shape
        x = self.s2(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        x = x.reshape(b, t, c, h, w).permute(0, 1, 3, 4, 2).reshape(b, t * h * w, c)
        return self.readout(x)
