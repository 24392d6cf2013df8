//! `shadergan info`: what wgpu sees and what the chosen adapter can do.

use shadergan::gpu::{ADAPTER_ENV, GpuContext, list_adapters};

pub fn run(adapter: Option<&str>) -> anyhow::Result<()> {
    let adapters = list_adapters();
    println!("adapters ({}):", adapters.len());
    for (i, a) in adapters.iter().enumerate() {
        println!(
            "  {i}: {} | {:?} | {:?} | driver {} {}",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
    }
    let wanted = adapter
        .map(str::to_string)
        .or_else(|| std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty()));
    let ctx = GpuContext::with_adapter(wanted.as_deref())?;
    println!("chosen: {}", ctx.describe());
    println!("features: {:?}", ctx.features);
    println!(
        "cooperative matrices (tensor cores): {}",
        ctx.describe_cooperative_matrix()
    );
    println!(
        "--matmul-precision f16-tensor-cores: {}",
        match &ctx.tensor_cores_refused {
            None => "available".to_string(),
            Some(reason) => format!("refused ({reason})"),
        }
    );
    let l = &ctx.limits;
    println!("limits:");
    println!(
        "  max_storage_buffer_binding_size   {}",
        l.max_storage_buffer_binding_size
    );
    println!("  max_buffer_size                   {}", l.max_buffer_size);
    println!(
        "  max_compute_workgroup_storage_size {}",
        l.max_compute_workgroup_storage_size
    );
    println!(
        "  max_compute_invocations_per_workgroup {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  max_compute_workgroup_size        {} x {} x {}",
        l.max_compute_workgroup_size_x,
        l.max_compute_workgroup_size_y,
        l.max_compute_workgroup_size_z
    );
    println!(
        "  max_compute_workgroups_per_dimension {}",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "  max_storage_buffers_per_shader_stage {}",
        l.max_storage_buffers_per_shader_stage
    );
    Ok(())
}
