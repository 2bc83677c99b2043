"""STC v35 connector: token count, timm-compatible parameter names and sizes."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from ufvideo.model.configuration import UFVideoConfig
from ufvideo.model.connector import RegStage, STCConnector


def regstage_params(depth: int, c_in: int, c_out: int) -> int:
    """Independent count of one timm RegStage (bottle_ratio 1, depthwise 3x3, SE 0.25 of the block input)."""
    total = 0
    for i in range(depth):
        cin = c_in if i == 0 else c_out
        rd = round(cin * 0.25)
        block = cin * c_out + 2 * c_out  # conv1 + LN
        block += 9 * c_out + 2 * c_out  # depthwise conv2 + LN
        block += c_out * rd + rd + rd * c_out + c_out  # SE fc1, fc2
        block += c_out * c_out + 2 * c_out  # conv3 + LN
        if cin != c_out:
            block += cin * c_out + 2 * c_out  # shortcut conv + LN
        total += block
    return total


def test_7b_connector_gives_2704_tokens_and_expected_size() -> None:
    cfg = UFVideoConfig()
    with torch.device("meta"):
        connector = STCConnector(cfg)
        out = connector(torch.empty(1, 32, 729, 1152))
    assert tuple(out.shape) == (1, 2704, 3584)
    expected = regstage_params(4, 1152, 3584) + regstage_params(4, 3584, 3584)
    expected += 3584 * 3584 * 8 + 3584  # sampler Conv3d 2x2x2 + bias
    expected += 2 * (3584 * 3584 + 3584)  # readout MLP
    assert sum(p.numel() for p in connector.parameters()) == expected


def test_parameter_names_follow_the_public_checkpoint() -> None:
    cfg = UFVideoConfig()
    with torch.device("meta"):
        names = set(STCConnector(cfg).state_dict())
    for name in (
        "s1.b1.conv1.conv.weight",
        "s1.b1.conv1.bn.weight",
        "s1.b1.conv2.conv.weight",
        "s1.b1.se.fc1.weight",
        "s1.b1.se.fc2.bias",
        "s1.b1.conv3.bn.bias",
        "s1.b1.downsample.conv.weight",
        "s1.b1.downsample.bn.weight",
        "s1.b4.conv3.conv.weight",
        "sampler.0.weight",
        "sampler.0.bias",
        "s2.b1.conv1.conv.weight",
        "readout.0.weight",
        "readout.2.bias",
    ):
        assert name in names, name
    assert "s2.b1.downsample.conv.weight" not in names  # identity shortcut when channels match


def test_tiny_connector_runs_and_backpropagates() -> None:
    from ufvideo.model.builders import tiny_config

    cfg = tiny_config(
        {"region_token_id": 3, "temp_token_start_id": 4, "seg_token_id": 104, "im_end_token_id": 2, "pad_token_id": 0},
        128,
    )
    connector = STCConnector(cfg)
    feats = torch.randn(2, 8, 64, 32, requires_grad=True)
    out = connector(feats)
    assert tuple(out.shape) == (2, cfg.num_video_tokens(), 64) == (2, 4 * 4 * 4, 64)
    out.sum().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()


@pytest.mark.skipif(
    importlib.util.find_spec("timm") is None or importlib.util.find_spec("torchvision") is None,
    reason="timm (with a working torchvision) not importable",
)
def test_matches_timm_regstage_exactly() -> None:
    try:
        from timm.layers import LayerNorm2d
        from timm.models.regnet import RegStage as TimmRegStage
    except (ImportError, RuntimeError) as err:  # a broken torchvision wheel raises RuntimeError inside timm
        pytest.skip(f"timm not importable: {err}")
    ours = RegStage(2, 8, 16)
    ref = TimmRegStage(2, 8, 16, stride=1, dilation=1, act_layer=torch.nn.SiLU, norm_layer=LayerNorm2d)
    ref_state = ref.state_dict()
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref_state.items()
    }
    ours.load_state_dict(ref_state)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(ours(x), ref(x))
