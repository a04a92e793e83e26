#!/usr/bin/env python3
"""A PyTorch sampling loop, the peer of `charrnn sample`: one character at a time
from a model with random weights, single thread, multinomial draws, no grad.

usage: python3 scripts/torch_sample.py rnn|lstm [--hidden H] [--layers L] [--emb E] [--chars N]
Prints chars/s as JSON.
"""
import argparse, json, time
import torch, torch.nn as nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cell", choices=("rnn", "lstm"))
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--emb", type=int, default=0, help="0 = one-hot input (min-char-rnn)")
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--chars", type=int, default=20000)
    ap.add_argument("--double", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dtype = torch.float64 if a.double else torch.float32
    V = a.vocab
    emb = nn.Embedding(V, a.emb).to(dtype) if a.emb else None
    width = a.emb or V
    rnn = (nn.LSTM if a.cell == "lstm" else nn.RNN)(width, a.hidden, num_layers=a.layers).to(dtype)
    out = nn.Linear(a.hidden, V).to(dtype)
    eye = torch.eye(V, dtype=dtype)
    with torch.no_grad():
        x, state = 0, None
        t0 = time.perf_counter()
        for _ in range(a.chars):
            inp = emb(torch.tensor([[x]])) if emb is not None else eye[x].view(1, 1, V)
            h, state = rnn(inp, state)
            probs = torch.softmax(out(h[0, 0]), dim=0)
            x = int(torch.multinomial(probs, 1))
        dt = time.perf_counter() - t0
    print(json.dumps(dict(cell=a.cell, hidden=a.hidden, layers=a.layers, emb=a.emb, double=a.double,
                          chars=a.chars, time_s=round(dt, 3), chars_per_s=round(a.chars / dt))))


if __name__ == "__main__":
    main()
