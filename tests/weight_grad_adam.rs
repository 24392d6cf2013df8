//! The weight-gradient group with its Adam step in the same launch
//! (`Op::MatmulDwGroup { adam: Some(_) }`, `matmul_dw_group_adam`) against
//! the group then `Op::Adam` on the CPU; the vec4 loads of the group; and
//! the plan pass that fuses the two (`fuse_adam_into_weight_grads`).

mod common;

use common::*;
use shadergan::gpu::lowering::lower;
use shadergan::plan::{
    AdamHyper, AdamUpdate, Elem, Init, Op, Plan, Slice, WeightGrad, fuse_adam_into_weight_grads,
};

const ELEMENTWISE_TOL: f64 = 1e-5;
const MATMUL_TOL: f64 = 1e-4;

/// Dense layers as (outputs, inputs).
type Layers = &'static [(usize, usize)];

/// A network's gradient buffers: every layer's weights then its biases,
/// one flat slice, as `nn::mlp`'s `ParamLayout` lays them out.
struct Net {
    parts: Vec<WeightGrad>,
    grads: Slice,
    update: AdamUpdate,
}

/// `f32` values after `lead` words of padding (lead 4 keeps vectors whole, 3 does not).
fn values_at(plan: &mut Plan, name: &str, lead: usize, values: Vec<f32>) -> Slice {
    let n = lead + values.len();
    let init = [vec![0.0; lead], values].concat();
    plan.buffer(name, Elem::F32, n, Init::F32(init))
        .sub(lead, n - lead)
}

/// Layers `(out, in)` over `batch` rows: random dy and x (x read from row
/// `skip` of a taller buffer, as the G step reads `rows_from`), poisoned
/// gradients, parameters away from zero and random moments.
fn network(plan: &mut Plan, layers: &[(usize, usize)], batch: usize, lead: usize) -> Net {
    let mut r = rng(71 + batch as u64);
    let total: usize = layers.iter().map(|&(n, k)| n * k + n).sum();
    let grads = output_f32(plan, "grads", total);
    let mut at = 0;
    let mut parts = Vec::new();
    for (i, &(n, k)) in layers.iter().enumerate() {
        let dy = values_at(
            plan,
            &format!("dy{i}"),
            lead,
            uniform(&mut r, batch * n, -1.0, 1.0),
        );
        let skip = 4;
        let x = values_at(
            plan,
            &format!("x{i}"),
            lead,
            uniform(&mut r, (batch + skip) * k, -1.0, 1.0),
        )
        .sub(skip * k, batch * k);
        parts.push(WeightGrad {
            dy,
            x,
            dw: grads.sub(at, n * k),
            m: batch,
            n,
            k,
            db: Some(grads.sub(at + n * k, n)),
        });
        at += n * k + n;
    }
    let signed: Vec<f32> = uniform(&mut r, total, 0.5, 1.5)
        .into_iter()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { v } else { -v })
        .collect();
    let update = AdamUpdate {
        params: values_at(plan, "params", lead, signed),
        grads,
        m: values_at(plan, "m", lead, uniform(&mut r, total, -0.1, 0.1)),
        v: values_at(plan, "v", lead, uniform(&mut r, total, 0.0, 0.1)),
        step: input_u32(plan, "step", &[6]),
        hyper: AdamHyper {
            lr: 1e-3,
            weight_decay: 0.01,
            decay_steps: 50,
            ..AdamHyper::default()
        },
        arrivals: input_u32(plan, "arrivals", &[0]),
    };
    Net {
        parts,
        grads,
        update,
    }
}

/// Three launches of the fused op against three of the group then Adam
/// on the CPU: the gradients, parameters and moments agree, the counter
/// comes back advanced by 3 and the arrivals word at 0. Shapes: the seed
/// D and G (vec4 loads but for the one-output layer), odd batches and
/// widths (scalar loads), and slices off whole vectors (lead 3).
#[test]
fn the_fused_adam_step_matches_the_group_then_adam() {
    let cases: [(Layers, usize, usize); 5] = [
        (&[(128, 784), (128, 128), (1, 128)], 128, 4),
        (&[(128, 100), (128, 128), (784, 128)], 64, 4),
        (&[(7, 784), (127, 7)], 7, 4),
        (&[(256, 2), (1, 127), (33, 256)], 300, 4),
        (&[(128, 784), (1, 128)], 64, 3),
    ];
    for (case, &(layers, batch, lead)) in cases.iter().enumerate() {
        let mut plan = Plan::default();
        let net = network(&mut plan, layers, batch, lead);
        let fused = Op::MatmulDwGroup {
            parts: net.parts.clone(),
            adam: Some(net.update),
        };
        assert_eq!(lower(&fused).entry, "matmul_dw_group_adam");
        assert_eq!(fused.kernel_name(), "matmul_dw_group_adam");
        plan.add_phase("fused", vec![fused]);
        let mut apart = plan.clone();
        apart.add_phase(
            "apart",
            vec![
                Op::MatmulDwGroup {
                    parts: net.parts.clone(),
                    adam: None,
                },
                net.update.op(),
            ],
        );
        let mut cpu_apart = shadergan::cpu::CpuPlan::new(apart).expect("valid plan");
        cpu_apart.run(&["apart"; 3]).expect("cpu run");
        let Some((cpu, gpu)) = run_both(plan, &["fused"; 3]) else {
            return;
        };
        let u = net.update;
        let bits = |s: Slice, c: &shadergan::cpu::CpuPlan| {
            c.f32s(s).iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        for s in [net.grads, u.params, u.m, u.v] {
            assert_eq!(
                bits(s, &cpu),
                bits(s, &cpu_apart),
                "case {case}: CPU fused ≠ apart"
            );
        }
        let what = |name: &str| format!("case {case} ({batch} rows, {layers:?}) {name}");
        let grads_err = norm_rel_err(&read_gpu(&gpu, net.grads), cpu.f32s(net.grads));
        assert_close(grads_err, MATMUL_TOL, &what("grads"));
        for (name, s) in [("m", u.m), ("v", u.v)] {
            assert_close(
                norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s)),
                MATMUL_TOL,
                &what(name),
            );
        }
        let params_err = max_rel_err(&read_gpu(&gpu, u.params), cpu.f32s(u.params));
        assert_close(params_err, ELEMENTWISE_TOL, &what("params"));
        assert_eq!(cpu.u32s(u.step), [9], "{}", what("CPU counter"));
        assert_eq!(read_gpu_u32(&gpu, u.step), [9], "{}", what("GPU counter"));
        assert_eq!(read_gpu_u32(&gpu, u.arrivals), [0], "{}", what("arrivals"));
    }
}

/// The plain group's vec4 loads (inputs on whole vectors, batch a multiple
/// of 4) and scalar loads side by side, against the CPU.
#[test]
fn weight_gradient_groups_read_whole_vectors() {
    let mut plan = Plan::default();
    let net = network(&mut plan, &[(128, 784), (128, 128), (1, 128)], 68, 4);
    plan.add_phase(
        "group",
        vec![Op::MatmulDwGroup {
            parts: net.parts.clone(),
            adam: None,
        }],
    );
    let Some((cpu, gpu)) = run_both(plan, &["group"]) else {
        return;
    };
    for (i, p) in net.parts.iter().enumerate() {
        for (what, s) in [("dw", p.dw), ("db", p.db.unwrap())] {
            let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
            assert_close(err, MATMUL_TOL, &format!("part {i} {what}"));
        }
    }
}

/// The pass fuses a group with the Adam step after it only where the group
/// writes exactly that step's gradients and the step advances its counter;
/// a fused op whose parts miss part of its gradients is refused.
#[test]
fn adam_fuses_only_over_exactly_its_gradients() {
    let mut plan = Plan::default();
    let net = network(&mut plan, &[(7, 5), (3, 7)], 9, 4);
    let group = |parts: &[WeightGrad]| Op::MatmulDwGroup {
        parts: parts.to_vec(),
        adam: None,
    };
    let names = |ops: Vec<Op>| -> Vec<&'static str> {
        fuse_adam_into_weight_grads(ops)
            .iter()
            .map(Op::kernel_name)
            .collect()
    };
    let whole = vec![group(&net.parts), net.update.op()];
    assert_eq!(names(whole), ["matmul_dw_group_adam"]);

    let one_layer = vec![group(&net.parts[1..]), net.update.op()];
    assert_eq!(names(one_layer), ["matmul_dw_group", "adam"]);

    let Op::Adam {
        params,
        grads,
        m,
        v,
        step,
        hyper,
        ..
    } = net.update.op()
    else {
        unreachable!()
    };
    let no_counter = Op::Adam {
        params,
        grads,
        m,
        v,
        step,
        hyper,
        arrivals: None,
    };
    assert_eq!(
        names(vec![group(&net.parts), no_counter]),
        ["matmul_dw_group", "adam"]
    );

    let mut short = plan.clone();
    short.add_phase(
        "op",
        vec![Op::MatmulDwGroup {
            parts: net.parts[1..].to_vec(),
            adam: Some(net.update),
        }],
    );
    let err = short.validate().expect_err("a partial update").to_string();
    assert!(err.contains("do not cover every tensor"), "{err}");
}
