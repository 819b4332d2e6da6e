"""Train zoo's simple-cnn (the CIFAR-10 tutorial network) on labelled images, in one process or several.

    # one process, on a synthetic labelled set (class = stripe orientation), CPU is plenty
    python examples/train_simple_cnn.py --output-dir runs/simple-cnn

    # your own images, one folder per label: photos/cat/*.png, photos/dog/*.jpg, ...
    python examples/train_simple_cnn.py --data-dir photos --image-size 32 --epochs 20 --output-dir runs/pets

    # DistributedDataParallel: the same script under torchrun (gloo on CPU, NCCL on GPUs; see docs/training.md)
    torchrun --nproc-per-node 2 examples/train_simple_cnn.py --output-dir runs/simple-cnn-ddp

The result is a normal zoo model folder (config.json, model.safetensors, preprocessor_config.json): load it with
``zoo.AutoModelForImageClassification`` or ``zoo.pipeline("image-classification", model=...)``.
The script is importable too: ``train(parse_args([...]))`` returns the metrics (the tests use it that way).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, TensorDataset

from zoo.plugins.cnn.config import SimpleCNNConfig
from zoo.plugins.cnn.processing import simple_cnn_processor
from zoo.plugins.cnn.simple_cnn import SimpleCNNForImageClassification

logger = logging.getLogger("train_simple_cnn")

PATTERNS = ("horizontal", "vertical", "diagonal", "checkerboard")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


# --- data ----------------------------------------------------------------------------------------------------------------


def make_synthetic_dataset(n: int, image_size: int = 32, seed: int = 0, noise: float = 0.15) -> tuple[torch.Tensor, torch.Tensor, dict[int, str]]:
    """``n`` RGB uint8 images (N, 3, S, S) whose label is a stripe pattern: horizontal, vertical, diagonal or a
    checkerboard, with a random period, phase and pair of colours, plus Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(PATTERNS), (n,), generator=g)
    period = torch.empty(n, 1, 1).uniform_(4.0, 9.0, generator=g)
    phase = torch.empty(n, 1, 1).uniform_(0.0, 2 * math.pi, generator=g)
    yy, xx = torch.meshgrid(torch.arange(image_size, dtype=torch.float32), torch.arange(image_size, dtype=torch.float32), indexing="ij")
    wave = lambda t: torch.sin(2 * math.pi * t / period + phase)  # noqa: E731  (N, S, S)
    masks = torch.stack([wave(yy) > 0, wave(xx) > 0, wave((xx + yy) / math.sqrt(2)) > 0, (wave(xx) > 0) ^ (wave(yy) > 0)])
    mask = masks[labels, torch.arange(n)].unsqueeze(1).float()  # (N, 1, S, S)
    bright = torch.empty(n, 3, 1, 1).uniform_(0.6, 1.0, generator=g)
    dark = torch.empty(n, 3, 1, 1).uniform_(0.0, 0.4, generator=g)
    swap = torch.rand(n, 1, 1, 1, generator=g) < 0.5  # which colour the stripes get
    fg, bg = torch.where(swap, dark, bright), torch.where(swap, bright, dark)
    images = mask * fg + (1 - mask) * bg + noise * torch.randn(n, 3, image_size, image_size, generator=g)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels, dict(enumerate(PATTERNS))


def load_image_folder(folder: str | os.PathLike[str]) -> tuple[list[Path], torch.Tensor, dict[int, str]]:
    """Image files of ``folder/<label>/...``: paths, label ids, and id2label (labels sorted by name)."""
    root = Path(folder)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    paths, labels = [], []
    for index, name in enumerate(names):
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(index)
    if not paths:
        raise SystemExit(f"{folder} has no images in label folders; lay it out as {folder}/<label>/<image>.png")
    return paths, torch.tensor(labels), dict(enumerate(names))


def split(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    n_test = max(1, int(round(n * test_fraction)))
    return order[n_test:], order[:n_test]


# --- distributed ---------------------------------------------------------------------------------------------------------


def setup_distributed(cpu: bool) -> tuple[int, int, torch.device]:
    """(rank, world_size, device) from torchrun's environment; one process when it is not set."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and not cpu
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if world_size > 1 and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world_size, device


# --- training ------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", help="where to save the trained model (config.json, model.safetensors, preprocessor_config.json)")
    p.add_argument("--data-dir", help="images in one folder per label; default: a synthetic stripe-pattern set")
    p.add_argument("--num-images", type=int, default=1200, help="size of the synthetic set (default 1200)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out share for the accuracy (default 0.2)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many optimizer steps (0: no limit)")
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is available")
    p.add_argument("--init-from", help="start from this zoo model folder or Hub repo instead of random weights")
    p.add_argument("--save-rank-states", help="debugging aid: each rank writes its initial and final weights here")
    return p.parse_args(argv)


def build_data(args: argparse.Namespace, processor: Any) -> tuple[TensorDataset, TensorDataset, dict[int, str]]:
    if args.data_dir:
        images, labels, id2label = load_image_folder(args.data_dir)
    else:
        images, labels, id2label = make_synthetic_dataset(args.num_images, args.image_size, seed=args.seed)
    pixels = processor(list(images))["pixel_values"]  # (N, 3, S, S), exactly as the pipeline will see them
    train_ids, test_ids = split(len(labels), args.test_fraction, args.seed)
    return TensorDataset(pixels[train_ids], labels[train_ids]), TensorDataset(pixels[test_ids], labels[test_ids]), id2label


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TensorDataset, device: torch.device, batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    for pixels, labels in DataLoader(data, batch_size=batch_size):
        logits = model(pixel_values=pixels.to(device)).logits  # (B, num_labels)
        correct += int((logits.argmax(-1).cpu() == labels).sum())
    return correct / len(data)


def save_state(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(path))


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, evaluate on the held-out split, save (rank 0); returns the metrics."""
    rank, world_size, device = setup_distributed(args.cpu)
    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    if args.init_from:
        from zoo import AutoImageProcessor, AutoModelForImageClassification

        processor = AutoImageProcessor.from_pretrained(args.init_from)
        train_set, test_set, id2label = build_data(args, processor)
        model = AutoModelForImageClassification.from_pretrained(args.init_from, id2label=id2label, ignore_mismatched_sizes=True)
    else:
        config = SimpleCNNConfig(image_size=args.image_size)
        processor = simple_cnn_processor(None, config)
        train_set, test_set, id2label = build_data(args, processor)
        config.id2label, config.label2id = id2label, {v: k for k, v in id2label.items()}
        model = SimpleCNNForImageClassification(config)
    model.to(device).train()
    if args.save_rank_states:
        save_state(model, Path(args.save_rank_states) / f"rank{rank}-initial.safetensors")

    ddp_model: torch.nn.Module = model
    if world_size > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        sampler: Any = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
    else:
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(args.seed))
    loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler, drop_last=world_size > 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    step, loss_sum, seen = 0, 0.0, 0
    for epoch in range(args.epochs):
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)  # a different shuffle each epoch, the same on every rank
        loss_sum, seen = 0.0, 0
        for pixels, labels in loader:
            out = ddp_model(pixel_values=pixels.to(device), labels=labels.to(device))  # loss: cross-entropy
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()  # under DDP the gradients are all-reduced (averaged) across ranks here
            optimizer.step()
            loss_sum, seen, step = loss_sum + out.loss.item() * len(labels), seen + len(labels), step + 1
            if args.max_steps and step >= args.max_steps:
                break
        if rank == 0:
            logger.info("epoch %d: train loss %.4f", epoch + 1, loss_sum / max(seen, 1))
        if args.max_steps and step >= args.max_steps:
            break

    accuracy = evaluate(model, test_set, device)
    if args.save_rank_states:
        save_state(model, Path(args.save_rank_states) / f"rank{rank}-final.safetensors")
    if rank == 0 and args.output_dir:
        model.save_pretrained(args.output_dir)
        processor.save_pretrained(args.output_dir)
        logger.info("saved to %s (held-out accuracy %.3f)", args.output_dir, accuracy)
    if world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return {"rank": rank, "world_size": world_size, "steps": step, "train_loss": loss_sum / max(seen, 1),
            "accuracy": accuracy, "model": model, "processor": processor, "test_set": test_set}


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    metrics = train(parse_args(argv))
    if metrics["rank"] == 0:
        print(f"steps {metrics['steps']}  train loss {metrics['train_loss']:.4f}  held-out accuracy {metrics['accuracy']:.3f}")


if __name__ == "__main__":
    main()
