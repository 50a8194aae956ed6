"""The reference side of bench/gpt_shakespeare.sh: nanoGPT's CPU recipe for
Shakespeare characters, in PyTorch, on the shipped data.

The recipe (the same as `candle train shakespeare`): a character vocabulary
(the distinct characters of the whole file, sorted), the first 90% of the file
for training and the last 10% for validation; a GPT with 4 layers, 4 heads,
width 128, context 64, no biases, dropout 0, tied embeddings, weights drawn
from N(0, 0.02) (residual projections N(0, 0.02 / sqrt(2 * layers))); batches
of 12 windows at random offsets; AdamW with betas (0.9, 0.99), weight decay 0.1
on matrices only; a learning rate warming up linearly over 100 steps to 1e-3,
then decaying along a cosine to 1e-4 at step 2000; gradients clipped to norm
1.0. Losses are estimated on EVAL_ITERS random batches of each split every
EVAL_INTERVAL steps and at the end.

It prints one line per evaluation and, at the end, the median training step
time (evaluation excluded) and the final losses, in the format the shell
script reads:

    step 250: train 2.0311, val 2.0950
    step time: 44.8 ms (median of 2000)
    final: train 1.7600, val 1.9700

Usage: python bench/pytorch_gpt_shakespeare.py [--iters 2000] [--seed 1337]
"""

import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width, bias=False)
        self.c_attn = nn.Linear(width, 3 * width, bias=False)
        self.attn_proj = nn.Linear(width, width, bias=False)
        self.ln_2 = nn.LayerNorm(width, bias=False)
        self.c_fc = nn.Linear(width, 4 * width, bias=False)
        self.mlp_proj = nn.Linear(4 * width, width, bias=False)

    def attention(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        # [b, t, c] -> [b, heads, t, c / heads]
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab, context, layers, heads, width):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width, bias=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
        for block in self.blocks:
            for proj in (block.attn_proj, block.mlp_proj):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    def forward(self, ids, targets):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for block in self.blocks:
            x = block(x)
        # Weight tying: the output layer is the token embedding.
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def lr_at(step, lr=1e-3, min_lr=1e-4, warmup=100, decay=2000):
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step > decay:
        return min_lr
    ratio = (step - warmup) / (decay - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/shakespeare/shakespeare_small.txt")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--eval-interval", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=200)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    text = open(args.data, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(0.9 * len(data))
    splits = {"train": data[:split], "val": data[split:]}
    context, batch = 64, 12

    def get_batch(name):
        d = splits[name]
        ix = torch.randint(len(d) - context, (batch,))
        x = torch.stack([d[i : i + context] for i in ix])
        y = torch.stack([d[i + 1 : i + 1 + context] for i in ix])
        return x, y

    model = Gpt(len(chars), context, 4, 4, 128)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.99),
    )

    @torch.no_grad()
    def estimate():
        model.eval()
        out = {}
        for name in ("train", "val"):
            out[name] = sum(model(*get_batch(name)).item() for _ in range(args.eval_iters))
            out[name] /= args.eval_iters
        model.train()
        return out

    step_times = []
    for step in range(args.iters + 1):
        if step % args.eval_interval == 0 or step == args.iters:
            losses = estimate()
            print(f"step {step}: train {losses['train']:.4f}, val {losses['val']:.4f}", flush=True)
        if step == args.iters:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, decay=args.iters)
        started = time.perf_counter()
        loss = model(*get_batch("train"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step_times.append(time.perf_counter() - started)
    median = statistics.median(step_times) * 1e3
    print(f"step time: {median:.1f} ms (median of {len(step_times)})")
    print(f"final: train {losses['train']:.4f}, val {losses['val']:.4f}")


if __name__ == "__main__":
    main()
