#!/usr/bin/env python3
"""An independent implementation of the synthetic tasks, written from
docs/tasks.md alone, that prints the golden batch hashes the C tests pin
(tests/synth_check.h: a batch of 4 rows, rng seed 7, each split; FNV-1a
over the tokens, then the targets, as little-endian 32-bit words; for
listops and bursty_classification, tests/synth_batch_check.h: the row
lengths, then the tokens, the vectors' float32 bits and the targets of
each row's positions, or its one target for classify; for the icl tasks,
tests/icl_check.h: FNV-1a over the vectors and values as little-endian
float32, the mask bytes, then the lengths as little-endian int64, and a
fourth batch of training at step 5000).

    python3 tools/check_tasks_doc.py          # prints and compares
    python3 tools/check_tasks_doc.py --stats  # listops' label and length distributions

Exits non-zero when a hash differs from the tests' goldens."""
import bisect
import math
import struct
import sys

M64 = (1 << 64) - 1
GOLDEN = {  # task, T -> hashes of the train, validation and test batches
    ("mqar", 64): (0x7a2b08287326f2df, 0x692e49b32aa6b76d, 0x0214901d98da577b),
    ("selective_copy", 64): (0x6efeb0da30e019a3, 0xec6e373f9777ab33, 0xd8bfb68b2397e473),
    ("induction_heads", 256): (0x50abbcbd53f4a4a6, 0x8e35182b54423b6f, 0x6490c6c5bc332c00),
    ("regbench", 256): (0x01e7908324ee46ba, 0x74ddb69a6e7b04e0, 0xe00b6308f6a3b629),
}
GOLDEN_IO = {  # task, T, options -> hashes, with row lengths, vectors, per-row targets
    ("listops", 2000, ()): (0x163d49f397df3e70, 0x4b4ba5c28b50dfd1, 0xcc8901060746765c),
    ("bursty_classification", 17, ()): (0xa615907310a6c4cf, 0x1e4af89b6dd11f86, 0x7423f73b51b82fe7),
    ("bursty_classification", 17, (("eval", "in_weights"),)): (
        0xa615907310a6c4cf,
        0xca31f5c0c698a703,
        0xb38f08d2721f0bf0,
    ),
}
ICL_GOLDEN = {  # task, T -> train at step 0, validation, test, train at step 5000
    ("icl_regression", 82): (0xf762d6956354e10a, 0x797f54ae35e9f6da, 0x099349de6564c2b1,
                             0xe13b898fac215cd1),
    ("icl_mixture", 82): (0xc11afa4db6906b84, 0x19f89f583d519efc, 0xe653ecd8d964903d,
                          0xccc236b1101dc67f),
}


def mix(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Rng:
    def __init__(self, seed):
        # splitmix64's outputs for counters seed, seed + g, ...: mix(seed + i g)
        self.s = [mix((seed + i * 0x9E3779B97F4A7C15) & M64) for i in range(4)]

    def u64(self):
        s = self.s
        out = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return out

    def below(self, n):
        m = self.u64() * n
        if (m & M64) < n:
            t = ((1 << 64) - n) % n
            while (m & M64) < t:
                m = self.u64() * n
        return m >> 64

    def unit(self):
        return (self.u64() >> 11) * 2.0**-53

    def normal(self):
        u1 = self.unit()
        u2 = self.unit()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)

    def distinct(self, lo, n, k):
        out = []
        while len(out) < k:
            x = lo + self.below(n)
            if x not in out:
                out.append(x)
        return out


def mqar(seed, T, V=8192, K=4, a=0.01, zero_filler=False):
    r = Rng(seed)
    keys = r.distinct(1, V // 2 - 1, K)
    values = r.distinct(V // 2, V - V // 2, K)
    tok, tgt = [0] * T, [-1] * T
    for j in range(K):
        tok[2 * j], tok[2 * j + 1] = keys[j], values[j]
    S = (T - 2 * K) // 2
    w = [math.pow(g + 1, a - 1) for g in range(S)]
    free = [True] * S
    for j in range(K):
        W = 0.0
        for g in range(S):
            if free[g]:
                W += w[g]
        x = r.unit() * W
        cum, pick = 0.0, None
        for g in range(S):
            if free[g]:
                cum += w[g]
                pick = g
                if x < cum:
                    break
        free[pick] = False
        tok[2 * K + 2 * pick], tgt[2 * K + 2 * pick] = keys[j], values[j]
    for t in range(2 * K, T):
        if tgt[t] < 0:
            tok[t] = 0 if zero_filler else r.below(V)
    return tok, tgt


def selective_copy(seed, T, V=16, M=16):
    r = Rng(seed)
    n = T - M
    data = [1 + r.below(V - 2) for _ in range(M)]
    pos = sorted(r.distinct(0, n, M))
    tok = [0] * n + [V - 1] * M
    tgt = [-1] * T
    for j in range(M):
        tok[pos[j]] = data[j]
        tgt[n + j] = data[j]
    return tok, tgt


def induction_heads(seed, T, V=16):
    r = Rng(seed)
    tok = [1 + r.below(V - 2) for _ in range(T - 1)] + [V - 1]
    p = r.below(T - 3)
    tok[p] = V - 1
    tgt = [-1] * (T - 1) + [tok[p + 1]]
    return tok, tgt


RB = dict(states=(4, 12), letters=(4, 18), edges=(1, 3), strings=(10, 19), len=(1, 49))


def rb_range(r, lh):
    return lh[0] + r.below(lh[1] - lh[0] + 1)


def rb_dfa(r):
    L = RB["letters"][1]
    n = rb_range(r, RB["states"])
    A = rb_range(r, RB["letters"])
    alphabet = r.distinct(0, L, A)
    nxt = [[-1] * L for _ in range(n)]
    for q in range(n):
        k = rb_range(r, RB["edges"])
        for i in r.distinct(0, A, k):
            nxt[q][alphabet[i]] = r.below(n)
    return nxt, L


def rb_class(nxt, L):
    n = len(nxt)
    block, count = [0] * n, 1
    while True:
        new, c = [None] * n, 0
        for q in range(n):
            for p in range(q):
                if block[p] == block[q] and all(
                    (nxt[p][a] < 0) == (nxt[q][a] < 0)
                    and (nxt[p][a] < 0 or block[nxt[p][a]] == block[nxt[q][a]])
                    for a in range(L)
                ):
                    new[q] = new[p]
                    break
            if new[q] is None:
                new[q] = c
                c += 1
        block = new
        if c == count:
            break
        count = c
    num, rep = {block[0]: 0}, [0]
    i = 0
    while i < len(rep):  # number the blocks first, then hash
        for a in range(L):
            x = nxt[rep[i]][a]
            if x >= 0 and block[x] not in num:
                num[block[x]] = len(rep)
                rep.append(x)
        i += 1
    h = 0
    for q in rep:
        for a in range(L):
            x = nxt[q][a]
            h = mix(h ^ (0 if x < 0 else num[block[x]] + 1))
    h %= 20
    return 2 if h == 0 else 1 if h == 1 else 0


def regbench(seed, T, split):
    r = Rng(seed)
    while True:
        nxt, L = rb_dfa(r)
        if rb_class(nxt, L) == split:
            break
    stream = []
    for _ in range(rb_range(r, RB["strings"])):  # drawn in full: the doc says cutting changes nothing
        q = 0
        for _ in range(rb_range(r, RB["len"])):
            out = [a for a in range(L) if nxt[q][a] >= 0]
            a = out[r.below(len(out))]
            stream.append(a)
            q = nxt[q][a]
        stream.append(L)
    tok = [stream[t] if t < len(stream) else L + 1 for t in range(T)]
    tgt = [stream[t + 1] if t + 1 < len(stream) else -1 for t in range(T)]
    return tok, tgt


LO = dict(max_depth=10, max_args=10, leaf_p=0.75, min_length=500, max_length=2000)
MIN, MAX, MED, SM, CLOSE, CLS = 10, 11, 12, 13, 14, 15


class TooLong(Exception):
    pass


def lo_value(op, args):
    a = sorted(args)
    if op == MIN:
        return a[0]
    if op == MAX:
        return a[-1]
    if op == SM:
        return sum(a) % 10
    k = len(a)
    return a[k // 2] if k % 2 else (a[k // 2 - 1] + a[k // 2]) // 2


def lo_node(r, depth, out, n):
    """Appends the node's tokens to out (n[0]: tokens with the open
    operators' closing brackets); returns its value."""
    if n[0] >= LO["max_length"]:
        raise TooLong
    if depth >= LO["max_depth"] or r.unit() < LO["leaf_p"]:
        d = r.below(10)
        out.append(d)
        n[0] += 1
        return d
    k = 2 + r.below(LO["max_args"] - 1)
    at = len(out)
    out.append(None)
    n[0] += 2
    args = [lo_node(r, depth + 1, out, n) for _ in range(k)]
    op = MIN + r.below(4)
    out[at] = op
    out.append(CLOSE)
    return lo_value(op, args)


def listops(seed, T):
    r = Rng(seed)
    while True:
        out = []
        try:
            v = lo_node(r, 1, out, [0])
        except TooLong:
            continue
        if LO["min_length"] < len(out) < LO["max_length"]:
            row = [CLS] + out
            return len(row), row, None, v


BC = dict(classes=1600, holdout_classes=100, dim=64, noise=0.1, zipf=1.0, p_bursty=0.9, context=8, shots=3)


def bc_tables(task_seed):
    K, H, D = BC["classes"], BC["holdout_classes"], BC["dim"]
    r = Rng(mix(mix(task_seed) ^ 3))
    proto = [[r.normal() for _ in range(D)] for _ in range(K + H)]
    cum, s = [], 0.0
    for c in range(K):
        s += math.pow(c + 1, -BC["zipf"])
        cum.append(s)
    return proto, cum


def bc_zipf(r, cum):
    x = r.unit() * cum[-1]
    return min(bisect.bisect_right(cum, x), len(cum) - 1)


def shuffle(r, a):
    for i in range(len(a) - 1, 0, -1):
        j = r.below(i + 1)
        a[i], a[j] = a[j], a[i]


def bursty(seed, T, mode, tables):
    proto, cum = tables
    K, H, D, N, s = BC["classes"], BC["holdout_classes"], BC["dim"], BC["context"], BC["shots"]
    r = Rng(seed)
    if mode == "train_dist":
        if r.unit() < BC["p_bursty"]:
            q = bc_zipf(r, cum)
            o = bc_zipf(r, cum)
            while o == q:
                o = bc_zipf(r, cum)
            cls = [q] * s + [o] * s + [bc_zipf(r, cum) for _ in range(N - 2 * s)]
            shuffle(r, cls)
            cls.append(q)
        else:
            cls = [bc_zipf(r, cum) for _ in range(N + 1)]
        lab = list(cls)
    elif mode == "in_weights":
        q = bc_zipf(r, cum)
        cls = []
        for _ in range(N):
            c = bc_zipf(r, cum)
            while c == q:
                c = bc_zipf(r, cum)
            cls.append(c)
        cls.append(q)
        lab = list(cls)
    else:
        h = r.distinct(K, H, 2)
        l = r.distinct(0, K, 2)
        way = [0] * (N // 2) + [1] * (N // 2)
        shuffle(r, way)
        way.append(r.below(2))
        cls = [h[w] for w in way]
        lab = [l[w] for w in way]
    L = 2 * N + 1
    tok = []
    for i in range(N):
        tok += [-1, lab[i]]
    tok.append(-1)
    vec = [0.0] * (L * D)
    for i in range(N + 1):
        for j in range(D):
            vec[2 * i * D + j] = proto[cls[i]][j] + BC["noise"] * r.normal()
    tgt = [-1] * (L - 1) + [lab[N]]
    return L, tok, vec, tgt


def row_seeds(split, B, rseed, n_held, task_seed, first=0):
    """Example seeds of a batch's rows: training from the rng, held-out row b
    example (first + b) mod n_held (docs/tasks.md, Splits)."""
    r = Rng(rseed)
    for row in range(B):
        if split == 0:
            yield r.u64()
        else:
            yield mix(mix(mix(task_seed) ^ split) ^ ((first + row) % n_held))


def fnv(h, words):
    for v in words:
        v &= 0xFFFFFFFF
        for k in range(4):
            h = ((h ^ ((v >> (8 * k)) & 0xFF)) * 1099511628211) & M64
    return h


def f32(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def batch_io(task, T, split, options, B=4, rseed=7, task_seed=0):
    opts = dict(options)
    if task == "listops":
        n_held = 2000
        make = lambda seed: listops(seed, T)
    else:
        n_held = 3000
        mode = "train_dist" if split == 0 else opts.get("eval", "in_context")
        tables = bc_tables(task_seed)
        make = lambda seed: bursty(seed, T, mode, tables)
    rows = [make(seed) for seed in row_seeds(split, B, rseed, n_held, task_seed)]
    h = fnv(1469598103934665603, [row[0] for row in rows])
    h = fnv(h, [x for row in rows for x in row[1]])
    h = fnv(h, [f32(x) for row in rows if row[2] is not None for x in row[2]])
    return fnv(h, [x for row in rows for x in (row[3] if isinstance(row[3], list) else [row[3]])])


def round32(x):
    """x rounded to the nearest float32, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


ICL = dict(dims=(5, 1, 20), points=(11, 2, 41), every=2000, weights=(1.0, 1.0, 1.0, 1.0),
           sparsity=3, hidden=100)


def icl_size(split, step):
    def grow(start, inc, end):
        if split != 0 or ICL["every"] == 0:
            return end
        return min(end, start + inc * (step // ICL["every"]))

    return grow(*ICL["dims"]), grow(*ICL["points"])


def icl_example(seed, d, p, mixture):
    r = Rng(seed)
    fam = 0
    if mixture:
        w = ICL["weights"]
        u = r.unit() * sum(w)
        cum = 0.0
        for f in range(4):
            if w[f] == 0:
                continue
            cum += w[f]
            fam = f
            if u < cum:
                break
    if fam == 0:
        w = [r.normal() for _ in range(d)]
        scale = math.sqrt(d) if mixture else 1.0
        f = lambda x: sum(w[j] * x[j] for j in range(d)) / scale
    elif fam == 1:
        s = min(ICL["sparsity"], d)
        coords = r.distinct(0, d, s)
        w = [r.normal() for _ in range(s)]
        f = lambda x: sum(w[t] * x[coords[t]] for t in range(s)) / math.sqrt(s)
    elif fam == 2:
        H = ICL["hidden"]
        W = [[r.normal() for _ in range(d)] for _ in range(H)]
        a = [r.normal() for _ in range(H)]

        def f(x):
            y = 0.0
            for h in range(H):
                z = sum(W[h][j] * x[j] for j in range(d))
                y += a[h] * max(z, 0.0)
            return y * math.sqrt(2.0 / (H * d))
    else:
        coord = [r.below(d) for _ in range(15)]
        leaf = [r.normal() for _ in range(16)]

        def f(x):
            n = 0
            while n < 15:
                n = 2 * n + 1 + (x[coord[n]] > 0)
            return leaf[n - 15]
    xs, ys = [], []
    for _ in range(p):
        x = [round32(r.normal()) for _ in range(d)]
        xs.append(x)
        ys.append(round32(f(x)))
    return xs, ys


def icl_batch(task, T, split, step, B=4, rseed=7, first=0, n_held=3000, task_seed=0):
    D = ICL["dims"][2]
    d, p = icl_size(split, step)
    vec, val, mask, lengths = [], [], [], []
    for seed in row_seeds(split, B, rseed, n_held, task_seed, first):
        xs, ys = icl_example(seed, d, p, task == "icl_mixture")
        for t in range(T):
            v, y, m = [0.0] * D, 0.0, 0
            if t < 2 * p and t % 2 == 0:
                v[:d], y, m = xs[t // 2], ys[t // 2], 1
            elif t < 2 * p:
                v[0] = ys[t // 2]
            vec += v
            val.append(y)
            mask.append(m)
        lengths.append(2 * p)
    data = struct.pack("<%df" % len(vec), *vec) + struct.pack("<%df" % len(val), *val)
    data += bytes(mask) + struct.pack("<%dq" % B, *lengths)
    h = 1469598103934665603
    for byte in data:
        h = ((h ^ byte) * 1099511628211) & M64
    return h


def listops_stats(n=20000):
    count, lengths = [0] * 10, []
    for s in range(n):
        L, _, _, v = listops(mix((1 << 32) + s), 2000)
        count[v] += 1
        lengths.append(L - 1)
    lengths.sort()
    print(f"listops, {n} rows: label shares " + " ".join(f"{c / n:.4f}" for c in count))
    q = [lengths[int(p * (n - 1))] for p in (0, 0.1, 0.25, 0.5, 0.75, 0.9, 1)]
    print(f"expression tokens: mean {sum(lengths) / n:.1f}, min/10/25/50/75/90%/max {q}")


def batch(task, T, split, B=4, rseed=7, first=0, n_held=3000, task_seed=0):
    tok, tgt = [], []
    for seed in row_seeds(split, B, rseed, n_held, task_seed, first):
        if task == "mqar":
            a, b = mqar(seed, T)
        elif task == "selective_copy":
            a, b = selective_copy(seed, T)
        elif task == "induction_heads":
            a, b = induction_heads(seed, T)
        else:
            a, b = regbench(seed, T, split)
        tok += a
        tgt += b
    return fnv(1469598103934665603, tok + tgt)


def main():
    if sys.argv[1:] == ["--stats"]:
        listops_stats()
        return 0
    bad = 0
    for (task, T), want in GOLDEN.items():
        for split in range(3):
            h = batch(task, T, split)
            ok = h == want[split]
            bad += not ok
            print(f"{task} split {split}: 0x{h:016x} {'ok' if ok else 'DIFFERS from 0x%016x' % want[split]}")
    for (task, T, options), want in GOLDEN_IO.items():
        for split in range(3):
            h = batch_io(task, T, split, options)
            ok = h == want[split]
            bad += not ok
            name = task + "".join(f" {k}={v}" for k, v in options)
            print(f"{name} split {split}: 0x{h:016x} {'ok' if ok else 'DIFFERS from 0x%016x' % want[split]}")
    for (task, T), want in ICL_GOLDEN.items():
        for case in range(4):
            split, step = (0, 5000) if case == 3 else (case, 0)
            h = icl_batch(task, T, split, step)
            ok = h == want[case]
            bad += not ok
            what = f"split {split} at step {step}"
            print(f"{task} {what}: 0x{h:016x} {'ok' if ok else 'DIFFERS from 0x%016x' % want[case]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
