"""Model registry and architectures (fast: ResNet50 models only on tiny inputs)."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from isslide.errors import IsslideError
from isslide.models import (
    MODEL_NAMES,
    REGISTRY,
    build_model,
    count_parameters,
    get_spec,
    model_training_config,
)
from isslide.models.shallow import Residual, SeparableConv

# The ISSLIDE paper's public implementation (github.com/Ant89ne/ISSLIDE, smallNets.py).
PAPER_PARAMETERS = {"unet": 100_849, "resunet": 100_849, "sepunet": 52_321}


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
def test_shallow_parameter_counts_match_the_paper_code(name):
    model = build_model(name)
    assert count_parameters(model) == PAPER_PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
@pytest.mark.parametrize("shape", [(32, 32), (30, 34), (17, 9)])
def test_shallow_outputs_one_logit_per_pixel(name, shape):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(2, 3, *shape)
    y = model(x)
    assert y.shape == (2, 1, *shape)
    assert torch.isfinite(y).all()


def test_shallow_building_blocks():
    res = build_model("resunet")
    assert sum(isinstance(m, Residual) for m in res.modules()) == 3
    sep = build_model("sepunet")
    seps = [m for m in sep.modules() if isinstance(m, SeparableConv)]
    assert len(seps) == 9
    for m in seps:
        assert m.depthwise.groups == m.depthwise.in_channels
        assert m.depthwise.out_channels == 2 * m.depthwise.in_channels
        assert m.depthwise.kernel_size == (3, 3)
        assert m.pointwise.kernel_size == (1, 1)
    bns = [m for m in build_model("unet").modules() if isinstance(m, nn.BatchNorm2d)]
    assert [b.num_features for b in bns] == [12, 24, 48, 24, 12, 12]


def test_registry_is_complete_and_unknown_names_fail():
    assert set(MODEL_NAMES) == {
        "fcn_s", "fcn_p", "deeplabv3_s", "deeplabv3_p", "unet", "resunet", "sepunet",
        "tunet_early", "tunet_attn",
    }  # fmt: skip
    assert {n for n, s in REGISTRY.items() if s.temporal} == {"tunet_early", "tunet_attn"}
    assert {s.family for s in REGISTRY.values()} == {"shallow", "large"}
    with pytest.raises(IsslideError, match="unknown model 'vgg'.*unet"):
        get_spec("vgg")
    with pytest.raises(IsslideError, match="unknown model"):
        build_model("Unet")


def test_paper_config_lists_all_seven(repo):
    cfg = yaml.safe_load(open(repo / "config" / "isslide.yaml"))
    single = [n for n in MODEL_NAMES if not REGISTRY[n].temporal]  # the paper's Table I
    assert sorted(cfg["training"]["models"]) == sorted(single)


@pytest.mark.parametrize("name", ["fcn_s", "deeplabv3_s"])
def test_scratch_models_are_random_three_in_one_out(name):
    torch.manual_seed(1)
    a = build_model(name).eval()
    torch.manual_seed(2)
    b = build_model(name).eval()
    wa = a.net.backbone.conv1.weight
    assert wa.shape[1] == 3
    assert not torch.equal(wa, b.net.backbone.conv1.weight)  # not a pretrained backbone
    assert a.net.aux_classifier is None
    with torch.no_grad():
        y = a(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 1, 32, 32)


@pytest.mark.parametrize("name", ["fcn_p", "deeplabv3_p"])
def test_pretrained_needs_a_file(name, tmp_path):
    with pytest.raises(IsslideError, match=f"training.weights.{name}: no pretrained checkpoint"):
        build_model(name, {})
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(IsslideError, match=f"training.weights.{name}.*not found"):
        build_model(name, {name: missing})
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(IsslideError, match="not a readable PyTorch state dict"):
        build_model(name, {name: str(bad)})
    # evaluation rebuilds the skeleton without any file
    assert build_model(name, {}, init=False).net.classifier[-1].out_channels == 1


def test_pretrained_fcn_loads_checkpoint_and_replaces_the_head(tmp_path):
    from torchvision.models.segmentation import fcn_resnet50

    torch.manual_seed(3)
    ref = fcn_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    path = tmp_path / "fcn_resnet50_coco.pth"
    torch.save(ref.state_dict(), path)
    model = build_model("fcn_p", {"fcn_p": str(path)})
    net = model.net
    assert torch.equal(net.backbone.conv1.weight, ref.backbone.conv1.weight)
    assert torch.equal(net.classifier[0].weight, ref.classifier[0].weight)
    assert net.classifier[-1].out_channels == 1
    assert net.aux_classifier is None
    # a file of the wrong architecture is refused
    wrong = tmp_path / "wrong.pth"
    torch.save(build_model("unet").state_dict(), wrong)
    with pytest.raises(IsslideError, match="not a torchvision fcn_resnet50"):
        build_model("fcn_p", {"fcn_p": str(wrong)})


def test_imagenet_backbone_option(tmp_path):
    from torchvision.models import resnet50

    torch.manual_seed(4)
    ref = resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(ref.state_dict(), path)
    model = build_model("fcn_s", {"backbone": str(path)})
    assert torch.equal(model.net.backbone.layer4[0].conv2.weight, ref.layer4[0].conv2.weight)
    assert model.net.classifier[-1].out_channels == 1
    wrong = tmp_path / "wrong.pth"
    torch.save(build_model("unet").state_dict(), wrong)
    with pytest.raises(IsslideError, match="training.weights.backbone"):
        build_model("fcn_s", {"backbone": str(wrong)})


def test_rule_params_only_hold_what_shapes_a_model():
    training = {
        "models": ["unet", "fcn_p"],
        "shallow": {"epochs": 3, "lr": 1e-3},
        "large": {"epochs": 5, "lr": 1e-7},
        "per_model": {"fcn_p": {"epochs": 9}},
        "weights": {
            "fcn_p": "a.pth",
            "deeplabv3_p": "b.pth",
            "backbone": "c.pth",
            "download": False,
        },
        "batch_size": 8,
        "threads": 4,
    }
    unet = model_training_config("unet", training)
    assert "large" not in unet and "models" not in unet and "threads" not in unet
    assert unet["per_model"] == {} and unet["weights"] == {"download": False}
    other = dict(training, models=["unet"], per_model={}, large={"epochs": 1, "lr": 1.0})
    assert model_training_config("unet", other) == unet
    fcn = model_training_config("fcn_p", training)
    assert fcn["weights"] == {"fcn_p": "a.pth", "download": False}
    assert fcn["per_model"] == {"fcn_p": {"epochs": 9}}
    assert model_training_config("fcn_s", training)["weights"]["backbone"] == "c.pth"
