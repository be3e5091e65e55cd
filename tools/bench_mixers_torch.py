#!/usr/bin/python3
"""PyTorch CPU baseline for one seqlab mixer layer: forward + backward at length T.

One layer of --mixer, fp32, written from src/mixers/*.c (same projections,
parameter shapes, gates and norms) and ../shared/PAPERS.md, timed as
forward + backward of x: [B, T, D] (requires_grad) with the loss a fixed
random projection of the output, sum(y * R). Median of --reps runs after one
warmup run. The last line printed is one JSON object.

  attention         qkv -> causal softmax(q k^T / sqrt(dh)) v, the T x T scores
                    materialised (what PyTorch 1.13 does on CPU) -> out
  linear_attention  qkv -> elu+1 on q, k -> S_t = S_{t-1} + k_t v_t^T (--normalize
                    adds the denominator recurrence) -> out
  retnet            qkv, RoPE on q, k, q / sqrt(dk), per-head decay
                    gamma_h = 1 - 2^(-5-h) -> gated RMSNorm with silu(x W_g) -> out
  gla               qkvz, q / sqrt(dk), gk = logsigmoid(x W1 W2 + b) / 16 per key
                    dim -> gated RMSNorm with silu(z) -> out
  deltanet          q, k, v each linear -> short causal depthwise conv (K=4) ->
                    silu; l2norm q, k per head; beta = sigmoid(x W_b) per head ->
                    delta rule -> RMSNorm per head -> out
  gated_deltanet    deltanet plus g = -exp(A_log) softplus(x W_a + dt_bias) per
                    head and the output gate silu(x W_gate)
  mamba2            [z | x | B | C | dt_in] = u W_in -> short causal depthwise conv
                    (K=4, with bias) on x, B, C -> silu; dt = softplus(dt_in +
                    dt_bias), per-head log decay g = -exp(A_log) dt; the SSD scan
                    H_t = exp(g_t) H_{t-1} + B_t (dt_t x_t)^T, y_t = H_t^T C_t, which is
                    the decayed recurrence with q = C, k = B, v = dt x; + D x ->
                    times silu(z) -> RMSNorm over D -> out
  transnormer       qkv; layer --layer of --n-layers (default 0 of 1): the lower
                    half DiagAttention, causal softmax(q k^T / sqrt(dk)) v inside
                    blocks of --block-size tokens (all blocks as one batched,
                    masked matmul); the upper half NormAttention, elu+1 on q, k ->
                    S_t = lambda_h S_{t-1} + k_t v_t^T (lambda_h = 1, or with --decay
                    TransNormerLLM's ALiBi-slope rates) -> RMSNorm over D -> out
  mamba             [x | z] = u W_in (E = 2D) -> short causal depthwise conv (K=4,
                    with bias) on x -> silu; [dt_low | B | C] = x W_x (rank
                    ceil(D/16), N = 16); dt = softplus(dt_low W_dt + dt_bias),
                    A = -exp(A_log) [E, N]; the selective scan as mamba's
                    selective_scan_ref: exp(dt A) and dt B x materialised for
                    every token ([B, T, E, N]), then a Python loop over tokens
                    s = dA_t s + dBx_t, y_t = s C_t (the token slices taken by
                    one unbind); + D x -> times silu(z) -> out
  mlstm             qkv, k / sqrt(dk); input gate it and log forget gate
                    lf = logsigmoid(x W_f + b + linspace(3, 6)) per head ->
                    xLSTM's stabilised matrix memory -> RMSNorm per head ->
                    times sigmoid(x W_o) -> out
  ponet             (non-causal) [q | k | o | s | l] = x W_in; per head g = mean_t q,
                    softmax_t(g . k_t / sqrt(dk)) pooling of k; segment max over
                    runs of PONET_SEGMENT tokens, max_pool1d of PONET_WINDOW
                    centred -> ((v + s') * o + l') -> out
  hydra             (non-causal) [z | x | B_f | C_f | B_b | C_b | dt_f | dt_b] = u W_in
                    -> centred depthwise conv1d (HYDRA_CONV taps, with bias;
                    --conv-size 0 removes it) -> silu; the mamba2 SSD forward and
                    over torch.flip'd inputs, each shifted one token, + x (x W_D + D)
                    -> RMSNorm over D times silu(z) -> out
  s4d               S4D's kernel K = 2 Re einsum(C (e^(dt A) - 1)/A, e^(l dt A))
                    over N/2 = 32 modes (the paper's s4d.py: the [D, N/2, T]
                    Vandermonde materialised), y = irfft(rfft(x, 2T) rfft(K, 2T))
                    + D x -> GELU -> out (2D, bias) -> GLU; naive: the complex
                    recurrence token by token
  h3                q, k, v (D each); k through the shift SSM, a causal depthwise
                    conv1d of 64 taps; times v; s4d's SSM (FFT form, + D); times
                    q -> out (head dimension 1)
  lstm              torch.nn.LSTM's kernel (torch.lstm: hidden D, one layer, what
                    nn.LSTM.forward calls) on seqlab's weights: bias_ih = bias,
                    bias_hh = 0; the output is h
  hgrn              i, f, g linear; forget gate sigmoid(f) (lower bound 0: the bench's
                    one layer), h_t = f_t h_{t-1} + (1 - f_t) silu(i_t) by the
                    chunkwise diagonal scan below (cumulative sums within chunks of
                    16 tokens, a loop over chunks), RMSNorm, times silu(g) -> out
  aaren             k, v linear; per head a learned query q_h, scores s = x A^T with
                    A_h = q_h W_k,h / sqrt(dk) (q folded into the key projection, as
                    the C mixer does); the prefix softmax o_t = sum_{i<=t}
                    softmax(s_{1..t})_i v_i by the blocked scan below -> out

  hyena             [x_0 | x_1 | v] = short conv (K=3, bias) of x W_in; v = h * (v x_1) +
                    skip (v x_1), FFT convolution (torch.fft.rfft/irfft, size 2T) with the
                    implicit filter (sine MLP on positional features, exponential window)
                    computed per call; y = (v x_0) W_out
  baseconv          y = (h * x)(x W^T + b) + x, h from the implicit filter (relu MLP on
                    positional features), FFT convolution
  lmu               u = x W_u + b_u; m = H * u by FFT (H[l] = A_bar^l B_bar, the impulse
                    response of the zero-order-hold Legendre system, a buffer made once by
                    doubling in float64, as LMUFormer keeps it); relu(m W_m + x W_x + b) W_out

The recurrent mixers use the chunkwise-parallel form the C library uses
(chunks of --chunk tokens): every intra-chunk quantity is computed for all
chunks at once as masked batched matmuls, and only the inter-chunk state
recurrence runs as a Python loop over chunks. Gates stay in log space; for
scalar (per-head) decays only differences gamma_i - gamma_j (j <= i) and
gamma_C - gamma_j are exponentiated, as in the C ops. GLA's per-key-dim
decay is factorised around the chunk's middle token m, (q e^(B - B_m))
(k e^(B_m - B))^T (the usual PyTorch formulation; the C op forms
e^(B_i - B_j) elementwise instead): exact in real arithmetic, finite unless
half a chunk's cumulative log decay passes about -88.
mLSTM: the chunk form of src/ops/mlstm.c. With b the in-chunk cumulative log
forget gate and D_ij = b_i - b_j + it_j (j <= i), the stabiliser entering each
chunk, m_prev, comes first from a loop over chunks on [B, H] scalars (no
gradient: m cancels exactly, so holding it fixed is the exact gradient); then
m_i = max(max_j D_ij, b_i + m_prev) and every weight e^(D_ij - m_i),
e^(b_i + m_prev - m_i) is batched over all chunks, the denominator riding as
an extra column of ones in v; the loop over chunks carries only the state
[C | n] (e^(b_L + m_prev - m_L) times the old one plus the chunk's
(e^(D_Lj - m_L) k_j)^T [v_j | 1]), and h = num / max(|den|, e^(-m)).
Aaren's prefix softmax, blocked as src/ops/prefix_softmax.c: per block of
--chunk tokens its aggregate (m_b = max s, u_b = sum e^(s - m_b), w_b =
sum e^(s - m_b) v); the carry entering block n combines the aggregates of
blocks j < n against M_n = max_{j<n} m_b (an [N, N] masked weight matrix,
batched); inside a block, with m_t = max(M_n, running max), the masked
weights e^(s_i - m_t) (i <= t) form a [C, C] matrix per block applied to
v, plus the carry scaled by e^(M_n - m_t); o = numerator / denominator.
DeltaNet (and gated): the WY/UT transform. With L = I + StrictLower(diag(beta)
(Gamma . K K^T)), T = L^-1, the chunk's U = T diag(beta) V and
W = T diag(beta e^gamma) K are obtained in one batched
torch.linalg.solve_triangular(L, [beta V | beta e^gamma K], unitriangular)
over all chunks (T applied without being formed); the loop then does
U' = U - W S, S <- e^gamma_C S + (e^(gamma_C - gamma) K)^T U', and
O = e^gamma Q S + (Q K^T . Gamma . causal) U' is batched after the loop.

--check runs each mixer on a tiny case (B 2, T 37, D 32, H 2; chunks 8, 5
and 64: ragged last chunks, and one padded chunk) through both the chunked
form and a naive per-token loop of the recurrence (per-query softmax for
attention) with the same weights, and compares the outputs and the
gradients of x and of every weight: chunked float64 against naive float64
(tolerance 1e-9 relative to the largest value), chunked float32 against
naive float64 (2e-4). Exit status 1 on a mismatch.

--sweep runs T in 1024 4096 16384 65536, each in its own subprocess (so that
peak memory is per point), one JSON line per T; attention is skipped above
T = 16384 (its T x T scores: H * T^2 * 4 bytes per copy, 68 GB at 64k).

peak_mb: the peak resident set size during the warmup and timed runs minus
the resident set size just before them (VmHWM after resetting it through
/proc/self/clear_refs; where that reset is refused, getrusage's ru_maxrss
minus the RSS before, which is only right in a fresh process). It counts
activations, autograd's saved tensors and gradients, and allocator slack.

Thread knobs must be in the environment before torch is loaded, so this
script sets them and only then imports torch (as tools/bench_torch.py).
Run it with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

MIXERS = ("attention", "linear_attention", "retnet", "gla", "deltanet", "gated_deltanet",
          "mamba2", "transnormer", "mlstm", "ponet", "hydra", "s4d", "h3", "lstm", "aaren",
          "mamba", "hyena", "baseconv", "lmu", "hgrn")
S4D_MODES = 32      # s4d, h3: d_state 64 / 2 complex modes
H3_SHIFT = 64       # h3: shift SSM taps
SWEEP_T = (1024, 4096, 16384, 65536)
ATTENTION_MAX_T = 16384
GATE_RANK = 16      # gla: rank of the gate projection
GATE_NORM = 16.0    # gla: logsigmoid(logit) / 16
NORM_EPS = 1e-5     # config default norm_eps
LINEAR_EPS = 1e-6   # linear_attention normaliser guard
L2_EPS = 1e-6       # l2norm: x / sqrt(sum x^2 + 1e-6)
FGATE_LO, FGATE_HI = 3.0, 6.0  # mlstm: forget-gate bias offsets, linear over the heads
M_FRESH = -1e30     # mlstm: m of a fresh state (stands for -inf, stays finite); aaren's
                    # running max before the first block
ROPE_THETA = 10000.0
INIT_STD = 0.02     # config default init_std
DT_RANGE = (1e-3, 0.1)   # dt_bias: softplus(dt_bias) log-uniform in this range
MAMBA_EXPAND, MAMBA_N = 2, 16  # mamba: E = 2D, N = 16 (dt rank ceil(D/16))
A_RANGE = {"gated_deltanet": (0.0, 16.0), "mamba2": (1.0, 16.0),
           "hydra": (1.0, 1.0)}  # A = exp(A_log) uniform
PONET_SEGMENT, PONET_WINDOW = 32, 3  # ponet's option defaults
HYDRA_CONV = 7      # hydra's conv_kernel default
DIAG_CHUNK = 16     # hgrn: tokens per chunk of the cumsum scan (see diag_scan_chunked)
N_LAYERS = 1        # out projections: std / sqrt(2 * n_layers)
HYENA = {"order": 2, "width": 64, "emb": 5}  # hyena's defaults: gates, filter MLP width, features
BASECONV_EMB, BASECONV_HIDDEN = 3, 16         # baseconv's implicit filter (the default kind)
LMU = {"order": 64, "theta": 128.0, "memory_d": 1}  # lmu's defaults
CHECK_SHAPE = {"B": 2, "T": 37, "D": 32, "H": 2, "K": 4}
CHECK_CHUNKS = (8, 5, 64)  # ragged last chunk; 64 > T: one padded chunk
# transnormer: which layer of how many (the kind), DiagAttention's block, the
# NormAttention decay; set from the command line, and per variant by --check.
TN = {"layer": 0, "n_layers": 1, "block": 64, "decay": False}

torch = None  # imported in main() after the thread environment is set
F = None


def parse_args(argv):
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixer", choices=MIXERS, help="the mixer (with --check: default all)")
    ap.add_argument("--seq", type=int, default=1024, help="sequence length T (default 1024)")
    ap.add_argument("--d-model", type=int, default=256, help="D (default 256)")
    ap.add_argument("--heads", type=int, default=4, help="H (default 4)")
    ap.add_argument("--chunk", type=int, default=64, help="chunk size C (default 64)")
    ap.add_argument("--conv-size", type=int, default=4,
                    help="delta rule and mamba2 short conv K (0 = none)")
    ap.add_argument("--batch", type=int, default=1, help="B (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    ap.add_argument("--reps", type=int, default=5, help="timed runs after 1 warmup (default 5)")
    ap.add_argument("--normalize", action="store_true",
                    help="linear_attention: divide by phi(q) . sum phi(k) (C default: off)")
    ap.add_argument("--layer", type=int, default=0,
                    help="transnormer: layer index (below n_layers/2: DiagAttention)")
    ap.add_argument("--n-layers", type=int, default=1, help="transnormer: layers (default 1)")
    ap.add_argument("--block-size", type=int, default=64,
                    help="transnormer: DiagAttention block (default 64)")
    ap.add_argument("--decay", action="store_true",
                    help="transnormer: NormAttention's per-head decay (C default: off)")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--sweep", action="store_true", help=f"T in {' '.join(map(str, SWEEP_T))}")
    ap.add_argument("--check", action="store_true",
                    help="chunked vs naive per-token recurrence on a tiny case; exit 1 on mismatch")
    a = ap.parse_args(argv)
    if not a.check and not a.mixer:
        ap.error("--mixer is required (except with --check)")
    if a.d_model % a.heads or (a.d_model // a.heads) % 2:
        ap.error("--d-model must split into --heads heads of even size")
    return a


def set_thread_env(threads):
    """One thread count for OpenMP and OpenBLAS, passive waiting (as tools/bench_torch.py)."""
    if "torch" in sys.modules:
        raise RuntimeError("thread environment must be set before torch is imported")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# ------------------------------------------------------------------ parameters

def param_shapes(mixer, D, H, K):
    """C parameter name -> (shape, init), init one of normal, out, ones, zeros, conv,
    alog (A_log of the mixer's A_RANGE), dtbias, unit (uniform(+-1/sqrt(D)), as
    nn.LSTM), fbias (LSTM bias: 1 on the forget block, 0 elsewhere), query
    (normal(1))."""
    dk = D // H
    if mixer == "lstm":
        return {"weight_ih": ((4 * D, D), "lstm"), "weight_hh": ((4 * D, D), "lstm"),
                "bias": ((4 * D,), "fbias")}
    if mixer == "hgrn":
        return {"i.weight": ((D, D), "normal"), "f.weight": ((D, D), "normal"),
                "g.weight": ((D, D), "normal"), "norm.weight": ((D,), "ones"),
                "out.weight": ((D, D), "out")}
    if mixer == "aaren":
        return {"query": ((H, dk), "query"), "k.weight": ((D, D), "normal"),
                "v.weight": ((D, D), "normal"), "out.weight": ((D, D), "out")}
    if mixer == "attention":
        return {"qkv.weight": ((3 * D, D), "normal"), "out.weight": ((D, D), "out")}
    if mixer == "transnormer":
        return {"qkv.weight": ((3 * D, D), "normal"), "norm.weight": ((D,), "ones"),
                "out.weight": ((D, D), "out")}
    if mixer == "s4d":
        M = S4D_MODES
        return {"log_dt": ((D,), "logdt"), "A.log_re": ((D, M), "s4d_re"),
                "A.im": ((D, M), "s4d_im"), "C": ((1, D, M, 2), "cnormal"), "D": ((D,), "unit"),
                "out.weight": ((2 * D, D), "out"), "out.bias": ((2 * D,), "zeros")}
    if mixer == "h3":
        M = S4D_MODES
        return {"q.weight": ((D, D), "normal"), "k.weight": ((D, D), "normal"),
                "v.weight": ((D, D), "normal"), "shift.weight": ((D, H3_SHIFT), "conv"),
                "ssm.log_dt": ((D,), "logdt"), "ssm.A.log_re": ((D, M), "s4d_re"),
                "ssm.A.im": ((D, M), "s4d_im"), "ssm.C": ((1, D, M, 2), "cnormal"),
                "ssm.D": ((D,), "unit"), "out.weight": ((D, D), "out")}
    if mixer == "linear_attention":
        return {"qkv.weight": ((3 * D, D), "normal"), "out.weight": ((D, D), "out")}
    if mixer == "retnet":
        return {"qkv.weight": ((3 * D, D), "normal"), "gate.weight": ((D, D), "normal"),
                "norm.weight": ((dk,), "ones"), "out.weight": ((D, D), "out")}
    if mixer == "mlstm":
        return {"qkv.weight": ((3 * D, D), "normal"), "gate.weight": ((2 * H, D), "normal"),
                "gate.bias": ((2 * H,), "zeros"), "norm.weight": ((dk,), "ones"),
                "ogate.weight": ((D, D), "normal"), "out.weight": ((D, D), "out")}
    if mixer == "gla":
        return {"qkvz.weight": ((4 * D, D), "normal"), "gate1.weight": ((GATE_RANK, D), "normal"),
                "gate2.weight": ((D, GATE_RANK), "normal"), "gate2.bias": ((D,), "zeros"),
                "norm.weight": ((dk,), "ones"), "out.weight": ((D, D), "out")}
    if mixer == "ponet":
        return {"in.weight": ((5 * D, D), "normal"), "out.weight": ((D, D), "out")}
    if mixer == "hydra":
        s = {"in.weight": ((6 * D + 2 * H, D), "normal")}
        if K > 0:
            s.update({"conv.weight": ((5 * D, HYDRA_CONV), "conv"),
                      "conv.bias": ((5 * D,), "zeros")})
        s.update({"A_log": ((H,), "alog"), "dt_bias": ((H,), "dtbias"), "D": ((H,), "ones"),
                  "fc_D.weight": ((H, D), "conv"), "norm.weight": ((D,), "ones"),
                  "out.weight": ((D, D), "out")})
        return s
    if mixer == "mamba":
        E, N, R = MAMBA_EXPAND * D, MAMBA_N, -(-D // 16)
        s = {"in.weight": ((2 * E, D), "normal")}
        if K > 0:
            s.update({"conv.weight": ((E, K), "conv"), "conv.bias": ((E,), "convbias")})
        s.update({"x.weight": ((R + 2 * N, E), "fanin"), "dt.weight": ((E, R), "fanin"),
                  "dt_bias": ((E,), "dtbias"), "A_log": ((E, N), "s4d"), "D": ((E,), "ones"),
                  "out.weight": ((D, E), "out")})
        return s
    if mixer == "mamba2":
        s = {"in.weight": ((4 * D + H, D), "normal")}
        if K > 0:
            s.update({"conv.weight": ((3 * D, K), "conv"), "conv.bias": ((3 * D,), "zeros")})
        s.update({"A_log": ((H,), "alog"), "dt_bias": ((H,), "dtbias"), "D": ((H,), "ones"),
                  "norm.weight": ((D,), "ones"), "out.weight": ((D, D), "out")})
        return s
    if mixer == "hyena":
        N, W, E = HYENA["order"], HYENA["width"], HYENA["emb"]
        s = {"in.weight": (((N + 1) * D, D), "normal"), "conv.weight": (((N + 1) * D, 3), "conv"),
             "conv.bias": (((N + 1) * D,), "zeros")}
        for j in range(3):
            s[f"filter.{j}.weight"] = ((W, W if j else E), "conv")
            s[f"filter.{j}.bias"] = ((W,), "zeros")
        s.update({"filter.freq": ((W,), "ones"), "filter.out.weight": (((N - 1) * D, W), "conv"),
                  "filter.skip": (((N - 1) * D,), "ones"), "out.weight": ((D, D), "out")})
        return s
    if mixer == "baseconv":
        return {"proj.weight": ((D, D), "normal"), "proj.bias": ((D,), "zeros"),
                "filter.0.weight": ((BASECONV_HIDDEN, BASECONV_EMB), "conv"),
                "filter.0.bias": ((BASECONV_HIDDEN,), "zeros"),
                "filter.1.weight": ((D, BASECONV_HIDDEN), "conv"), "filter.1.bias": ((D,), "zeros")}
    if mixer == "lmu":
        q, U = LMU["order"], LMU["memory_d"]
        return {"u.weight": ((U, D), "normal"), "u.bias": ((U,), "zeros"),
                "hm.weight": ((D, U * q), "normal"), "hx.weight": ((D, D), "normal"),
                "h.bias": ((D,), "zeros"), "out.weight": ((D, D), "out"), "out.bias": ((D,), "zeros")}
    s = {"q.weight": ((D, D), "normal"), "k.weight": ((D, D), "normal"),
         "v.weight": ((D, D), "normal")}
    if K > 0:
        s.update({n: ((D, K), "conv") for n in ("q_conv.weight", "k_conv.weight", "v_conv.weight")})
    s.update({"beta.weight": ((H, D), "normal"), "out_norm.weight": ((dk,), "ones"),
              "out.weight": ((D, D), "out")})
    if mixer == "gated_deltanet":
        s.update({"a.weight": ((H, D), "normal"), "A_log": ((H,), "alog"),
                  "dt_bias": ((H,), "dtbias"), "gate.weight": ((D, D), "normal")})
    return s


def make_params(mixer, D, H, K, gen, dtype, std=INIT_STD):
    """The C init (normal std, out std / sqrt(2L), norms 1, biases 0, conv U(+-1/sqrt K)
    (mamba's conv bias too), mamba's x and dt weights U(+-1/sqrt fan_in), its A_log
    log(1..N) in every row,
    A_log = log A with A uniform in A_RANGE, dt_bias = softplus^-1(dt) with dt
    log-uniform in DT_RANGE); a larger std for --check so that every path moves the
    output."""
    p = {}
    for name, (shape, init) in param_shapes(mixer, D, H, K).items():
        if init == "normal":
            t = torch.randn(shape, generator=gen) * std
        elif init == "out":
            t = torch.randn(shape, generator=gen) * (std / math.sqrt(2.0 * N_LAYERS))
        elif init == "ones":
            t = torch.ones(shape)
        elif init == "lstm":  # U(+-1/sqrt(D)), nn.LSTM's init
            t = (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(shape[1])
        elif init == "fbias":
            t = torch.zeros(shape)
            t[shape[0] // 4:shape[0] // 2] = 1.0
        elif init == "query":
            t = torch.randn(shape, generator=gen)
        elif init == "zeros":
            t = torch.zeros(shape)
        elif init == "unit":
            t = torch.randn(shape, generator=gen)
        elif init == "cnormal":  # complex normal: each part N(0, 1/2)
            t = torch.randn(shape, generator=gen) * math.sqrt(0.5)
        elif init == "logdt":
            lo, hi = DT_RANGE
            t = math.log(lo) + torch.rand(shape, generator=gen) * (math.log(hi) - math.log(lo))
        elif init == "s4d_re":  # S4D-Lin: Re A = -1/2
            t = torch.full(shape, math.log(0.5))
        elif init == "s4d_im":  # S4D-Lin: Im A = pi n
            t = math.pi * torch.arange(shape[1], dtype=torch.float32).expand(shape).clone()
        elif init == "conv":
            t = (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(shape[1])
        elif init == "convbias":
            t = (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(K)
        elif init == "fanin":
            t = (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(shape[1])
        elif init == "s4d":
            t = torch.log(torch.arange(1, shape[1] + 1, dtype=torch.float64)).expand(shape)
        elif init == "dtbias":
            lo, hi = DT_RANGE
            u = torch.rand(shape, generator=gen, dtype=torch.float64)
            dt = torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
            t = dt + torch.log(-torch.expm1(-dt))
        else:
            lo, hi = A_RANGE[mixer]
            u = torch.rand(shape, generator=gen, dtype=torch.float64)
            t = torch.log(hi - (hi - lo) * u)
        p[name] = t.to(dtype).requires_grad_(True)
    return p


# ------------------------------------------------------------------ shared pieces

def heads(x, H):
    """[B, T, H*d] -> [B, T, H, d]."""
    return x.reshape(x.shape[0], x.shape[1], H, -1)


def rope(x, theta=ROPE_THETA):
    """Rotate pairs (i, i + dk/2) of each head by t * theta^(-2i/dk). x: [B, T, H, dk]."""
    dk = x.shape[-1]
    half = dk // 2
    freq = theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / dk)
    ang = torch.arange(x.shape[1], dtype=torch.float64).unsqueeze(1) * freq
    c = torch.cos(ang).to(x.dtype)[None, :, None, :]
    s = torch.sin(ang).to(x.dtype)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


def rmsnorm_heads(o, w, eps=NORM_EPS):
    """o: [B, T, H, d] -> RMSNorm over d, times w: [d]."""
    return o * torch.rsqrt((o * o).mean(-1, keepdim=True) + eps) * w


def l2norm_heads(x):
    """x: [B, T, H, d] -> x / sqrt(sum x^2 + 1e-6) per head."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + L2_EPS)


def short_conv(x, w, b=None):
    """Causal depthwise conv, w: [D, K], w[:, K-1] on the current token, optional
    bias b: [D]. x: [B, T, D]."""
    K = w.shape[1]
    y = F.conv1d(x.transpose(1, 2), w.unsqueeze(1), b, padding=K - 1, groups=w.shape[0])
    return y[..., :x.shape[1]].transpose(1, 2)


def to_chunks(x, C):
    """[B, T, H, d] (or [B, T, H]) -> [B, H, N, C, d] ([B, H, N, C]), zero-padded to N*C.
    Padding after the last token changes no earlier output: it is causal, and a zero
    key / value / beta / log gate writes nothing and decays nothing."""
    B, T, H = x.shape[:3]
    N = -(-T // C)
    if N * C != T:
        pad = [0, 0] * (x.dim() - 3) + [0, 0, 0, N * C - T]
        x = F.pad(x, pad)
    x = x.reshape(B, N, C, H, *x.shape[3:])
    return x.permute(0, 3, 1, 2, *range(4, x.dim())) if x.dim() == 5 else x.permute(0, 3, 1, 2)


def from_chunks(o, T):
    """[B, H, N, C, d] -> [B, T, H, d]."""
    B, H, N, C, d = o.shape
    return o.permute(0, 2, 3, 1, 4).reshape(B, N * C, H, d)[:, :T]


def causal_mask(C, device=None, diagonal=0):
    """[C, C] bool, True where j <= i (+ diagonal)."""
    return torch.ones(C, C, dtype=torch.bool, device=device).tril(diagonal)


def decay_matrix(gam, C):
    """gam: [..., C] inclusive cumulative log decay -> Gamma_ij = exp(gam_i - gam_j), j <= i,
    0 above the diagonal; the masked differences are set to -inf before exp (no overflow)."""
    diff = gam.unsqueeze(-1) - gam.unsqueeze(-2)
    return torch.exp(diff.masked_fill(~causal_mask(C, gam.device), float("-inf")))


# ------------------------------------------------------------------ K2: decayed recurrence

def recurrence_chunked(q, k, v, g, C):
    """S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t, chunkwise-parallel.
    q, k: [B, T, H, dk], v: [B, T, H, dv]; g: None, [B, T, H, 1] (per head) or
    [B, T, H, dk] (per key dim), log decay <= 0. -> o: [B, T, H, dv]."""
    T = q.shape[1]
    qc, kc, vc = to_chunks(q, C), to_chunks(k, C), to_chunks(v, C)   # [B, H, N, C, d]
    mask = causal_mask(C, q.device)
    if g is None:
        A = (qc @ kc.transpose(-1, -2)).masked_fill(~mask, 0.0)
        q_in, k_out, decay = qc, kc, None
    elif g.shape[-1] == 1:
        gam = to_chunks(g, C)[..., 0].cumsum(-1)                       # [B, H, N, C]
        A = (qc @ kc.transpose(-1, -2)) * decay_matrix(gam, C)
        q_in = qc * torch.exp(gam).unsqueeze(-1)
        k_out = kc * torch.exp(gam[..., -1:] - gam).unsqueeze(-1)
        decay = torch.exp(gam[..., -1]).unsqueeze(-1).unsqueeze(-1)   # [B, H, N, 1, 1]
    else:
        Bc = to_chunks(g, C).cumsum(-2)                                 # [B, H, N, C, dk]
        ref = Bc[..., C // 2:C // 2 + 1, :]
        A = ((qc * torch.exp(Bc - ref)) @ (kc * torch.exp(ref - Bc)).transpose(-1, -2))
        A = A.masked_fill(~mask, 0.0)
        b = Bc[..., -1:, :]
        q_in = qc * torch.exp(Bc)
        k_out = kc * torch.exp(b - Bc)
        decay = torch.exp(b).transpose(-1, -2)                          # [B, H, N, dk, 1]
    intra = A @ vc
    kv = k_out.transpose(-1, -2) @ vc                                   # [B, H, N, dk, dv]
    # The inter-chunk recurrence: S_n, the state entering chunk n.
    S = torch.zeros_like(kv[:, :, 0])
    states = []
    kvs = kv.unbind(2)
    decays = decay.unbind(2) if decay is not None else None
    for n in range(len(kvs)):
        states.append(S)
        S = (S * decays[n] if decays is not None else S) + kvs[n]
    Sn = torch.stack(states, 2)                                         # [B, H, N, dk, dv]
    return from_chunks(q_in @ Sn + intra, T)


def recurrence_naive(q, k, v, g):
    """The same recurrence token by token (the oracle)."""
    B, T, H, dk = q.shape
    S = torch.zeros(B, H, dk, v.shape[-1], dtype=q.dtype)
    out = []
    for t in range(T):
        if g is not None:
            S = torch.exp(g[:, t]).unsqueeze(-1) * S
        S = S + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        out.append(torch.einsum("bhkv,bhk->bhv", S, q[:, t]))
    return torch.stack(out, 1)


# ------------------------------------------------------------------ hgrn: diagonal scan

def diag_scan_chunked(log_a, b, C):
    """h_t = exp(log_a_t) h_{t-1} + b_t per channel in O(T D): within chunks of
    DIAG_CHUNK tokens, h = exp(G) cumsum(b exp(-G)) with G the running sum of log_a (a
    zero carry), then a loop over chunks adds exp(G) times the carry. The short chunk
    bounds exp(-G) (a gate of 0.004 per token reaches float's range in 16 tokens); C,
    the matrix mixers' chunk, is not used. log_a, b: [B, T, D] -> h: [B, T, D]."""
    Bn, T, D = b.shape
    C = DIAG_CHUNK
    N = -(-T // C)
    pad = N * C - T
    G = F.pad(log_a, (0, 0, 0, pad)).reshape(Bn, N, C, D).cumsum(2)
    local = G.exp() * (F.pad(b, (0, 0, 0, pad)).reshape(Bn, N, C, D) * (-G).exp()).cumsum(2)
    h = torch.zeros(Bn, D, dtype=b.dtype)
    outs = []
    for n in range(N):
        o = local[:, n] + G[:, n].exp() * h[:, None]
        h = o[:, -1]
        outs.append(o)
    return torch.stack(outs, 1).reshape(Bn, N * C, D)[:, :T]


def diag_scan_naive(log_a, b):
    """The same recurrence token by token (the oracle)."""
    h = torch.zeros_like(b[:, 0])
    outs = []
    for t in range(b.shape[1]):
        h = log_a[:, t].exp() * h + b[:, t]
        outs.append(h)
    return torch.stack(outs, 1)


# ------------------------------------------------------------------ aaren: prefix softmax

def prefix_softmax_chunked(s, v, C):
    """o_t = sum_{i<=t} softmax(s_1..t)_i v_i, blocked (see the header).
    s: [B, T, H], v: [B, T, H, dv] -> o: [B, T, H, dv]."""
    T = s.shape[1]
    sc, vc = to_chunks(s, C), to_chunks(v, C)                        # [B, H, N, C(, dv)]
    N = sc.shape[2]
    mb = sc.amax(-1)                                                  # [B, H, N]
    before = causal_mask(N, s.device, -1)                             # j < n
    Mex = mb.unsqueeze(-2).expand(*mb.shape, N).transpose(-1, -2)
    Mex = Mex.masked_fill(~before, M_FRESH).amax(-1)                  # [B, H, N]
    m = torch.maximum(torch.cummax(sc, -1).values, Mex.unsqueeze(-1))  # [B, H, N, C]
    A = (sc.unsqueeze(-2) - m.unsqueeze(-1)).masked_fill(~causal_mask(C, s.device),
                                                         float("-inf")).exp()
    num, den = A @ vc, A.sum(-1)
    e = torch.exp(sc - mb.unsqueeze(-1))
    ub, wb = e.sum(-1), (e.unsqueeze(-1) * vc).sum(-2)                # block aggregates
    Wt = (mb.unsqueeze(-2) - Mex.unsqueeze(-1)).masked_fill(~before, float("-inf")).exp()
    into = torch.exp(Mex.unsqueeze(-1) - m)                           # carry's scale
    num = num + into.unsqueeze(-1) * (Wt @ wb).unsqueeze(-2)
    den = den + into * (Wt * ub.unsqueeze(-2)).sum(-1).unsqueeze(-1)
    return from_chunks(num / den.unsqueeze(-1), T)


def prefix_softmax_naive(s, v):
    """The same, one softmax per prefix (the oracle)."""
    out = [torch.einsum("bih,bihd->bhd", torch.softmax(s[:, :t + 1], 1), v[:, :t + 1])
           for t in range(s.shape[1])]
    return torch.stack(out, 1)


def lstm_layer(x, p, naive):
    """nn.LSTM's kernel on seqlab's weights (bias_hh = 0), or the token loop."""
    D = x.shape[-1]
    if naive:
        h = torch.zeros(x.shape[0], D, dtype=x.dtype)
        c, gx, hs = torch.zeros_like(h), x @ p["weight_ih"].t() + p["bias"], []
        for t in range(x.shape[1]):
            i, f, g, o = (gx[:, t] + h @ p["weight_hh"].t()).split(D, -1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs, 1)
    h0 = torch.zeros(1, x.shape[0], D, dtype=x.dtype)
    w = [p["weight_ih"], p["weight_hh"], p["bias"], torch.zeros_like(p["bias"])]
    # nn.LSTM's own kernel (what its forward calls), given seqlab's weights:
    # has_biases, 1 layer, no dropout, training, unidirectional, batch_first.
    return torch.lstm(x, (h0, h0), w, True, 1, 0.0, True, False, True)[0]


# ------------------------------------------------------------------ delta rule (WY/UT)

def delta_chunked(q, k, v, beta, g, C):
    """S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, o_t = S_t^T q_t,
    chunkwise with the WY/UT transform. q, k, v: [B, T, H, dk]; beta, g: [B, T, H]
    (g None: plain DeltaNet). -> o: [B, T, H, dk]."""
    T = q.shape[1]
    qc, kc, vc = to_chunks(q, C), to_chunks(k, C), to_chunks(v, C)   # [B, H, N, C, d]
    bc = to_chunks(beta, C).unsqueeze(-1)                               # [B, H, N, C, 1]
    mask = causal_mask(C, q.device)
    KK = kc @ kc.transpose(-1, -2)
    QK = qc @ kc.transpose(-1, -2)
    if g is None:
        Lower = (bc * KK).tril(-1)
        M = QK.masked_fill(~mask, 0.0)
        rhs_k = bc * kc
        q_in, k_out, decay = qc, kc, None
    else:
        gam = to_chunks(g, C).cumsum(-1)                                # [B, H, N, C]
        Gam = decay_matrix(gam, C)
        Lower = (bc * (KK * Gam)).tril(-1)
        M = QK * Gam
        E = torch.exp(gam).unsqueeze(-1)
        rhs_k = bc * E * kc
        q_in = qc * E
        k_out = kc * torch.exp(gam[..., -1:] - gam).unsqueeze(-1)
        decay = torch.exp(gam[..., -1]).unsqueeze(-1).unsqueeze(-1)   # [B, H, N, 1, 1]
    L = Lower + torch.eye(C, dtype=q.dtype, device=q.device)
    dv = vc.shape[-1]
    UW = torch.linalg.solve_triangular(L, torch.cat([bc * vc, rhs_k], -1), upper=False,
                                       unitriangular=True)
    U, W = UW[..., :dv], UW[..., dv:]          # U = T diag(b) V, W = T diag(b e^gamma) K
    S = torch.zeros(qc.shape[0], qc.shape[1], kc.shape[-1], dv, dtype=q.dtype, device=q.device)
    states, news = [], []
    Us, Ws, Ks = U.unbind(2), W.unbind(2), k_out.unbind(2)
    decays = decay.unbind(2) if decay is not None else None
    for n in range(len(Us)):
        states.append(S)
        Un = Us[n] - Ws[n] @ S                                          # U' = U - W S
        news.append(Un)
        S = (S * decays[n] if decays is not None else S) + Ks[n].transpose(-1, -2) @ Un
    Sn, Up = torch.stack(states, 2), torch.stack(news, 2)
    return from_chunks(q_in @ Sn + M @ Up, T)


def delta_naive(q, k, v, beta, g):
    """The delta rule token by token (the oracle)."""
    B, T, H, dk = q.shape
    S = torch.zeros(B, H, dk, v.shape[-1], dtype=q.dtype)
    out = []
    for t in range(T):
        if g is not None:
            S = torch.exp(g[:, t])[..., None, None] * S
        kt = k[:, t]
        u = beta[:, t].unsqueeze(-1) * (v[:, t] - torch.einsum("bhkv,bhk->bhv", S, kt))
        S = S + kt.unsqueeze(-1) * u.unsqueeze(-2)
        out.append(torch.einsum("bhkv,bhk->bhv", S, q[:, t]))
    return torch.stack(out, 1)


# ------------------------------------------------------------------ mLSTM (xLSTM)

def mlstm_chunked(q, k, v, it, lf, C):
    """xLSTM's stabilised matrix memory, chunkwise (see the module docstring).
    q, k: [B, T, H, dk], v: [B, T, H, dv], it, lf: [B, T, H] -> h: [B, T, H, dv]."""
    T, dv = q.shape[1], v.shape[-1]
    qc, kc, vc = to_chunks(q, C), to_chunks(k, C), to_chunks(v, C)   # [B, H, N, C, d]
    va = torch.cat([vc, torch.ones_like(vc[..., :1])], -1)             # [v | 1]
    b = to_chunks(lf, C).cumsum(-1)                                     # [B, H, N, C]
    Dm = (b.unsqueeze(-1) - b.unsqueeze(-2) + to_chunks(it, C).unsqueeze(-2))
    Dm = Dm.masked_fill(~causal_mask(C, q.device), float("-inf"))      # [B, H, N, C, C]
    with torch.no_grad():
        # The stabiliser entering each chunk: m' = max(b_L + m_prev, max_j D_Lj).
        dlast, blast = Dm[..., -1, :].amax(-1), b[..., -1]              # [B, H, N]
        m, mp = torch.full_like(blast[..., 0], M_FRESH), []
        for n in range(b.shape[2]):
            mp.append(m)
            m = torch.maximum(blast[..., n] + m, dlast[..., n])
        m_prev = torch.stack(mp, 2)                                     # [B, H, N]
        mi = torch.maximum(Dm.amax(-1), b + m_prev.unsqueeze(-1))       # [B, H, N, C]
    w = torch.exp(b + m_prev.unsqueeze(-1) - mi)                        # [B, H, N, C]
    P = torch.exp(Dm - mi.unsqueeze(-1))                                # 0 above the diagonal
    A = (qc @ kc.transpose(-1, -2)) * P
    kv = (P[..., -1, :].unsqueeze(-1) * kc).transpose(-1, -2) @ va     # [B, H, N, dk, dv+1]
    g = w[..., -1]                                                      # [B, H, N]
    S = torch.zeros_like(kv[:, :, 0])
    states = []
    # unbind, not kv[:, :, n]: each indexing's backward would write a whole
    # zero-filled kv, making the loop quadratic in the number of chunks.
    for gn, kvn in zip(g.unbind(2), kv.unbind(2)):
        states.append(S)
        S = gn[:, :, None, None] * S + kvn
    num = w.unsqueeze(-1) * (qc @ torch.stack(states, 2)) + A @ va     # [B, H, N, C, dv+1]
    z = torch.maximum(num[..., dv:].abs(), torch.exp(-mi).unsqueeze(-1))
    return from_chunks(num[..., :dv] / z, T)


def mlstm_naive(q, k, v, it, lf):
    """The same recurrence token by token (the oracle), m_0 = -inf."""
    B, T, H, dk = q.shape
    Cs = torch.zeros(B, H, dk, v.shape[-1], dtype=q.dtype)
    n = torch.zeros(B, H, dk, dtype=q.dtype)
    m = torch.full((B, H), M_FRESH, dtype=q.dtype)
    out = []
    for t in range(T):
        mt = torch.maximum(lf[:, t] + m, it[:, t])
        a, bw = torch.exp(lf[:, t] + m - mt), torch.exp(it[:, t] - mt)
        Cs = a[..., None, None] * Cs + bw[..., None, None] * k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        n = a[..., None] * n + bw[..., None] * k[:, t]
        den = (n * q[:, t]).sum(-1).abs()
        z = torch.maximum(den, torch.exp(-mt))
        out.append(torch.einsum("bhkv,bhk->bhv", Cs, q[:, t]) / z[..., None])
        m = mt
    return torch.stack(out, 1)


# ------------------------------------------------------------------ mixers

def selective_scan_ref(u, dt, A, Bm, Cm):
    """Mamba's selective_scan_ref: exp(dt A) and dt B u for every token, then a loop
    over tokens. u, dt: [B, T, E], A: [E, N], Bm, Cm: [B, T, N] -> y: [B, T, E]."""
    dA = torch.exp(dt.unsqueeze(-1) * A)                                # [B, T, E, N]
    dBu = (dt * u).unsqueeze(-1) * Bm.unsqueeze(2)                      # [B, T, E, N]
    s = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    # unbind, not dA[:, t]: indexing's backward writes a zero tensor of the
    # whole [B, T, E, N] per token (quadratic in T); unbind's stacks once.
    for a, bu, c in zip(dA.unbind(1), dBu.unbind(1), Cm.unsqueeze(-1).unbind(1)):
        s = a * s + bu
        ys.append(torch.bmm(s, c).squeeze(-1))
    return torch.stack(ys, 1)


def selective_scan_naive(u, dt, A, Bm, Cm):
    """The recurrence one token at a time, nothing precomputed."""
    s = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
        s = torch.exp(dt[:, t, :, None] * A) * s + \
            (dt[:, t] * u[:, t])[:, :, None] * Bm[:, t, None, :]
        ys.append((s * Cm[:, t, None, :]).sum(-1))
    return torch.stack(ys, 1)


def attention_naive(q, k, v):
    """Per query t: softmax over keys 0..t. q, k, v: [B, H, T, dh] (already scaled q)."""
    out = []
    for t in range(q.shape[2]):
        s = q[:, :, t:t + 1] @ k[:, :, :t + 1].transpose(-1, -2)
        out.append(torch.softmax(s, -1) @ v[:, :, :t + 1])
    return torch.cat(out, 2)


def alibi_slopes(H):
    """ALiBi's slopes for H heads (2^(-8(h+1)/P), P the largest power of two <= H,
    then every other slope of 2P heads), TransNormerLLM's decay rates."""
    P = 1
    while 2 * P <= H:
        P *= 2
    return ([2.0 ** (-8.0 * (h + 1) / P) for h in range(P)]
            + [2.0 ** (-8.0 * (2 * j + 1) / (2 * P)) for j in range(H - P)])


def block_attention(q, k, v, w, naive=False):
    """Causal softmax attention inside blocks of w tokens. q, k, v: [B, T, H, d]."""
    T, d = q.shape[1], q.shape[-1]
    if naive:
        out = []
        for t in range(T):
            b = t - t % w
            s = torch.einsum("bhd,bshd->bhs", q[:, t], k[:, b:t + 1]) / math.sqrt(d)
            out.append(torch.einsum("bhs,bshd->bhd", torch.softmax(s, -1), v[:, b:t + 1]))
        return torch.stack(out, 1)
    qc, kc, vc = to_chunks(q, w), to_chunks(k, w), to_chunks(v, w)   # [B, H, N, w, d]
    s = (qc @ kc.transpose(-1, -2)) / math.sqrt(d)
    s = s.masked_fill(~causal_mask(w, q.device), float("-inf"))
    return from_chunks(torch.softmax(s, -1) @ vc, T)


def ponet_forward(x, p, H):
    """ponet: [B, T, D] -> [B, T, D] (src/mixers/ponet.c)."""
    B, T, D = x.shape
    q, k, o, s, l = (x @ p["in.weight"].t()).split(D, -1)
    kh = heads(k, H)
    g = heads(q.mean(1, keepdim=True), H)                              # [B, 1, H, dk]
    a = torch.softmax((kh * g).sum(-1) / math.sqrt(D // H), 1)         # [B, T, H]
    v = (a.unsqueeze(-1) * kh).sum(1).reshape(B, 1, D)
    S = PONET_SEGMENT
    n = (T + S - 1) // S
    sp = F.pad(s, (0, 0, 0, n * S - T), value=-math.inf).view(B, n, S, D).amax(2)
    sp = sp.repeat_interleave(S, 1)[:, :T]
    lp = F.max_pool1d(l.transpose(1, 2), PONET_WINDOW, 1, PONET_WINDOW // 2).transpose(1, 2)
    return ((v + sp) * o + lp) @ p["out.weight"].t()


def hydra_forward(x, p, H, C, naive):
    """hydra: [B, T, D] -> [B, T, D] (src/mixers/hydra.c)."""
    B, T, D = x.shape
    z, xbc, dt_in = (x @ p["in.weight"].t()).split([D, 5 * D, 2 * H], -1)
    if "conv.weight" in p:
        xbc = F.conv1d(xbc.transpose(1, 2), p["conv.weight"].unsqueeze(1), p["conv.bias"],
                       padding=HYDRA_CONV // 2, groups=5 * D).transpose(1, 2)
    xs, Bf, Cf, Bb, Cb = F.silu(xbc).split(D, -1)
    dt = F.softplus(dt_in + p["dt_bias"].repeat(2))                     # [B, T, 2H]
    A = -torch.exp(p["A_log"])
    zero = torch.zeros(B, 1, H, D // H, dtype=x.dtype)
    outs = []
    for d, (Bm, Cm) in enumerate(((Bf, Cf), (Bb, Cb))):
        dtd = dt[..., d * H:(d + 1) * H]
        q, k, v, g = heads(Cm, H), heads(Bm, H), dtd.unsqueeze(-1) * heads(xs, H), \
            (A * dtd).unsqueeze(-1)
        if d:
            q, k, v, g = (a.flip(1) for a in (q, k, v, g))
        o = recurrence_naive(q, k, v, g) if naive else recurrence_chunked(q, k, v, g, C)
        o = torch.cat([zero, o[:, :-1]], 1)                            # shift
        outs.append(o.flip(1) if d else o)
    dg = (xs @ p["fc_D.weight"].t() + p["D"]).unsqueeze(-1)             # [B, T, H, 1]
    y = (outs[0] + outs[1] + heads(xs, H) * dg).reshape(B, T, D)
    y = y * torch.rsqrt((y * y).mean(-1, keepdim=True) + NORM_EPS) * p["norm.weight"]
    return (y * F.silu(z)) @ p["out.weight"].t()


def s4d_modes(p, pre=""):
    """S4D's ZOH modes: E = exp(dt A), Bbar C = C (E - 1) / A, each [D, M] complex."""
    dt = torch.exp(p[pre + "log_dt"])[:, None]
    A = torch.complex(-torch.exp(p[pre + "A.log_re"]), p[pre + "A.im"])
    E = torch.exp(dt * A)
    return dt * A, E, torch.complex(p[pre + "C"][0, ..., 0], p[pre + "C"][0, ..., 1]) * (E - 1) / A


def s4d_fft(x, p, pre=""):
    """x: [B, T, D] -> the SSM's convolution (without D x), as the paper's s4d.py."""
    T = x.shape[1]
    dtA, _, Ct = s4d_modes(p, pre)
    K = 2 * torch.einsum("hn,hnl->hl", Ct, torch.exp(dtA[..., None] * torch.arange(T))).real
    u = x.transpose(1, 2)
    y = torch.fft.irfft(torch.fft.rfft(u, n=2 * T) * torch.fft.rfft(K, n=2 * T), n=2 * T)
    return y[..., :T].transpose(1, 2)


def s4d_naive(x, p, pre=""):
    """The same by the complex recurrence s_t = E s_{t-1} + u_t, y_t = 2 Re(Ct s_t)."""
    _, E, Ct = s4d_modes(p, pre)
    s = torch.zeros(x.shape[0], *E.shape, dtype=E.dtype)
    ys = []
    for t in range(x.shape[1]):
        s = E * s + x[:, t, :, None]
        ys.append(2 * (Ct * s).sum(-1).real)
    return torch.stack(ys, 1)


def long_conv(u, k, naive=False):
    """Causal depthwise y[t] = sum_{s<=t} k[:, t-s] u[s]. u: [B, T, C], k: [C, T]. FFT of
    size 2T (torch.fft.rfft/irfft), or with naive the direct sum as a Toeplitz matmul."""
    T = u.shape[1]
    if naive:
        lag = torch.arange(T)[:, None] - torch.arange(T)[None, :]            # t - s
        toe = k[:, lag.clamp(min=0)] * (lag >= 0)                            # [C, T, T]
        return torch.einsum("cts,bsc->btc", toe, u)
    n = 2 * T
    y = torch.fft.irfft(torch.fft.rfft(u, n=n, dim=1) * torch.fft.rfft(k.t(), n=n, dim=0), n=n,
                        dim=1)
    return y[:, :T]


def lag_features(L, M, E, dtype):
    """[L, E]: t_l = l/(M-1), cos(f w_l), -sin(f w_l), w_l = 2 pi l / M, f = linspace(1e-4,
    nb-1, nb) (Hyena's PositionalEmbedding)."""
    nb = (E - 1) // 2
    lag = torch.arange(L, dtype=torch.float64)
    w = 2 * math.pi * lag / M
    f = torch.linspace(1e-4, nb - 1, nb, dtype=torch.float64) if nb > 1 else \
        torch.tensor([1e-4], dtype=torch.float64)
    z = torch.cat([(lag / max(M - 1, 1))[:, None], torch.cos(f[None] * w[:, None]),
                   -torch.sin(f[None] * w[:, None])], 1)
    return z.to(dtype)


def hyena_taps(p, L, C, dtype):
    """The implicit filter's taps [C, L] (max_seq_len = L, as the bench sets it)."""
    a = lag_features(L, L, HYENA["emb"], dtype)
    for j in range(3):
        a = torch.sin(p["filter.freq"] * (a @ p[f"filter.{j}.weight"].t() + p[f"filter.{j}.bias"]))
    t = torch.arange(L, dtype=torch.float64) / max(L - 1, 1)
    lo, hi = math.log(1e-2) / 1.5, math.log(1e-2) / 0.3
    delta = torch.linspace(lo, hi, C, dtype=torch.float64).abs()
    return (a @ p["filter.out.weight"].t()).t() * torch.exp(-delta[:, None] * t[None]).to(dtype)


LMU_H = {}  # (T, dtype) -> the impulse response [q, T], made once outside the timed runs


def lmu_impulse(T, dtype):
    """H[:, l] = A_bar^l B_bar for l < T, by doubling in float64."""
    if (T, dtype) not in LMU_H:
        q, theta = LMU["order"], LMU["theta"]
        i = torch.arange(q, dtype=torch.float64)
        r = (2 * i + 1) / theta
        ii, jj = torch.meshgrid(i, i, indexing="ij")
        aug = torch.zeros(q + 1, q + 1, dtype=torch.float64)
        aug[:q, :q] = r[:, None] * torch.where(ii < jj, -torch.ones_like(ii), (-1.0) ** (ii - jj + 1))
        aug[:q, q] = r * (-1.0) ** i
        e = torch.matrix_exp(aug)
        A, H, P = e[:q, :q], e[:q, q:], e[:q, :q]
        while H.shape[1] < T:
            H = torch.cat([H, P @ H], 1)
            P = P @ P
        LMU_H[(T, dtype)] = H[:, :T].to(dtype)
    return LMU_H[(T, dtype)]


def mixer_forward(mixer, x, p, H, C, naive=False, normalize=False):
    """x: [B, T, D] -> [B, T, D], the layer of src/mixers/<mixer>.c."""
    B, T, D = x.shape
    dk = D // H
    if mixer == "hyena":
        N = HYENA["order"]
        xs = short_conv(x @ p["in.weight"].t(), p["conv.weight"], p["conv.bias"]).split(D, -1)
        h = hyena_taps(p, T, (N - 1) * D, x.dtype)
        v = xs[N]
        for o in range(N - 1):
            u = v * xs[N - 1 - o]
            v = long_conv(u, h[o * D:(o + 1) * D], naive) + p["filter.skip"][o * D:(o + 1) * D] * u
        return (v * xs[0]) @ p["out.weight"].t()
    if mixer == "baseconv":
        z = lag_features(T, T, BASECONV_EMB, x.dtype)
        h = torch.relu(z @ p["filter.0.weight"].t() + p["filter.0.bias"])
        h = (h @ p["filter.1.weight"].t() + p["filter.1.bias"]).t()
        return long_conv(x, h, naive) * (x @ p["proj.weight"].t() + p["proj.bias"]) + x
    if mixer == "lmu":
        q, U = LMU["order"], LMU["memory_d"]
        u = x @ p["u.weight"].t() + p["u.bias"]                              # [B, T, U]
        Hk = lmu_impulse(T, x.dtype)                                         # [q, T]
        if naive:
            m = torch.cat([long_conv(u[..., j:j + 1].expand(B, T, q), Hk, True)
                           for j in range(U)], -1)
        else:
            n = 2 * T
            uf = torch.fft.rfft(u, n=n, dim=1)                               # [B, F, U]
            mf = uf[..., :, None] * torch.fft.rfft(Hk.t(), n=n, dim=0)[None, :, None, :]
            m = torch.fft.irfft(mf, n=n, dim=1)[:, :T].reshape(B, T, U * q)
        h = torch.relu(m @ p["hm.weight"].t() + x @ p["hx.weight"].t() + p["h.bias"])
        return h @ p["out.weight"].t() + p["out.bias"]
    if mixer == "transnormer":
        q, k, v = (heads(a, H) for a in (x @ p["qkv.weight"].t()).split(D, -1))
        if TN["layer"] < TN["n_layers"] // 2:
            o = block_attention(q, k, v, TN["block"], naive)
        else:
            q, k = F.elu(q) + 1, F.elu(k) + 1
            g = None
            if TN["decay"]:
                L, l = TN["n_layers"], TN["layer"]
                depth = 1.0 - l / (L - 1) + 1e-5 if L > 1 else 1.0 + 1e-5
                lg = torch.tensor([-s * depth for s in alibi_slopes(H)], dtype=x.dtype)
                g = lg[None, None, :, None].expand(B, T, H, 1)
            o = recurrence_naive(q, k, v, g) if naive else recurrence_chunked(q, k, v, g, C)
        o = o.reshape(B, T, D)
        o = o * torch.rsqrt((o * o).mean(-1, keepdim=True) + NORM_EPS) * p["norm.weight"]
        return o @ p["out.weight"].t()
    if mixer == "h3":
        q, k, v = (x @ p[n + ".weight"].t() for n in "qkv")
        ks = F.conv1d(F.pad(k.transpose(1, 2), (H3_SHIFT - 1, 0)), p["shift.weight"][:, None],
                      groups=D).transpose(1, 2)
        u = ks * v
        y = s4d_naive(u, p, "ssm.") if naive else s4d_fft(u, p, "ssm.")
        return (q * (y + p["ssm.D"] * u)) @ p["out.weight"].t()
    if mixer == "s4d":
        y = s4d_naive(x, p) if naive else s4d_fft(x, p)
        o = F.gelu(y + p["D"] * x, approximate="tanh") @ p["out.weight"].t() + p["out.bias"]
        return o[..., :D] * torch.sigmoid(o[..., D:])
    if mixer == "lstm":
        return lstm_layer(x, p, naive)
    if mixer == "hgrn":
        # Layer 0 of the bench's one layer: the forget gate's lower bound is 0.
        pf = x @ p["f.weight"].t()
        b = torch.sigmoid(-pf) * F.silu(x @ p["i.weight"].t())
        h = diag_scan_naive(F.logsigmoid(pf), b) if naive else \
            diag_scan_chunked(F.logsigmoid(pf), b, C)
        h = h * torch.rsqrt((h * h).mean(-1, keepdim=True) + NORM_EPS) * p["norm.weight"]
        return (h * F.silu(x @ p["g.weight"].t())) @ p["out.weight"].t()
    if mixer == "aaren":
        A = torch.einsum("hk,hkd->hd", p["query"], p["k.weight"].reshape(H, dk, D))
        s = x @ (A / math.sqrt(dk)).t()                                 # [B, T, H]
        v = heads(x @ p["v.weight"].t(), H)
        o = prefix_softmax_naive(s, v) if naive else prefix_softmax_chunked(s, v, C)
        return o.reshape(B, T, D) @ p["out.weight"].t()
    if mixer == "attention":
        q, k, v = (heads(a, H).transpose(1, 2) for a in (x @ p["qkv.weight"].t()).split(D, -1))
        q = q / math.sqrt(dk)
        if naive:
            o = attention_naive(q, k, v)
        else:
            s = q @ k.transpose(-1, -2)                                 # [B, H, T, T]
            s = s.masked_fill_(~causal_mask(T, x.device), float("-inf"))  # in place: matmul
            o = torch.softmax(s, -1) @ v                                # saves no output
        return o.transpose(1, 2).reshape(B, T, D) @ p["out.weight"].t()
    if mixer == "linear_attention":
        q, k, v = (heads(a, H) for a in (x @ p["qkv.weight"].t()).split(D, -1))
        q, k = F.elu(q) + 1, F.elu(k) + 1
        rec = recurrence_naive if naive else (lambda *a: recurrence_chunked(*a, C))
        o = rec(q, k, v, None)
        if normalize:
            o = o / (rec(q, k, torch.ones_like(v[..., :1]), None) + LINEAR_EPS)
        return o.reshape(B, T, D) @ p["out.weight"].t()
    if mixer == "mlstm":
        q, k, v = (heads(a, H) for a in (x @ p["qkv.weight"].t()).split(D, -1))
        k = k / math.sqrt(dk)
        fo = [FGATE_LO + (FGATE_HI - FGATE_LO) * h / (H - 1) if H > 1 else FGATE_LO
              for h in range(H)]
        off = torch.tensor([0.0] * H + fo, dtype=x.dtype)
        gates = x @ p["gate.weight"].t() + p["gate.bias"] + off
        it, lf = gates[..., :H], F.logsigmoid(gates[..., H:])
        o = mlstm_naive(q, k, v, it, lf) if naive else mlstm_chunked(q, k, v, it, lf, C)
        o = rmsnorm_heads(o, p["norm.weight"]).reshape(B, T, D)
        return (o * torch.sigmoid(x @ p["ogate.weight"].t())) @ p["out.weight"].t()
    if mixer in ("retnet", "gla"):
        if mixer == "retnet":
            q, k, v = (heads(a, H) for a in (x @ p["qkv.weight"].t()).split(D, -1))
            q, k = rope(q), rope(k)
            q = q / math.sqrt(dk)
            log_gamma = torch.log1p(-torch.exp2(-5.0 - torch.arange(H, dtype=torch.float64)))
            g = log_gamma.to(x.dtype)[None, None, :, None].expand(B, T, H, 1)
            z = x @ p["gate.weight"].t()
        else:
            q, k, v, z = (x @ p["qkvz.weight"].t()).split(D, -1)
            q, k, v = heads(q, H) / math.sqrt(dk), heads(k, H), heads(v, H)
            logit = (x @ p["gate1.weight"].t()) @ p["gate2.weight"].t() + p["gate2.bias"]
            g = heads(F.logsigmoid(logit) / GATE_NORM, H)
        o = recurrence_naive(q, k, v, g) if naive else recurrence_chunked(q, k, v, g, C)
        o = rmsnorm_heads(o, p["norm.weight"]).reshape(B, T, D) * F.silu(z)
        return o @ p["out.weight"].t()
    if mixer == "ponet":
        return ponet_forward(x, p, H)
    if mixer == "hydra":
        return hydra_forward(x, p, H, C, naive)
    if mixer == "mamba":
        E, N = p["A_log"].shape
        R = p["dt.weight"].shape[1]
        xs, z = (x @ p["in.weight"].t()).split(E, -1)
        if "conv.weight" in p:
            xs = short_conv(xs, p["conv.weight"], p["conv.bias"])
        xs = F.silu(xs)
        dt_low, Bm, Cm = (xs @ p["x.weight"].t()).split([R, N, N], -1)
        dt = F.softplus(dt_low @ p["dt.weight"].t() + p["dt_bias"])      # [B, T, E]
        A = -torch.exp(p["A_log"])
        scan = selective_scan_naive if naive else selective_scan_ref
        o = scan(xs, dt, A, Bm, Cm) + p["D"] * xs
        return (o * F.silu(z)) @ p["out.weight"].t()
    if mixer == "mamba2":
        z, xbc, dt_in = (x @ p["in.weight"].t()).split([D, 3 * D, H], -1)
        if "conv.weight" in p:
            xbc = short_conv(xbc, p["conv.weight"], p["conv.bias"])
        xs, Bm, Cm = (heads(a, H) for a in F.silu(xbc).split(D, -1))
        dt = F.softplus(dt_in + p["dt_bias"])                           # [B, T, H]
        g = (-torch.exp(p["A_log"]) * dt).unsqueeze(-1)                 # [B, T, H, 1]
        v = dt.unsqueeze(-1) * xs
        o = recurrence_naive(Cm, Bm, v, g) if naive else recurrence_chunked(Cm, Bm, v, g, C)
        o = (o + p["D"][:, None] * xs).reshape(B, T, D) * F.silu(z)
        o = o * torch.rsqrt((o * o).mean(-1, keepdim=True) + NORM_EPS) * p["norm.weight"]
        return o @ p["out.weight"].t()
    # deltanet, gated_deltanet
    qkv = []
    for n in "qkv":
        a = x @ p[n + ".weight"].t()
        if n + "_conv.weight" in p:
            a = short_conv(a, p[n + "_conv.weight"])
        qkv.append(heads(F.silu(a), H))
    q, k, v = l2norm_heads(qkv[0]), l2norm_heads(qkv[1]), qkv[2]
    beta = torch.sigmoid(x @ p["beta.weight"].t())                      # [B, T, H]
    g = None
    if mixer == "gated_deltanet":
        g = -torch.exp(p["A_log"]) * F.softplus(x @ p["a.weight"].t() + p["dt_bias"])
    o = delta_naive(q, k, v, beta, g) if naive else delta_chunked(q, k, v, beta, g, C)
    o = rmsnorm_heads(o, p["out_norm.weight"]).reshape(B, T, D)
    if mixer == "gated_deltanet":
        o = o * F.silu(x @ p["gate.weight"].t())
    return o @ p["out.weight"].t()


# ------------------------------------------------------------------ memory, timing

def proc_status_kb(field):
    """A field of /proc/self/status in kB, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux clear_refs 5); True when it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def time_runs(fn, reps):
    """Wall times (ms) of `reps` calls after one warmup, and the peak extra RSS (MB)."""
    rss0 = proc_status_kb("VmRSS") or 0
    hwm_ok = reset_peak_rss()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    if hwm_ok and proc_status_kb("VmHWM") is not None:
        peak, how = proc_status_kb("VmHWM") - rss0, "VmHWM-VmRSS0"
    else:
        peak, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0, "ru_maxrss-VmRSS0"
        if maxrss0 > rss0:
            how += " (lower bound: an earlier peak was higher)"
    return times, peak / 1024.0, how


def bench(args):
    """Build the layer, time forward + backward, print a human line and the JSON line."""
    gen = torch.Generator().manual_seed(args.seed)
    D, H, T, B = args.d_model, args.heads, args.seq, args.batch
    p = make_params(args.mixer, D, H, args.conv_size, gen, torch.float32)
    x = torch.randn(B, T, D, generator=gen).requires_grad_(True)
    R = torch.randn(B, T, D, generator=gen)
    finite = [True]

    def step():
        """forward + loss + backward, gradients cleared first."""
        x.grad = None
        for t in p.values():
            t.grad = None
        y = mixer_forward(args.mixer, x, p, H, args.chunk, normalize=args.normalize)
        loss = (y * R).sum()
        loss.backward()
        finite[0] = finite[0] and bool(torch.isfinite(y).all()) and bool(
            torch.isfinite(x.grad).all())

    times, peak_mb, how = time_runs(step, args.reps)
    ms = statistics.median(times)
    print(f"{args.mixer}: T {T} B {B} D {D} H {H} C {args.chunk}: fwd+bwd {ms:.1f} ms median, "
          f"{min(times):.1f} min, {B * T / ms * 1e3:.0f} tokens/s, peak +{peak_mb:.0f} MB, "
          f"{'finite' if finite[0] else 'NOT FINITE'}, {args.threads} threads", flush=True)
    print(json.dumps({"mixer": args.mixer, "seq": T, "threads": args.threads, "ms": round(ms, 3),
                      "peak_mb": round(peak_mb, 1), "min_ms": round(min(times), 3),
                      "batch": B, "d_model": D, "heads": H, "chunk": args.chunk,
                      "reps": args.reps, "finite": finite[0], "peak_mb_is": how,
                      "normalize": args.normalize if args.mixer == "linear_attention" else None,
                      "torch_version": torch.__version__,
                      "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                      "loadavg_1m": os.getloadavg()[0],
                      "run_ms": [round(t, 1) for t in times]}), flush=True)
    return 0 if finite[0] else 1


def sweep(args, argv):
    """Each T in its own subprocess; forward its human and JSON lines."""
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--sweep":
            continue
        if a == "--seq":
            skip = True
            continue
        if a.startswith("--seq="):
            continue
        rest.append(a)
    rc = 0
    for T in SWEEP_T:
        if args.mixer == "attention" and T > ATTENTION_MAX_T:
            gb = args.batch * args.heads * T * T * 4 / 1e9
            print(f"attention: T {T} skipped: the T x T scores take {gb:.0f} GB per copy "
                  f"(PyTorch 1.13 materialises them on CPU)", flush=True)
            print(json.dumps({"mixer": args.mixer, "seq": T, "threads": args.threads, "ms": None,
                              "peak_mb": None, "skipped": f"attention above T={ATTENTION_MAX_T}"}),
                  flush=True)
            continue
        r = subprocess.run([sys.executable, os.path.abspath(__file__), *rest, "--seq", str(T)],
                           stdout=subprocess.PIPE, text=True)
        lines = r.stdout.strip().splitlines()
        if r.returncode == 0 and lines and lines[-1].startswith("{"):
            print("\n".join(lines), flush=True)
        else:
            rc = 1
            print(f"{args.mixer}: T {T} failed (exit {r.returncode})", flush=True)
            print(json.dumps({"mixer": args.mixer, "seq": T, "threads": args.threads, "ms": None,
                              "peak_mb": None, "error": f"exit {r.returncode}"}), flush=True)
    return rc


# ------------------------------------------------------------------ --check

def rel_err(a, b):
    """max |a - b| / max |b|."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


def check(args):
    """Chunked vs naive per-token loop on a tiny case, every mixer (or --mixer)."""
    s = CHECK_SHAPE
    mixers = [args.mixer] if args.mixer else list(MIXERS)
    ok = True
    for mixer in mixers:
        variants = [(False, None)]
        if mixer == "linear_attention":
            variants = [(False, None), (True, None)]
        if mixer == "transnormer":  # (layer, n_layers, decay): diag, norm, norm with decay
            variants = [(False, (0, 2, False)), (False, (1, 2, False)), (False, (2, 4, True))]
        for normalize, tn in variants:
            if tn:  # blocks of 8 over T = 37: a ragged last block
                TN.update(layer=tn[0], n_layers=tn[1], decay=tn[2], block=8)
            gen = torch.Generator().manual_seed(args.seed)
            p64 = make_params(mixer, s["D"], s["H"], s["K"], gen, torch.float64, std=0.3)
            if mixer == "mlstm":  # input gates over [-2, 2], some forget gates closing
                with torch.no_grad():
                    p64["gate.bias"].copy_(torch.cat([
                        torch.rand(s["H"], generator=gen, dtype=torch.float64) * 4 - 2,
                        -1 - 4 * torch.rand(s["H"], generator=gen, dtype=torch.float64)]))
            if mixer == "gla":  # gate biases that make some decays strong
                with torch.no_grad():
                    p64["gate2.bias"].copy_(
                        torch.randn(s["D"], generator=gen, dtype=torch.float64) * 3)
            if "dt_bias" in p64:  # dt ~ 1 instead of the init's <= 0.1: strong decays
                with torch.no_grad():
                    p64["dt_bias"].copy_(torch.randn(p64["dt_bias"].shape, generator=gen,
                                                     dtype=torch.float64))
            x64 = torch.randn(s["B"], s["T"], s["D"], generator=gen, dtype=torch.float64)
            dy = torch.randn(s["B"], s["T"], s["D"], generator=gen, dtype=torch.float64)
            res = {}
            runs = [("naive64", torch.float64, True, 0)]
            for C in CHECK_CHUNKS:
                runs += [(f"C={C} fp64", torch.float64, False, C),
                         (f"C={C} fp32", torch.float32, False, C)]
            for tag, dtype, naive, C in runs:
                p = {n: t.detach().to(dtype).clone().requires_grad_(True) for n, t in p64.items()}
                x = x64.to(dtype).clone().requires_grad_(True)
                y = mixer_forward(mixer, x, p, s["H"], C, naive=naive, normalize=normalize)
                y.backward(dy.to(dtype))
                res[tag] = (y.detach(), x.grad, {n: t.grad for n, t in p.items()})
            ref = res["naive64"]
            name = mixer + (" (normalize)" if normalize else "")
            if tn:
                name += " (%s)" % ("diag" if tn[0] < tn[1] // 2 else
                                   "norm+decay" if tn[2] else "norm")
            for tag in res:
                if tag == "naive64":
                    continue
                tol = 1e-9 if tag.endswith("fp64") else 2e-4
                y, gx, gp = res[tag]
                ey, egx = rel_err(y, ref[0]), rel_err(gx, ref[1])
                eps_ = [rel_err(gp[n], ref[2][n]) for n in gp]
                egp = max(eps_)
                good = all(e <= tol for e in [ey, egx, *eps_])  # False on NaN
                ok = ok and good
                print(f"check {name:28s} {tag:9s} vs naive64: y {ey:.2e}, dx {egx:.2e}, "
                      f"dparams {egp:.2e} (tol {tol:g}) {'ok' if good else 'MISMATCH'}")
    print(json.dumps({"check": "ok" if ok else "mismatch", "mixers": mixers,
                      "chunks": CHECK_CHUNKS, **s}))
    return 0 if ok else 1


def main(argv=None):
    """Set the thread environment, import torch, run the chosen mode."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.sweep and not args.check:
        return sweep(args, argv)
    set_thread_env(args.threads)
    global torch, F
    import torch as _torch  # noqa: E402  (after set_thread_env, on purpose)
    import torch.nn.functional as _F  # noqa: E402
    torch, F = _torch, _F
    torch.set_num_threads(args.threads)
    TN.update(layer=args.layer, n_layers=args.n_layers, block=args.block_size, decay=args.decay)
    if args.check:
        return check(args)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
