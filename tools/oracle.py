#!/usr/bin/python3
"""PyTorch oracle for seqlab's decoder (attention mixer): parity fixtures.

An independent PyTorch implementation of the model the C engine trains,
written from the spec, not from the C code, so that agreement means
something. Given a checkpoint the C engine wrote, it draws a fixed batch and
records logits, loss, every parameter's gradient and the losses of 10 AdamW
steps, computed in float64 by default, so the C engine's float32 results
can be compared against a reference that carries no float32 error of its own.

Run it with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
  --init CONFIG --out CKPT     write a freshly initialised checkpoint
  --ckpt CKPT --out FIXTURE    write a parity fixture for CKPT

Inputs and heads (docs/formats.md): token ids, vectors through in.weight or
both; a next-token (lm), per-position class (tag), per-position regression
(regress, MSE) or pooled sequence class (classify) head. A fixture for a
model other than tokens -> lm also draws vectors, row lengths (rows shorter
than T run alone, as the C engine packs them), and values with a mask.
  --selftest                   check attention and gradients; non-zero on failure
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402  (needs the path above)

# Every key the model and the optimizer read; a config missing one is an error,
# because a silently defaulted key is exactly the mismatch parity must catch.
MODEL_KEYS = ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len", "mixer",
              "pos", "rope_theta", "norm", "norm_eps", "mlp", "bias", "tie_embeddings",
              "causal", "window", "dropout")
TRAIN_KEYS = ("lr", "min_lr", "warmup_steps", "steps", "weight_decay", "beta1", "beta2",
              "adam_eps", "grad_clip", "batch_size", "seq_len", "seed")
CHOICES = {"mixer": ("attention",), "pos": ("learned", "rope", "none"),
           "norm": ("layernorm", "rmsnorm"), "mlp": ("gelu", "swiglu", "none"),
           "input": ("tokens", "vectors", "both"), "head": ("lm", "tag", "regress", "classify"),
           "pool": ("mean", "last", "first")}
# Keys of the inputs and head; "auto" (and a config from before them) reads
# tokens and predicts the next one.
IO_DEFAULTS = {"input": "tokens", "n_in": 0, "head": "lm", "n_out": 0, "pool": "last"}
TRAIN_STEPS = 10          # AdamW steps recorded in "losses"
DROP_TARGET = 0.2         # share of targets set to -1 (ignored)
INIT_STD = 0.02
TOLERANCES = {"tol_loss": "1e-5", "tol_grad": "1e-4", "tol_losses": "1e-4"}
DTYPES = {"float64": torch.float64, "float32": torch.float32}


# ---------------------------------------------------------------- config

def flat_options(raw, where):
    """The attention window and n_kv_heads as the flat keys this oracle reads.

    Checkpoints written since mixers own their options store every layer as
    {"mixer": NAME, option: value, ...} in layer_mixers (docs/formats.md);
    older ones, and this file's own configs, have a flat "window" (and
    "n_kv_heads", 0 or absent meaning n_heads).
    """
    layers = raw.get("layer_mixers") or []
    if not layers or not all(isinstance(e, dict) for e in layers):
        return raw
    windows = {e.get("window") for e in layers}
    kv_heads = {e.get("n_kv_heads", 0) for e in layers}
    if any(e.get("mixer") != "attention" for e in layers) or len(windows) != 1 or len(kv_heads) != 1:
        raise ValueError(f"{where}: layer_mixers {layers}: the oracle has attention layers "
                         "with one window and one n_kv_heads only")
    cfg = dict(raw)
    cfg["window"] = windows.pop()
    cfg["n_kv_heads"] = kv_heads.pop()
    cfg["layer_mixers"] = [e["mixer"] for e in layers]
    return cfg


def parse_config(raw, where="config"):
    """Check and normalise a config dict; returns a new dict with d_ff resolved.

    Only the keys listed above matter; others (out_dir, eval_every, ...) are
    the engine's business and are kept as they are.
    """
    raw = flat_options(raw, where)
    missing = [k for k in MODEL_KEYS + TRAIN_KEYS if k not in raw]
    if missing:
        raise ValueError(f"{where}: missing keys {', '.join(missing)}")
    cfg = dict(raw)
    for key, default in IO_DEFAULTS.items():
        if cfg.get(key, "auto") == "auto":
            cfg[key] = default
    for key, allowed in CHOICES.items():
        if cfg[key] not in allowed:
            raise ValueError(f"{where}: {key} = {cfg[key]!r}, expected one of {allowed}")
    if any(m != "attention" for m in cfg.get("layer_mixers") or []):
        raise ValueError(f"{where}: layer_mixers {cfg['layer_mixers']}: the oracle has attention only")
    for key in ("bias", "tie_embeddings", "causal"):
        cfg[key] = bool(cfg[key])
    if cfg["dropout"] != 0:
        raise ValueError(f"{where}: dropout = {cfg['dropout']}, parity needs 0")
    if cfg["d_model"] % cfg["n_heads"]:
        raise ValueError(f"{where}: n_heads {cfg['n_heads']} does not divide d_model {cfg['d_model']}")
    if cfg["pos"] == "rope" and (cfg["d_model"] // cfg["n_heads"]) % 2:
        raise ValueError(f"{where}: rope needs an even head size")
    if cfg["input"] != "tokens" and cfg["n_in"] < 1:
        raise ValueError(f"{where}: input {cfg['input']} needs n_in >= 1")
    if cfg["head"] != "lm" and cfg["n_out"] < 1:
        raise ValueError(f"{where}: head {cfg['head']} needs n_out >= 1")
    cfg["n_kv_heads"] = cfg.get("n_kv_heads", 0) or cfg["n_heads"]
    if cfg["n_heads"] % cfg["n_kv_heads"]:
        raise ValueError(f"{where}: n_kv_heads {cfg['n_kv_heads']} does not divide n_heads")
    cfg["d_ff"] = cfg["d_ff"] or 4 * cfg["d_model"]
    return cfg


# ---------------------------------------------------------------- parameters

def _norm_shapes(cfg, prefix):
    """A norm has a bias only as a layernorm in a model with biases."""
    shapes = [(f"{prefix}.weight", (cfg["d_model"],))]
    if cfg["norm"] == "layernorm" and cfg["bias"]:
        shapes.append((f"{prefix}.bias", (cfg["d_model"],)))
    return shapes


def _linear_shapes(cfg, prefix, n_out, n_in):
    """Weight [out, in] as in torch.nn.Linear, bias [out] if the config has biases."""
    shapes = [(f"{prefix}.weight", (n_out, n_in))]
    if cfg["bias"]:
        shapes.append((f"{prefix}.bias", (n_out,)))
    return shapes


def param_shapes(cfg):
    """Every parameter's name and shape in canonical order (the checkpoint contract)."""
    d, ff = cfg["d_model"], cfg["d_ff"]
    shapes = []
    if cfg["input"] != "vectors":
        shapes.append(("embed.weight", (cfg["vocab_size"], d)))
    if cfg["input"] != "tokens":
        shapes.append(("in.weight", (d, cfg["n_in"])))
    if cfg["pos"] == "learned":
        shapes.append(("pos.weight", (cfg["max_seq_len"], d)))
    for i in range(cfg["n_layers"]):
        b = f"blocks.{i}"
        shapes += _norm_shapes(cfg, f"{b}.norm1")
        kv = cfg["n_kv_heads"] * (d // cfg["n_heads"])
        shapes += _linear_shapes(cfg, f"{b}.mixer.qkv", d + 2 * kv, d)
        shapes += _linear_shapes(cfg, f"{b}.mixer.out", d, d)
        if cfg["mlp"] != "none":
            shapes += _norm_shapes(cfg, f"{b}.norm2")
            fc1_out = 2 * ff if cfg["mlp"] == "swiglu" else ff
            shapes += _linear_shapes(cfg, f"{b}.mlp.fc1", fc1_out, d)
            shapes += _linear_shapes(cfg, f"{b}.mlp.fc2", d, ff)
    shapes += _norm_shapes(cfg, "norm")
    if cfg["head"] != "lm":
        shapes += [("head.weight", (cfg["n_out"], d)), ("head.bias", (cfg["n_out"],))]
    elif not cfg["tie_embeddings"]:
        shapes.append(("head.weight", (cfg["vocab_size"], d)))
    return shapes


def init_params(cfg):
    """Fresh float32 parameters: N(0, 0.02) weights, unit norm weights, zero biases."""
    gen = torch.Generator().manual_seed(int(cfg["seed"]))
    params = {}
    for name, shape in param_shapes(cfg):
        if name.endswith(".bias"):
            params[name] = torch.zeros(shape)
        elif len(shape) == 1:
            params[name] = torch.ones(shape)
        else:
            params[name] = torch.randn(shape, generator=gen) * INIT_STD
    return params


def params_from_tensors(cfg, tensors, where):
    """Map checkpoint tensors onto the model, failing on any name or shape mismatch.

    adam.m.* / adam.v.* are optimizer state and ignored; anything else unknown
    is an error, since a misnamed tensor would otherwise go unnoticed.
    """
    expected = dict(param_shapes(cfg))
    extra = [n for n in tensors if n not in expected and not n.startswith(("adam.m.", "adam.v."))]
    missing = [n for n in expected if n not in tensors]
    if extra or missing:
        raise ValueError(f"{where}: missing tensors {missing}, unexpected tensors {extra}")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape or tensors[name].dtype != np.float32:
            raise ValueError(f"{where}: tensor '{name}' is {tensors[name].dtype} "
                             f"{list(tensors[name].shape)}, expected float32 {list(shape)}")
    return {name: torch.from_numpy(tensors[name].copy()) for name in expected}


def load_checkpoint(path):
    """Read a checkpoint; returns (config, {name: float32 tensor}, metadata)."""
    tensors, meta = safetensors_io.read(path)
    if "config" not in meta:
        raise ValueError(f"{path}: no 'config' in __metadata__")
    cfg = parse_config(json.loads(meta["config"]), f"{path} (metadata config)")
    return cfg, params_from_tensors(cfg, tensors, path), meta


def save_checkpoint(path, raw_cfg, params, step=0):
    """Write params the way the C engine does, with the config as given and the step in metadata."""
    cfg = parse_config(raw_cfg, path)
    tensors = {name: params[name].detach().to(torch.float32).numpy() for name, _ in param_shapes(cfg)}
    safetensors_io.write(path, tensors, {"config": json.dumps(raw_cfg), "step": str(step)})


# ---------------------------------------------------------------- model

def norm(x, params, prefix, cfg):
    """Pre-norm over the last dim: layernorm (bias if present) or rmsnorm (never a bias)."""
    weight = params[f"{prefix}.weight"]
    if cfg["norm"] == "layernorm":
        return F.layer_norm(x, (x.shape[-1],), weight, params.get(f"{prefix}.bias"), cfg["norm_eps"])
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["norm_eps"]) * weight


def linear(x, params, prefix):
    """x @ W^T (+ b), with the bias looked up by name so configs without biases just skip it."""
    return F.linear(x, params[f"{prefix}.weight"], params.get(f"{prefix}.bias"))


def rope(x, theta):
    """Rotate [.., T, dh] by position, rotate_half convention: pairs (j, j + dh/2)."""
    t_len, dh = x.shape[-2], x.shape[-1]
    half = dh // 2
    inv_freq = theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / dh)
    angle = torch.arange(t_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def visible(t_len, causal, window):
    """[T, T] bool: may query t see key s (causal: s <= t; window w: distance < w)."""
    t = torch.arange(t_len)[:, None]
    s = torch.arange(t_len)[None, :]
    mask = s <= t if causal else torch.ones(t_len, t_len, dtype=torch.bool)
    if window > 0:
        mask = mask & ((t - s).abs() < window)
    return mask


def attention(h, params, prefix, cfg):
    """Multi-head softmax attention over h [B, T, D]; returns [B, T, D]."""
    b, t_len, d = h.shape
    n_heads = cfg["n_heads"]
    n_kv, dh = cfg["n_kv_heads"], d // n_heads
    qkv = linear(h, params, f"{prefix}.qkv")
    q, k, v = (z.reshape(b, t_len, -1, dh).transpose(1, 2)
               for z in qkv.split((d, n_kv * dh, n_kv * dh), -1))
    # Grouped-query: query head h reads key/value head h // (H / G).
    k, v = (z.repeat_interleave(n_heads // n_kv, dim=1) for z in (k, v))
    if cfg["pos"] == "rope":
        q, k = rope(q, cfg["rope_theta"]), rope(k, cfg["rope_theta"])
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // n_heads)
    scores = scores.masked_fill(~visible(t_len, cfg["causal"], cfg["window"]), float("-inf"))
    o = scores.softmax(-1) @ v
    return linear(o.transpose(1, 2).reshape(b, t_len, d), params, f"{prefix}.out")


def mlp(h, params, prefix, cfg):
    """Channel MLP: GELU (tanh approximation) or SwiGLU (silu(first half) * second half)."""
    a = linear(h, params, f"{prefix}.fc1")
    if cfg["mlp"] == "swiglu":
        gate, up = a.split(cfg["d_ff"], -1)
        a = F.silu(gate) * up
    else:
        a = F.gelu(a, approximate="tanh")
    return linear(a, params, f"{prefix}.fc2")


def read_in(params, cfg, tokens, vectors):
    """First hidden states [B, T, D]: token rows of embed.weight, vectors through in.weight,
    or with input both, a vector where the token id is -1 and the token elsewhere."""
    if cfg["input"] == "tokens":
        return params["embed.weight"][tokens]
    from_vectors = vectors.to(params["in.weight"].dtype) @ params["in.weight"].T
    if cfg["input"] == "vectors":
        return from_vectors
    is_vec = (tokens < 0)[..., None]
    return torch.where(is_vec, from_vectors, params["embed.weight"][tokens.clamp(min=0)])


def trunk(params, cfg, x):
    """Positions, blocks and the final norm over first hidden states x [B, T, D]."""
    if cfg["pos"] == "learned":
        x = x + params["pos.weight"][: x.shape[1]]
    for i in range(cfg["n_layers"]):
        b = f"blocks.{i}"
        x = x + attention(norm(x, params, f"{b}.norm1", cfg), params, f"{b}.mixer", cfg)
        if cfg["mlp"] != "none":
            x = x + mlp(norm(x, params, f"{b}.norm2", cfg), params, f"{b}.mlp", cfg)
    return norm(x, params, "norm", cfg)


def head_of(params, cfg, x):
    """The head's linear map of [.., D]: logits over the vocabulary (lm) or n_out outputs."""
    if cfg["head"] == "lm":
        head = params["embed.weight"] if cfg["tie_embeddings"] else params["head.weight"]
        return x @ head.T
    return x @ params["head.weight"].T + params["head.bias"]


def forward(params, cfg, tokens):
    """Logits [B, T, V] for int tokens [B, T]."""
    return head_of(params, cfg, trunk(params, cfg, read_in(params, cfg, tokens, None)))


def forward_rows(params, cfg, batch):
    """Outputs of a batch whose row b holds its first lengths[b] positions, each row run
    alone: [sum of lengths, C] per position (lm, tag, regress), or [B, n_out] (classify)."""
    outs = []
    for b, length in enumerate(batch["lengths"].tolist()):
        tok = batch["tokens"][b:b + 1, :length] if batch["tokens"] is not None else None
        vec = batch["vectors"][b:b + 1, :length] if batch["vectors"] is not None else None
        h = trunk(params, cfg, read_in(params, cfg, tok, vec))[0]
        if cfg["head"] == "classify":
            h = {"mean": h.mean(0), "last": h[-1], "first": h[0]}[cfg["pool"]][None]
        outs.append(head_of(params, cfg, h))
    return torch.cat(outs)


def rows_of(batch, name):
    """A per-position array's counted rows, in forward_rows's order."""
    return torch.cat([batch[name][b, :n] for b, n in enumerate(batch["lengths"].tolist())])


def batch_loss(out, cfg, batch):
    """Cross-entropy over targets that are not -1 (lm, tag, classify); MSE over the values
    of positions whose mask is 1 (regress)."""
    if cfg["head"] == "regress":
        keep = rows_of(batch, "mask").bool()
        return ((out - rows_of(batch, "values").to(out.dtype))[keep] ** 2).mean()
    targets = batch["targets"] if cfg["head"] == "classify" else rows_of(batch, "targets")
    return F.cross_entropy(out, targets.long(), ignore_index=-1)


def loss_of(logits, targets):
    """Mean cross-entropy over positions whose target is not -1."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(),
                           ignore_index=-1)


# ---------------------------------------------------------------- training

def lr_at(step, cfg):
    """Learning rate of update `step` (0-based): linear warmup, then cosine to min_lr."""
    lr, min_lr, warmup = cfg["lr"], cfg["min_lr"], cfg["warmup_steps"]
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, max(0.0, (step - warmup) / max(1, cfg["steps"] - warmup)))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * p))


def make_optimizer(params, cfg):
    """torch AdamW with decay on 2-D weights only (embeddings, head, linear weights)."""
    decay = [p for p in params.values() if p.dim() == 2]
    no_decay = [p for p in params.values() if p.dim() != 2]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                             eps=cfg["adam_eps"])


def train_losses(params, cfg, loss_fn, n_steps):
    """Run n_steps clip + AdamW updates on one batch; the loss before each step."""
    opt = make_optimizer(params, cfg)
    losses = []
    for step in range(n_steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(params)
        losses.append(loss.item())
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), cfg["grad_clip"])
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        opt.step()
    return losses


# ---------------------------------------------------------------- fixture

def draw_batch(vocab, batch, seq, seed):
    """Deterministic batch: uniform tokens and targets, ~20% of targets -1.

    Position (0, 0) always keeps its target so the mean loss is defined.
    """
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (batch, seq), generator=gen)
    targets = torch.randint(0, vocab, (batch, seq), generator=gen)
    drop = torch.rand(batch, seq, generator=gen, dtype=torch.float64) < DROP_TARGET
    drop[0, 0] = False
    return tokens, targets.masked_fill(drop, -1)


def as_leaves(params, dtype):
    """Copies of the parameters in dtype that autograd tracks."""
    return {n: p.detach().to(dtype).clone().requires_grad_(True) for n, p in params.items()}


def draw_io_batch(cfg, batch, seq, seed):
    """A batch for any inputs and head: tokens (-1 at about a third of the positions with
    input both), vectors N(0, 1), row lengths in [1, T] (the first row T), targets with ~20%
    -1 (one per row for classify), values N(0, 1) with ~20% of the positions masked out."""
    gen = torch.Generator().manual_seed(seed)
    classes = cfg["vocab_size"] if cfg["head"] == "lm" else cfg["n_out"]
    out = {"tokens": None, "vectors": None, "targets": None, "values": None, "mask": None}
    tokens = torch.randint(0, max(cfg["vocab_size"], 1), (batch, seq), generator=gen)
    if cfg["input"] == "both":
        tokens = tokens.masked_fill(torch.rand(batch, seq, generator=gen) < 1 / 3, -1)
    if cfg["input"] != "vectors":
        out["tokens"] = tokens
    if cfg["input"] != "tokens":
        out["vectors"] = torch.randn(batch, seq, cfg["n_in"], generator=gen)
    lengths = torch.randint(1, seq + 1, (batch,), generator=gen)
    lengths[0] = seq
    out["lengths"] = lengths
    if cfg["head"] == "regress":
        out["values"] = torch.randn(batch, seq, cfg["n_out"], generator=gen)
        mask = torch.rand(batch, seq, generator=gen) >= DROP_TARGET
        mask[0, 0] = True
        out["mask"] = mask.to(torch.uint8)
    elif cfg["head"] == "classify":
        out["targets"] = torch.randint(0, classes, (batch,), generator=gen)
    else:
        targets = torch.randint(0, classes, (batch, seq), generator=gen)
        drop = torch.rand(batch, seq, generator=gen) < DROP_TARGET
        drop[0, 0] = False
        out["targets"] = targets.masked_fill(drop, -1)
    return out


def make_io_fixture(args, cfg, params32, batch, seq, seed):
    """The fixture of a model other than tokens -> lm: its batch arrays, outputs, loss,
    every gradient and the losses of TRAIN_STEPS AdamW steps."""
    data = draw_io_batch(cfg, batch, seq, seed)
    params = as_leaves(params32, DTYPES[args.dtype])
    outputs = forward_rows(params, cfg, data)
    loss = batch_loss(outputs, cfg, data)
    loss.backward()
    out = {"lengths": data["lengths"].to(torch.int32).numpy(),
           "outputs": outputs.detach().float().numpy(), "loss": np.array([loss.item()], np.float32)}
    kinds = {"tokens": np.int32, "targets": np.int32, "vectors": np.float32, "values": np.float32,
             "mask": np.uint8}
    for name, kind in kinds.items():
        if data[name] is not None:
            out[name] = data[name].numpy().astype(kind)
    for name, p in params.items():
        out[f"grad.{name}"] = p.grad.float().numpy()
    losses = train_losses(as_leaves(params32, DTYPES[args.dtype]), cfg,
                          lambda p: batch_loss(forward_rows(p, cfg, data), cfg, data), TRAIN_STEPS)
    out["losses"] = np.array(losses, np.float32)
    return out, loss.item(), losses


def make_fixture(args):
    """Compute and write the reference for one checkpoint (the --ckpt mode)."""
    cfg, params32, _ = load_checkpoint(args.ckpt)
    batch = args.batch or cfg["batch_size"]
    seq = args.seq or cfg["seq_len"]
    seed = cfg["seed"] if args.seed is None else args.seed
    if cfg["pos"] == "learned" and seq > cfg["max_seq_len"]:
        raise ValueError(f"--seq {seq} exceeds max_seq_len {cfg['max_seq_len']}")
    if cfg["input"] != "tokens" or cfg["head"] != "lm":
        out, loss_value, losses = make_io_fixture(args, cfg, params32, batch, seq, seed)
    else:
        out, loss_value, losses = make_lm_fixture(args, cfg, params32, batch, seq, seed)
    meta = {"seed": str(seed), "torch_version": torch.__version__, "dtype": args.dtype,
            "ckpt": os.path.basename(args.ckpt), "generator": "tools/oracle.py",
            "batch": str(batch), "seq": str(seq), "train_steps": str(TRAIN_STEPS),
            "schedule_steps": str(cfg["steps"]), **TOLERANCES}
    safetensors_io.write(args.out, out, meta)
    print(f"{args.out}: loss {loss_value:.6f}, losses[-1] {losses[-1]:.6f}, dtype {args.dtype}")


def make_lm_fixture(args, cfg, params32, batch, seq, seed):
    """The fixture of a token -> lm model: tokens, targets, logits [B, T, V], loss, every
    gradient and the losses of TRAIN_STEPS AdamW steps."""
    tokens, targets = draw_batch(cfg["vocab_size"], batch, seq, seed)
    params = as_leaves(params32, DTYPES[args.dtype])
    logits = forward(params, cfg, tokens)
    loss = loss_of(logits, targets)
    loss.backward()
    out = {"tokens": tokens.to(torch.int32).numpy(), "targets": targets.to(torch.int32).numpy(),
           "logits": logits.detach().float().numpy(), "loss": np.array([loss.item()], np.float32)}
    for name, p in params.items():
        out[f"grad.{name}"] = p.grad.float().numpy()
    losses = train_losses(as_leaves(params32, DTYPES[args.dtype]), cfg,
                          lambda p: loss_of(forward(p, cfg, tokens), targets), TRAIN_STEPS)
    out["losses"] = np.array(losses, np.float32)
    return out, loss.item(), losses


def make_init(args):
    """Write a freshly initialised checkpoint (the --init mode), for tests without the C engine."""
    with open(args.init) as f:
        raw = json.load(f)
    params = init_params(parse_config(raw, args.init))
    save_checkpoint(args.out, raw, params)
    print(f"{args.out}: {sum(p.numel() for p in params.values())} parameters")


# ---------------------------------------------------------------- self-test

def naive_attention(h, params, prefix, cfg):
    """Attention by explicit loops and scalar math: the reference for `attention`."""
    b_len, t_len, d = h.shape
    n_heads = cfg["n_heads"]
    dh = d // n_heads
    qkv = linear(h, params, f"{prefix}.qkv").tolist()
    o = torch.zeros(b_len, t_len, d, dtype=h.dtype)

    group = n_heads // cfg["n_kv_heads"]

    def head_vec(b, t, which, hh):
        """Query head hh's q (0), k (1) or v (2) at (b, t), rotated if rope and q or k:
        rows are q's n_heads heads, then k's and v's n_kv_heads, and head hh reads
        key/value head hh // group."""
        base = 0 if which == 0 else d + (which - 1) * (d // group)
        g = hh if which == 0 else hh // group
        vec = qkv[b][t][base + g * dh: base + (g + 1) * dh]
        if cfg["pos"] != "rope" or which == 2:
            return vec
        out = list(vec)
        for j in range(dh // 2):
            ang = t * cfg["rope_theta"] ** (-2.0 * j / dh)
            out[j] = vec[j] * math.cos(ang) - vec[j + dh // 2] * math.sin(ang)
            out[j + dh // 2] = vec[j + dh // 2] * math.cos(ang) + vec[j] * math.sin(ang)
        return out

    def sees(t, s):
        """Visibility straight from the spec's wording."""
        if cfg["causal"]:
            return s <= t and (cfg["window"] == 0 or t - s < cfg["window"])
        return cfg["window"] == 0 or abs(t - s) < cfg["window"]

    for b in range(b_len):
        for hh in range(n_heads):
            for t in range(t_len):
                q = head_vec(b, t, 0, hh)
                keys = [s for s in range(t_len) if sees(t, s)]
                sc = [sum(qi * ki for qi, ki in zip(q, head_vec(b, s, 1, hh))) / math.sqrt(dh)
                      for s in keys]
                top = max(sc)
                w = [math.exp(x - top) for x in sc]
                for s, ws in zip(keys, w):
                    v = head_vec(b, s, 2, hh)
                    for j in range(dh):
                        o[b, t, hh * dh + j] += ws / sum(w) * v[j]
    return linear(o, params, f"{prefix}.out")


def tiny_config(**overrides):
    """A config small enough for loops and gradcheck; overrides pick the variant."""
    cfg = {"vocab_size": 7, "d_model": 8, "n_layers": 2, "n_heads": 2, "d_ff": 12,
           "max_seq_len": 8, "mixer": "attention", "pos": "learned", "rope_theta": 10000.0,
           "norm": "layernorm", "norm_eps": 1e-5, "mlp": "gelu", "bias": True,
           "tie_embeddings": True, "causal": True, "window": 0, "dropout": 0.0,
           "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 3, "steps": 10, "weight_decay": 0.1,
           "beta1": 0.9, "beta2": 0.95, "adam_eps": 1e-8, "grad_clip": 1.0,
           "batch_size": 2, "seq_len": 6, "seed": 5}
    cfg.update(overrides)
    return parse_config(cfg, "selftest")


SELFTEST_VARIANTS = {
    "gpt": {"bias": False},
    "llama": {"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "tie_embeddings": False},
    "bidir": {"causal": False},
    "window": {"window": 3, "pos": "rope"},
    "bidir_window": {"causal": False, "window": 2, "pos": "none", "mlp": "none"},
    "gqa": {"n_heads": 4, "n_kv_heads": 2, "d_model": 16, "pos": "rope", "window": 3},
    "mqa": {"n_heads": 2, "n_kv_heads": 1},
}


def perturbed_params(cfg, dtype, seed):
    """Init params with noise on norms and biases too, so those gradients are exercised."""
    gen = torch.Generator().manual_seed(seed)
    return {n: (p + 0.3 * torch.randn(p.shape, generator=gen)).to(dtype)
            for n, p in init_params(cfg).items()}


def check_attention():
    """Vectorised attention vs the naive loops, every mask and position variant."""
    failures = []
    for name, over in SELFTEST_VARIANTS.items():
        cfg = tiny_config(**over)
        params = perturbed_params(cfg, torch.float64, 1)
        h = torch.randn(2, 7, cfg["d_model"], generator=torch.Generator().manual_seed(2),
                        dtype=torch.float64)
        fast = attention(h, params, "blocks.0.mixer", cfg)
        slow = naive_attention(h, params, "blocks.0.mixer", cfg)
        err = (fast - slow).abs().max().item()
        print(f"attention {name}: max |fast - naive| = {err:.2e}")
        if err > 1e-12:
            failures.append(f"attention {name}")
    return failures


def check_gradients():
    """torch.autograd.gradcheck of loss(params) in float64 for every variant."""
    failures = []
    for name, over in SELFTEST_VARIANTS.items():
        cfg = tiny_config(**over)
        params = perturbed_params(cfg, torch.float64, 3)
        tokens, targets = draw_batch(cfg["vocab_size"], 2, 6, 4)
        names = list(params)

        def loss_fn(*values, names=names, cfg=cfg, tokens=tokens, targets=targets):
            """gradcheck wants a function of positional tensors."""
            return loss_of(forward(dict(zip(names, values)), cfg, tokens), targets)

        inputs = tuple(params[n].requires_grad_(True) for n in names)
        ok = torch.autograd.gradcheck(loss_fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5,
                                      raise_exception=False)
        print(f"gradcheck {name}: {'ok' if ok else 'FAILED'} ({sum(p.numel() for p in inputs)} params)")
        if not ok:
            failures.append(f"gradcheck {name}")
    return failures


def check_schedule():
    """lr_at against hand-computed values for the parity schedule (lr 3e-3, warmup 3, 10 steps)."""
    cfg = tiny_config()
    expect = {0: 1e-3, 2: 3e-3, 3: 3e-3, 10: 3e-4, 50: 3e-4,
              5: 3e-4 + 0.5 * 2.7e-3 * (1 + math.cos(math.pi * 2 / 7))}
    bad = [s for s, v in expect.items() if abs(lr_at(s, cfg) - v) > 1e-15]
    print(f"schedule: {'ok' if not bad else f'wrong at steps {bad}'}")
    return [f"schedule steps {bad}"] if bad else []


def check_roundtrip(tmpdir):
    """safetensors write/read round trip, and a checkpoint through save/load."""
    path = os.path.join(tmpdir, "roundtrip.safetensors")
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([-1, 7], np.int32),
               "c": np.array([math.pi], np.float64), "s": np.zeros((), np.float32)}
    safetensors_io.write(path, tensors, {"k": "v"})
    back, meta = safetensors_io.read(path)
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
    ok = (meta == {"k": "v"} and header_len % 8 == 0 and list(back) == list(tensors)
          and all(back[n].dtype == tensors[n].dtype and np.array_equal(back[n], tensors[n])
                  for n in tensors))
    cfg = tiny_config(**SELFTEST_VARIANTS["llama"])
    params = init_params(cfg)
    save_checkpoint(path, cfg, params)
    cfg2, params2, meta2 = load_checkpoint(path)
    ok = ok and cfg2 == cfg and meta2["step"] == "0" and all(
        torch.equal(params[n], params2[n]) for n in params)
    print(f"safetensors round trip: {'ok' if ok else 'FAILED'}")
    return [] if ok else ["safetensors round trip"]


def selftest(tmpdir):
    """Run every check; returns the number of failures."""
    os.makedirs(tmpdir, exist_ok=True)
    failures = check_attention() + check_gradients() + check_schedule() + check_roundtrip(tmpdir)
    print("selftest: " + ("all ok" if not failures else "FAILED: " + ", ".join(failures)))
    return len(failures)


# ---------------------------------------------------------------- CLI

def parse_args(argv):
    """Command line; exactly one of --init, --ckpt, --selftest."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--init", metavar="CONFIG", help="config JSON: write an initialised checkpoint")
    mode.add_argument("--ckpt", metavar="CKPT", help="checkpoint: write a parity fixture")
    mode.add_argument("--selftest", action="store_true", help="check the oracle itself")
    ap.add_argument("--out", metavar="PATH", help="output file (checkpoint or fixture)")
    ap.add_argument("--batch", type=int, help="batch size (default: config batch_size)")
    ap.add_argument("--seq", type=int, help="sequence length (default: config seq_len)")
    ap.add_argument("--seed", type=int, help="batch seed (default: config seed)")
    ap.add_argument("--dtype", choices=tuple(DTYPES), default="float64", help="compute dtype")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--tmp", default="/tmp/oracle", help="scratch dir for --selftest")
    args = ap.parse_args(argv)
    if not args.selftest and not args.out:
        ap.error("--out is required with --init and --ckpt")
    return args


def main(argv=None):
    """Dispatch the mode; returns the process exit status."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.selftest:
        return 1 if selftest(args.tmp) else 0
    if args.init:
        make_init(args)
    else:
        make_fixture(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
