"""The reference side of bench/gpt2_generate.sh: GPT-2 small's generation
speed in PyTorch on the CPU, with random weights of the real configuration.

The model is GPT-2 small written out (12 layers, 12 heads, width 768,
vocabulary 50257, context 1024, biases, LayerNorm eps 1e-5, the tanh GELU,
the output layer tied to the token embedding), weights drawn from N(0, 0.02).
Its KV cache is preallocated to the context and written in place, as ours
is, and attention over the filled part goes through
F.scaled_dot_product_attention. A prompt of PROMPT_TOKENS seeded random ids
is fed in one call (the prefill), then NEW_TOKENS tokens are written
greedily, one token per forward pass (the decode), under
torch.inference_mode() on 2 threads.

It prints, in the format the shell script reads (the same as ours):

    prefill: 20 tokens in 45.1 ms
    decode: 199 tokens in 5.80 s (34.3 tokens/s)
    total: 200 new tokens in 5.85 s (34.2 tokens/s)

Usage: python bench/pytorch_gpt2_generate.py [--prompt-tokens 20] [--new-tokens 200] [--seed 0]
"""

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, CONTEXT, LAYERS, HEADS, WIDTH = 50257, 1024, 12, 12, 768


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(WIDTH, eps=1e-5)
        self.c_attn = nn.Linear(WIDTH, 3 * WIDTH)
        self.c_proj = nn.Linear(WIDTH, WIDTH)
        self.ln_2 = nn.LayerNorm(WIDTH, eps=1e-5)
        self.c_fc = nn.Linear(WIDTH, 4 * WIDTH)
        self.mlp_proj = nn.Linear(4 * WIDTH, WIDTH)
        d = WIDTH // HEADS
        # The cache: [1, heads, context, d], filled up to `past`.
        self.register_buffer("k_cache", torch.zeros(1, HEADS, CONTEXT, d), persistent=False)
        self.register_buffer("v_cache", torch.zeros(1, HEADS, CONTEXT, d), persistent=False)

    def attention(self, x, past):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, HEADS, c // HEADS).transpose(1, 2) for z in (q, k, v))
        self.k_cache[:, :, past : past + t] = k
        self.v_cache[:, :, past : past + t] = v
        k, v = self.k_cache[:, :, : past + t], self.v_cache[:, :, : past + t]
        if t == 1:
            # One query attends to every cached key: no mask.
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            # Queries past..past+t against keys 0..past+t: bottom-right causal.
            mask = torch.ones(t, past + t, dtype=torch.bool).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    def forward(self, x, past):
        x = x + self.attention(self.ln_1(x), past)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, WIDTH)
        self.wpe = nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(WIDTH, eps=1e-5)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for proj in (block.c_proj, block.mlp_proj):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * LAYERS))

    def forward(self, ids, past):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(past, past + t))
        for block in self.blocks:
            x = block(x, past)
        # Only the last position's logits: what greedy decoding reads.
        return F.linear(self.ln_f(x[:, -1:]), self.wte.weight)


def generate(model, prompt, new_tokens):
    """Greedy tokens after `prompt`; returns them and the time of the first."""
    started = time.perf_counter()
    logits = model(prompt, 0)
    past = prompt.shape[1]
    token = logits[0, -1].argmax()
    first_at = time.perf_counter() - started
    out = [int(token)]
    for _ in range(new_tokens - 1):
        logits = model(token.view(1, 1), past)
        past += 1
        token = logits[0, -1].argmax()
        out.append(int(token))
    return out, first_at, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompt-tokens", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 1 <= args.prompt_tokens <= 512:
        parser.error(f"--prompt-tokens {args.prompt_tokens}: must be in [1, 512]")
    if not 2 <= args.new_tokens <= 512:
        parser.error(f"--new-tokens {args.new_tokens}: must be in [2, 512]")
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    model = Gpt2().eval()
    prompt = torch.randint(0, VOCAB, (1, args.prompt_tokens))
    with torch.inference_mode():
        generate(model, prompt, 4)  # warm-up
        tokens, prefill, total = generate(model, prompt, args.new_tokens)
    n = len(tokens)
    decode = total - prefill
    print(f"prefill: {args.prompt_tokens} tokens in {prefill * 1e3:.1f} ms")
    print(f"decode: {n - 1} tokens in {decode:.2f} s ({(n - 1) / decode:.1f} tokens/s)")
    print(f"total: {n} new tokens in {total:.2f} s ({n / total:.1f} tokens/s)")


if __name__ == "__main__":
    main()
