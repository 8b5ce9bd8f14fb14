#!/usr/bin/env python3
"""The Python reference for `psaq bench`: one PSAQ-ViT V1 generation step with timm.

The step follows the official code (docs in gen/ and the spec): the teacher's per-block A·V,
averaged over heads, token 0 dropped (every window's first token for Swin), cosine similarity,
Gaussian KDE on a detached 10-point grid with h = 0.01 over the materialised (B, 10, M) tensor,
trapezoid entropy summed over blocks; cross-entropy with random labels; the TV target term; Adam
on the images; roll jitter, flip and clamp. Prints ms per step with and without the entropy term.
Needs torch and timm only (the GPU machine's venv). Random weights: speed does not depend on them.

  python3 launch/bench_timm.py --model swin_small_patch4_window7_224 --batch 32 [--dtype bf16]
  python3 launch/bench_timm.py --weights model/zoo/fmnist_vit.safetensors --batch 32 --threads 1

--weights builds the timm model a psaq weights file records (its "arch" and "config" metadata, timm
kwargs) instead of a preset. --threads sets torch's intra-op threads (psaq bench: OMP_NUM_THREADS).
--eval also times the evaluation forward (no grad) and prints it on a second line.
"""
import argparse
import json
import struct
import time

import torch
import torch.nn.functional as F
import timm


def capture_av(model):
    """Registers pre-hooks on every attention's output projection: its input is A·V with the heads
    concatenated, [B', N, H*Dh]. Returns the list the hooks fill."""
    feats = []
    for name, module in model.named_modules():
        if name.endswith("attn") and hasattr(module, "proj") and hasattr(module, "num_heads"):
            heads = module.num_heads

            def hook(_mod, args, heads=heads):
                x = args[0]
                b, n, c = x.shape
                feats.append(x.reshape(b, n, heads, c // heads).mean(2))

            module.proj.register_forward_pre_hook(hook)
    return feats


def entropy_loss(feats, batch, h=0.01, grid_points=10):
    total = 0.0
    for f in feats:
        f = f[:, 1:, :].float()
        f = F.normalize(f, dim=-1, eps=1e-8)
        s = torch.bmm(f, f.transpose(1, 2)).reshape(batch, -1)  # (B, M)
        lo, hi = s.min().item(), s.max().item()
        grid = torch.linspace(lo, hi, grid_points, device=s.device)
        diff = grid.view(1, -1, 1) - s.unsqueeze(1)  # (B, 10, M), kept for backward
        p = torch.exp(-diff.pow(2) / (2 * h * h)).mean(-1) / (2 * torch.pi * h * h) ** 0.5
        p = p + 1e-4
        ent = torch.trapezoid(-p * torch.log(p), grid.unsqueeze(0).expand(batch, -1), dim=-1)
        total = total - ent.mean()
    return total


def model_from_psaq_file(path):
    """The timm model with the architecture and config a psaq safetensors file records (random
    weights). The header is 8 bytes of little-endian length, then JSON with "__metadata__"."""
    with open(path, "rb") as f:
        meta = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))["__metadata__"]
    kwargs = json.loads(meta["config"])
    cls = {"vit": timm.models.vision_transformer.VisionTransformer,
           "swin": timm.models.swin_transformer.SwinTransformer}[meta["arch"]]
    return cls(**kwargs), meta.get("name", path), kwargs.get("img_size", 224), kwargs.get("in_chans", 3), kwargs.get("num_classes", 1000)


def time_eval(model, args):
    """Mean ms of the evaluation forward (no grad) on a [batch, C, size, size] batch."""
    x = torch.randn(args.batch, args.chans, args.size, args.size, device=args.device)
    times = []
    with torch.no_grad():
        for _ in range(args.warmup + args.steps):
            t0 = time.perf_counter()
            model(x).float().sum().item()
            times.append(time.perf_counter() - t0)
    return 1e3 * sum(times[args.warmup:]) / args.steps


def tv(x):
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dd = x[:, :, 1:, 1:] - x[:, :, :-1, :-1]
    da = x[:, :, 1:, :-1] - x[:, :, :-1, 1:]
    return dw.norm() + dh.norm() + dd.norm() + da.norm()


def time_steps(model, feats, args, with_entropy):
    torch.manual_seed(0)
    dev = torch.device(args.device)
    x = torch.randn(args.batch, args.chans, args.size, args.size, device=dev, requires_grad=True)
    labels = torch.randint(0, args.classes, (args.batch,), device=dev)
    opt = torch.optim.Adam([x], lr=0.2, betas=(0.5, 0.9))
    dtype = {"fp32": None, "bf16": torch.bfloat16}[args.dtype]
    times = []
    for it in range(args.warmup + args.steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        off = int(torch.randint(-15, 16, (1,)))
        xj = torch.roll(x, shifts=(off, off), dims=(2, 3))
        if torch.rand(1).item() < 0.5:
            xj = torch.flip(xj, dims=(3,))
        feats.clear()
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            logits = model(xj)
        loss = F.cross_entropy(logits.float(), labels) + 0.05 * (tv(xj) - 2750).abs()
        if with_entropy:
            loss = loss + entropy_loss(feats, args.batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(-2.2, 2.6)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * sum(times[args.warmup:]) / args.steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="swin_small_patch4_window7_224")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--weights", help="a psaq weights file: its recorded timm architecture")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: as is)")
    ap.add_argument("--eval", action="store_true", help="also time the evaluation forward")
    ap.add_argument("--profile", action="store_true",
                    help="print the per-op self times of --steps more V1 steps (without entropy)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    args.chans, args.classes = 3, 1000
    if args.weights:
        model, args.model, args.size, args.chans, args.classes = model_from_psaq_file(args.weights)
    else:
        model = timm.create_model(args.model, pretrained=False)
    model = model.to(args.device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    feats = capture_av(model)
    with_ent = time_steps(model, feats, args, True)
    without = time_steps(model, feats, args, False)
    print(f"timm {args.model} batch {args.batch} {args.dtype} {args.device}: "
          f"V1 step {with_ent:.1f} ms, without entropy {without:.1f} ms, "
          f"entropy share {100 * (1 - without / with_ent):.1f}%")
    if args.profile:
        steps, warmup = args.steps, args.warmup
        args.warmup = 0
        with torch.autograd.profiler.profile() as prof:
            time_steps(model, feats, args, False)
        args.warmup = warmup
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    if args.eval:
        print(f"timm {args.model} batch {args.batch} {args.dtype} {args.device}: "
              f"eval forward {time_eval(model, args):.1f} ms ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
