#!/usr/bin/env python3
"""Writes live timm parity fixtures: random-weight timm models and their reference outputs.

    timm_live_fixtures.py OUT_DIR [--only NAME[,NAME...]]

For each model below, OUT_DIR gets the pair that tests/model/parity_test.cc reads (the format of
tests/data/golden/README.md):
  <name>.weights.safetensors  timm's state_dict (float32) with metadata arch / config / name
  <name>.io.safetensors       input64 (float64) and input (the same rounded to float32), and,
                              from timm run in float64 on input64: logits64, block_out64.<i>,
                              av_headmean64.<i> (A.V before the head merge, averaged over heads)
and manifest.json with the torch and timm versions and each model's config. The versions are
printed on the first line, so the test log records them.

Weights are timm's init, then made less linear as the frozen fixtures were (every weight of rank
>= 2 times 5, Swin's relative-position-bias tables redrawn from N(0, 0.5^2)), so that a wrong op
order or a missing mask shows in the logits. The 8 presets use timm.create_model(<preset>) itself
at 224^2 (batch 1, to keep the run short); the small models cover other patch sizes, window
sizes, depths and 1/3 input channels (batch 2).
"""
import argparse
import json
import os
import sys
import time

import safetensors.torch
import timm
import torch
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer

# Small models: (name, arch, timm constructor kwargs).
SMALL = [
    ("live_vit_p8_c3", "vit", dict(img_size=32, patch_size=8, in_chans=3, num_classes=7,
                                   embed_dim=48, depth=2, num_heads=3)),
    ("live_vit_p4_c1", "vit", dict(img_size=28, patch_size=4, in_chans=1, num_classes=10,
                                   embed_dim=32, depth=4, num_heads=2, mlp_ratio=2.0)),
    ("live_vit_p16_nobias", "vit", dict(img_size=64, patch_size=16, in_chans=3, num_classes=5,
                                        embed_dim=64, depth=3, num_heads=4, qkv_bias=False)),
    ("live_swin_p4_w7", "swin", dict(img_size=56, patch_size=4, in_chans=3, num_classes=6,
                                     embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                                     window_size=7)),
    ("live_swin_p2_w4_c1", "swin", dict(img_size=32, patch_size=2, in_chans=1, num_classes=10,
                                        embed_dim=16, depths=[2, 2, 2], num_heads=[1, 2, 4],
                                        window_size=4)),
    ("live_swin_p4_w8_d4", "swin", dict(img_size=64, patch_size=4, in_chans=3, num_classes=4,
                                        embed_dim=24, depths=[4, 1], num_heads=[3, 6],
                                        window_size=8, mlp_ratio=3.0)),
]

# psaq's presets (model/config.h) with the kwargs timm's registry gives them.
_VIT = dict(img_size=224, patch_size=16, in_chans=3, num_classes=1000)
_SWIN = dict(img_size=224, patch_size=4, in_chans=3, num_classes=1000, window_size=7)
PRESETS = [
    ("deit_tiny_patch16_224", "vit", dict(_VIT, embed_dim=192, depth=12, num_heads=3)),
    ("deit_small_patch16_224", "vit", dict(_VIT, embed_dim=384, depth=12, num_heads=6)),
    ("deit_base_patch16_224", "vit", dict(_VIT, embed_dim=768, depth=12, num_heads=12)),
    ("vit_small_patch16_224", "vit", dict(_VIT, embed_dim=384, depth=12, num_heads=6)),
    ("vit_base_patch16_224", "vit", dict(_VIT, embed_dim=768, depth=12, num_heads=12)),
    ("swin_tiny_patch4_window7_224", "swin",
     dict(_SWIN, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24])),
    ("swin_small_patch4_window7_224", "swin",
     dict(_SWIN, embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24])),
    ("swin_base_patch4_window7_224", "swin",
     dict(_SWIN, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32])),
]


def build(name, arch, kwargs, preset):
    if preset:
        model = timm.create_model(name, pretrained=False)
        # The config written to the metadata must describe exactly timm's preset.
        cls = VisionTransformer if arch == "vit" else SwinTransformer
        mine = {k: tuple(v.shape) for k, v in cls(**kwargs).state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        if mine != theirs:
            sys.exit(f"{name}: the kwargs here do not build timm's preset")
    else:
        model = (VisionTransformer if arch == "vit" else SwinTransformer)(**kwargs)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if key.endswith("relative_position_bias_table"):
                p.normal_(0.0, 0.5)
            elif p.dim() >= 2:
                p.mul_(5.0)
    return model.eval()


def blocks_of(model, arch):
    if arch == "vit":
        return list(model.blocks)
    return [b for layer in model.layers for b in layer.blocks]


def reference(model, arch, input64):
    """timm in float64: logits, every block's output and A.V head mean, in block order."""
    model = model.double()
    outs, avs, hooks = [], [], []
    for block in blocks_of(model, arch):
        heads = block.attn.num_heads

        def av_hook(_, args, heads=heads):
            x = args[0]  # [B', N, heads * d]: A.V with the heads concatenated
            avs.append(x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads).mean(-2))

        hooks.append(block.attn.proj.register_forward_pre_hook(av_hook))
        hooks.append(block.register_forward_hook(lambda _m, _a, out: outs.append(out)))
    with torch.no_grad():
        logits = model(input64)
    for h in hooks:
        h.remove()
    io = {"logits64": logits}
    for i, (out, av) in enumerate(zip(outs, avs)):
        io[f"block_out64.{i}"] = out
        io[f"av_headmean64.{i}"] = av
    return io


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    models = [(n, a, k, False) for n, a, k in SMALL] + [(n, a, k, True) for n, a, k in PRESETS]
    unknown = only - {m[0] for m in models}
    if unknown:
        sys.exit(f"--only: unknown model(s) {sorted(unknown)}")
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"timm {timm.__version__}, torch {torch.__version__}", flush=True)
    manifest = {"timm": timm.__version__, "torch": torch.__version__, "models": {}}
    for seed, (name, arch, kwargs, preset) in enumerate(models):
        if only and name not in only:
            continue
        start = time.time()
        torch.manual_seed(seed)
        model = build(name, arch, kwargs, preset)
        meta = {"arch": arch, "config": json.dumps(kwargs), "name": name}
        safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                                    os.path.join(args.out_dir, name + ".weights.safetensors"), meta)
        batch = 1 if preset else 2
        c, s = kwargs["in_chans"], kwargs["img_size"]
        input64 = torch.randn(batch, c, s, s, dtype=torch.float64)
        io = reference(model, arch, input64)
        io["input64"] = input64
        io["input"] = input64.float()
        safetensors.torch.save_file({k: v.contiguous() for k, v in io.items()},
                                    os.path.join(args.out_dir, name + ".io.safetensors"))
        manifest["models"][name] = {"arch": arch, "config": kwargs, "batch": batch,
                                    "n_blocks": len(blocks_of(model, arch))}
        print(f"{name}: {len(blocks_of(model, arch))} blocks, batch {batch}, "
              f"{time.time() - start:.1f} s", flush=True)
        del model, io
    with open(os.path.join(args.out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
