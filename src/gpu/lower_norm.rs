//! Lowering of the BatchNorm ops to `shaders/batchnorm.wgsl`: the shape,
//! offsets and epilogue as the 28 words of its uniform, the operands at
//! the file's bindings, one workgroup per channel or group of channels.

use super::lowering::{KernelCall, MAX_GROUPS_PER_DIM, w};
use crate::plan::{Activation, NormShape, Op, Slice};
use crate::shaders::Shader;

/// Channels per workgroup: 32 neighbouring features of a BatchNorm1d (inner
/// 1), so that a warp's loads of one row coalesce; one channel of a
/// BatchNorm2d, whose planes are contiguous. A power of two up to 32, as
/// batchnorm.wgsl's tree needs. Measured on an H200 (2026-12-03, `train
/// --preset dcgan-mnist --profile`): one channel per workgroup took 145 µs
/// (forward) and 389 µs (backward) for G's 12,544-feature BatchNorm1d at
/// batch 256; see docs/benchmarks.md for these.
fn channel_group(shape: &NormShape) -> usize {
    if shape.inner == 1 {
        shape.channels.next_power_of_two().min(32)
    } else {
        1
    }
}

/// One workgroup per channel group, folded into a second dimension past 65535.
fn channel_grid(shape: &NormShape) -> [u32; 3] {
    let c = w(shape.channels.div_ceil(channel_group(shape))).max(1);
    [c.min(MAX_GROUPS_PER_DIM), c.div_ceil(MAX_GROUPS_PER_DIM), 1]
}

/// The uniform's words; offsets a kernel does not read stay 0.
#[derive(Default)]
struct Words {
    x: u32,
    gamma: u32,
    beta: u32,
    y: u32,
    saved: u32,
    act: u32,
    slope: u32,
    running: Option<[u32; 4]>,
    backward: [u32; 4],
    act_grad: Option<u32>,
    eval: [u32; 2],
}

fn uniform(shape: &NormShape, eps: f32, words: Words) -> Vec<u32> {
    let running = words.running.unwrap_or_default();
    vec![
        w(shape.outer),
        w(shape.channels),
        w(shape.inner),
        eps.to_bits(),
        words.x,
        words.gamma,
        words.beta,
        words.y,
        words.saved,
        words.act,
        words.slope,
        u32::from(words.running.is_some()),
        running[0],
        running[1],
        running[2],
        running[3],
        words.backward[0],
        words.backward[1],
        words.backward[2],
        words.backward[3],
        u32::from(words.act_grad.is_some()),
        words.act_grad.unwrap_or(0),
        words.eval[0],
        words.eval[1],
        w(channel_group(shape)),
        0,
        0,
        0,
    ]
}

fn act_words(act: Activation) -> (u32, u32) {
    (act.id(), act.slope().to_bits())
}

fn off(s: Slice) -> u32 {
    w(s.offset)
}

/// The launch of a BatchNorm op.
///
/// # Panics
/// On any other op (`lowering::lower` sends only these here).
pub fn lower_norm(op: &Op) -> KernelCall {
    let (entry, params, storage, shape) = match *op {
        Op::BatchNorm {
            x,
            gamma,
            beta,
            y,
            saved,
            running,
            shape,
            eps,
            act,
        } => {
            let (act, slope) = act_words(act);
            let words = Words {
                x: off(x),
                gamma: off(gamma),
                beta: off(beta),
                y: off(y),
                saved: off(saved),
                act,
                slope,
                running: running.map(|r| {
                    [
                        off(r.mean),
                        off(r.var),
                        off(r.batches),
                        r.momentum.to_bits(),
                    ]
                }),
                ..Words::default()
            };
            let mut storage = vec![(1, x), (2, gamma), (3, beta), (4, y), (5, saved)];
            if let Some(r) = running {
                storage.extend([(6, r.mean), (7, r.var), (8, r.batches)]);
            } else {
                // Unread without running statistics, but bound: saved's buffer.
                storage.extend([(6, saved), (7, saved), (8, saved)]);
            }
            ("batchnorm", uniform(&shape, eps, words), storage, shape)
        }
        Op::BatchNormEval {
            x,
            gamma,
            beta,
            mean,
            var,
            y,
            shape,
            eps,
            act,
        } => {
            let (act, slope) = act_words(act);
            let words = Words {
                x: off(x),
                gamma: off(gamma),
                beta: off(beta),
                y: off(y),
                act,
                slope,
                eval: [off(mean), off(var)],
                ..Words::default()
            };
            let storage = vec![(1, x), (2, gamma), (3, beta), (4, y), (9, mean), (10, var)];
            (
                "batchnorm_eval",
                uniform(&shape, eps, words),
                storage,
                shape,
            )
        }
        Op::BatchNormBackward {
            dy,
            x,
            gamma,
            saved,
            dx,
            dgamma,
            dbeta,
            shape,
            act_grad,
        } => {
            let (act, slope) = act_grad.map_or((0, 0), |(_, a)| act_words(a));
            let words = Words {
                x: off(x),
                gamma: off(gamma),
                saved: off(saved),
                act,
                slope,
                backward: [off(dy), off(dx), off(dgamma), off(dbeta)],
                act_grad: act_grad.map(|(y, _)| off(y)),
                ..Words::default()
            };
            let yact = act_grad.map_or(dy, |(y, _)| y);
            let storage = vec![
                (1, x),
                (2, gamma),
                (11, dy),
                (12, saved),
                (13, yact),
                (14, dx),
                (15, dgamma),
            ];
            (
                "batchnorm_backward",
                uniform(&shape, 0.0, words),
                storage,
                shape,
            )
        }
        _ => panic!(
            "lower_norm takes the batch-norm ops, not {}",
            op.kernel_name()
        ),
    };
    KernelCall {
        shader: Shader::BatchNorm,
        entry,
        uniform_binding: 0,
        params,
        storage,
        workgroups: channel_grid(&shape),
    }
}
