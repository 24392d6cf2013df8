// loss.wgsl: binary cross-entropy on logits, loss and gradient in one pass.
//
// Math, for each row i with logit z and target t ∈ [0, 1] (one target per row,
// so one-sided label smoothing is just t = 0.9 on the real rows):
//   loss[i] = −t·log σ(z) − (1 − t)·log(1 − σ(z))
//           = max(z, 0) − z·t + log(1 + e^{−|z|})
//           = z·(1 − t) + log(1 + e^{−z})     for z ≥ 0     (two non-negative terms:
//           = −z·t      + log(1 + e^{z})      for z < 0      no cancellation, no overflow)
//   grad[i] = grad_scale · (σ(z) − t)                         (d loss / d z, scaled)
// σ is evaluated on the side where e^{·} cannot overflow, log(1 + u) with a
// series for tiny u, and σ(z) − 1 as −σ(−z), so loss and gradient stay accurate
// in relative terms at |z| ≫ 1. (For other targets σ(z) − t cancels when
// σ(z) ≈ t; that is the math's conditioning, not the kernel's.)
//
// Buffers (f32, element offsets in the uniform)
//   binding 0 uniform Params
//   binding 1 logits  read         logits[logits_off + i]
//   binding 2 targets read         targets[targets_off + i]
//   binding 3 loss    read_write   loss[loss_off + i]
//   binding 4 grad    read_write   grad[grad_off + i]
//
// Dispatch
//   one thread per row, workgroups of 256, grid (min(G, 65535), ceil(G/65535), 1),
//   G = ceil(len/256).

struct Params {
    len: u32, logits_off: u32, targets_off: u32, loss_off: u32,
    grad_off: u32, grad_scale: f32, _pad0: u32, _pad1: u32,
}

// Seed-batched plans (src/plan/seeds.rs): a launch can run the same op for
// up to MAX_SEEDS independent GANs, one uniform block each (their offsets
// into the stacked buffers); workgroup z is the seed, and each entry point
// first takes its seed's block.
const MAX_SEEDS: u32 = 64u;
@group(0) @binding(0) var<uniform> p_seeds: array<Params, MAX_SEEDS>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

// log(1 + u) for u in [0, 1], accurate in relative terms for tiny u.
// u < 1/4: log(1 + u) = 2·atanh(s), s = u/(2 + u) ≤ 1/9, by its odd series
// (truncation error below s^11, ~1e-10 relative); beyond, log(1 + u) loses
// nothing. (Tricks like log(w)·u/(w − 1) get simplified away by drivers that
// reassociate float math.)
fn log1p_accurate(u: f32) -> f32 {
    if (u >= 0.25) {
        return log(1.0 + u);
    }
    let s = u / (2.0 + u);
    let s2 = s * s;
    return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (0.2 + s2 * (1.0 / 7.0 + s2 / 9.0))));
}

fn stable_sigmoid(z: f32) -> f32 {
    if (z >= 0.0) {
        return 1.0 / (1.0 + exp(-z));
    }
    let e = exp(z);
    return e / (1.0 + e);
}

@compute @workgroup_size(256)
fn bce_with_logits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    p = p_seeds[wid.z];
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= p.len) {
        return;
    }
    let z = logits[p.logits_off + i];
    let t = targets[p.targets_off + i];
    let softplus_tail = log1p_accurate(exp(-abs(z)));
    let linear = select(-z * t, z * (1.0 - t), z >= 0.0);
    loss[p.loss_off + i] = linear + softplus_tail;
    // σ(z) − 1 = −σ(−z): exact for the label-1 rows instead of cancelling.
    let residual = select(stable_sigmoid(z) - t, -stable_sigmoid(-z), t == 1.0);
    grad[p.grad_off + i] = p.grad_scale * residual;
}

// ---------------------------------------------------------------------------
// softmax_cross_entropy: softmax over C classes and cross-entropy against an
// class label per row, loss and gradient in one pass (the classifier that
// scores generated images is trained with it).
//
// Math, for row i with logits z[0..C) and label y:
//   lse     = m + log Σ_c e^{z_c − m},   m = max_c z_c        (no overflow)
//   loss[i] = lse − z_y
//   grad[i, c] = grad_scale · (e^{z_c − lse} − [c = y])
//
// Buffers (element offsets in the uniform)
//   binding 5 uniform CeParams
//   binding 6 logits  f32 read          logits[logits_off + i·C + c]
//   binding 7 labels  f32 read          labels[labels_off + i] (class index as a float, exact below 2^24)
//   binding 8 loss    f32 read_write    loss[loss_off + i]
//   binding 9 grad    f32 read_write    grad[grad_off + i·C + c]
//
// Dispatch: one thread per row, workgroups of 256, grid as above with G = ceil(rows/256).

struct CeParams {
    rows: u32, classes: u32, logits_off: u32, labels_off: u32,
    loss_off: u32, grad_off: u32, grad_scale: f32, _pad0: u32,
}

@group(0) @binding(5) var<uniform> ce_seeds: array<CeParams, MAX_SEEDS>;
var<private> ce: CeParams;
@group(0) @binding(6) var<storage, read> ce_logits: array<f32>;
@group(0) @binding(7) var<storage, read> ce_labels: array<f32>;
@group(0) @binding(8) var<storage, read_write> ce_loss: array<f32>;
@group(0) @binding(9) var<storage, read_write> ce_grad: array<f32>;

@compute @workgroup_size(256)
fn softmax_cross_entropy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    ce = ce_seeds[wid.z];
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= ce.rows) {
        return;
    }
    let base = ce.logits_off + i * ce.classes;
    var m = ce_logits[base];
    for (var c = 1u; c < ce.classes; c++) {
        m = max(m, ce_logits[base + c]);
    }
    var total = 0.0;
    for (var c = 0u; c < ce.classes; c++) {
        total += exp(ce_logits[base + c] - m);
    }
    let lse = m + log(total);
    let label = u32(ce_labels[ce.labels_off + i]);
    ce_loss[ce.loss_off + i] = lse - ce_logits[base + label];
    let gbase = ce.grad_off + i * ce.classes;
    for (var c = 0u; c < ce.classes; c++) {
        let p = exp(ce_logits[base + c] - lse);
        ce_grad[gbase + c] = ce.grad_scale * (p - select(0.0, 1.0, c == label));
    }
}

// ---------------------------------------------------------------------------
// bce_means: bce_with_logits and the means a GAN step reports, in one
// dispatch (reduce.wgsl's mean and activation.wgsl's sigmoid need not run).
//
// Math, over rows i < len with the loss and gradient of bce_with_logits:
//   stats[loss_slot]   = loss_scale · (1/len)   · Σ_{i<len}        loss[i]
//   with has_probs = 1 (split ≤ len):
//   stats[first_slot]  =              (1/split) · Σ_{i<split}      σ(z_i)
//   stats[second_slot] =        (1/(len−split)) · Σ_{split≤i<len}  σ(z_i)
//   (an empty range gives 0, as mean does). Thread l sums rows l, l+256, …
//   in order, then a fixed tree in workgroup memory adds the 256 partial
//   sums: the same order on every run.
//
// Buffers (element offsets in the uniform)
//   binding 10 uniform MeansParams
//   binding 11 logits  f32 read          logits[logits_off + i]
//   binding 12 targets f32 read          targets[targets_off + i]
//   binding 13 loss    f32 read_write    loss[loss_off + i]
//   binding 14 grad    f32 read_write    grad[grad_off + i]
//   binding 15 stats   f32 read_write    stats[stats_off + slot]; only the slots are written
//
// Dispatch: one workgroup of 256 threads, grid (1, 1, 1).
//
// bce_means_head: the same, and the input gradient of the one-output layer
// that made the logits (its weights w[0..k]), from the gradient just written:
//   dx[r·k + c] = (grad[r]·w[c]) · act'(y[r·k + c])   (act' = 1 without act_grad)
// which is matmul.wgsl's input product with N = 1 and the act_grad epilogue.
// Workgroup 0 does bce_means; workgroup 1 + h the elements 256h .. 256h+255
// of dx, each recomputing grad[r] from its logit (the same arithmetic, so the
// same bits as workgroup 0 writes). Grid: 1 + ceil(len·k/256) workgroups,
// folded as (min(G, 65535), ceil(G/65535), 1).
//   binding 16 w   f32 read        w[w_off + c]
//   binding 17 y   f32 read        y[y_off + r·k + c] (read only with has_act)
//   binding 18 dx  f32 read_write  dx[dx_off + r·k + c]

struct MeansParams {
    len: u32, logits_off: u32, targets_off: u32, loss_off: u32,
    grad_off: u32, grad_scale: f32, stats_off: u32, loss_slot: u32,
    loss_scale: f32, has_probs: u32, split: u32, first_slot: u32,
    second_slot: u32, head_k: u32, w_off: u32, y_off: u32,
    dx_off: u32, has_act: u32, act: u32, slope: f32,
}

@group(0) @binding(10) var<uniform> bm_seeds: array<MeansParams, MAX_SEEDS>;
var<private> bm: MeansParams;
@group(0) @binding(11) var<storage, read> bm_logits: array<f32>;
@group(0) @binding(12) var<storage, read> bm_targets: array<f32>;
@group(0) @binding(13) var<storage, read_write> bm_loss: array<f32>;
@group(0) @binding(14) var<storage, read_write> bm_grad: array<f32>;
@group(0) @binding(15) var<storage, read_write> bm_stats: array<f32>;

// Per-thread sums: (loss, σ over the first rows, σ over the others).
var<workgroup> bm_partial: array<vec3<f32>, 256>;

// σ(z) as activation.wgsl's sigmoid computes it (the means matched before).
fn bm_sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

// The gradient of row i, as bce_with_logits writes it.
fn bm_row_grad(z: f32, t: f32) -> f32 {
    let residual = select(stable_sigmoid(z) - t, -stable_sigmoid(-z), t == 1.0);
    return bm.grad_scale * residual;
}

@compute @workgroup_size(256)
fn bce_means(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    bm = bm_seeds[wid.z];
    bce_means_rows(lid.x);
}

fn bce_means_rows(lane: u32) {
    var s = vec3<f32>(0.0);
    for (var i = lane; i < bm.len; i += 256u) {
        let z = bm_logits[bm.logits_off + i];
        let t = bm_targets[bm.targets_off + i];
        let linear = select(-z * t, z * (1.0 - t), z >= 0.0);
        let l = linear + log1p_accurate(exp(-abs(z)));
        bm_loss[bm.loss_off + i] = l;
        bm_grad[bm.grad_off + i] = bm_row_grad(z, t);
        let sig = bm_sigmoid(z);
        let first = i < bm.split;
        s += vec3<f32>(l, select(0.0, sig, first), select(sig, 0.0, first));
    }
    bm_partial[lane] = s;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (lane < stride) {
            bm_partial[lane] += bm_partial[lane + stride];
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        let total = bm_partial[0];
        bm_stats[bm.stats_off + bm.loss_slot] = bm.loss_scale * total.x / f32(max(bm.len, 1u));
        if (bm.has_probs == 1u) {
            let rest = bm.len - bm.split;
            bm_stats[bm.stats_off + bm.first_slot] = total.y / f32(max(bm.split, 1u));
            bm_stats[bm.stats_off + bm.second_slot] = total.z / f32(max(rest, 1u));
        }
    }
}

@group(0) @binding(16) var<storage, read> head_w: array<f32>;
@group(0) @binding(17) var<storage, read> head_y: array<f32>;
@group(0) @binding(18) var<storage, read_write> head_dx: array<f32>;

// act'(z) through the output y = act(z), as activation.wgsl's (repeated:
// WGSL has no includes).
fn head_derivative(y: f32) -> f32 {
    switch bm.act {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return select(bm.slope, 1.0, y > 0.0); }
        case 3u: { return (1.0 - y) * (1.0 + y); }
        case 4u: { return y * (1.0 - y); }
        default: { return 1.0; }
    }
}

@compute @workgroup_size(256)
fn bce_means_head(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    bm = bm_seeds[wid.z];
    let g = wid.y * nwg.x + wid.x;
    if (g == 0u) {
        bce_means_rows(lid.x);
        return;
    }
    let e = (g - 1u) * 256u + lid.x;
    if (e >= bm.len * bm.head_k) {
        return;
    }
    let r = e / bm.head_k;
    let c = e % bm.head_k;
    let grad = bm_row_grad(bm_logits[bm.logits_off + r], bm_targets[bm.targets_off + r]);
    var v = grad * head_w[bm.w_off + c];
    if (bm.has_act == 1u) {
        v = v * head_derivative(head_y[bm.y_off + e]);
    }
    head_dx[bm.dx_off + e] = v;
}
