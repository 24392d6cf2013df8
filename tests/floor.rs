//! The dispatch floor (`shadergan::gpu::floor`): every variant's launches all
//! land (the counters are read back inside `measure`), and the figures are
//! positive and name their timing.

mod common;

use shadergan::gpu::floor::{self, Dependence};

#[test]
fn every_floor_variant_lands_every_launch() {
    let Some(ctx) = common::gpu() else { return };
    // 37: not a multiple of the 16 rotating buffers, so their counts differ.
    for v in &floor::VARIANTS {
        let f = floor::measure(ctx, v, 37, 2).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(f.dispatches, 37);
        assert_eq!(f.variant, v.name);
        for x in [f.us_per_dispatch(), f.wall_us, f.encode_us] {
            assert!(x.is_finite() && x > 0.0, "{}: {f:?}", v.name);
        }
        let stamped = ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY);
        assert_eq!(f.timing(), if stamped { "timestamps" } else { "wall" });
    }
    assert_eq!(floor::VARIANTS[0].dependence, Dependence::Chain);
    assert!(!floor::VARIANTS[0].pass_each && !floor::VARIANTS[0].shared_bind_group);
}

#[test]
fn a_timestamped_pass_per_launch_spans_several_query_sets() {
    let Some(ctx) = common::gpu() else { return };
    // 2 queries a pass: past one query set of 4096.
    let v = &floor::VARIANTS[4];
    assert!(v.pass_each && v.timestamps_each);
    let f = floor::measure(ctx, v, 2100, 1).unwrap();
    assert!(f.us_per_dispatch() > 0.0, "{f:?}");
}
