//! The GPU context: which adapter, which device, which limits.
//!
//! Adapter choice, in order: an adapter asked for (`SHADERGAN_ADAPTER`, or the
//! caller's `--adapter`: a number from `shadergan info`'s list, or part of a
//! name), else a discrete GPU, then an integrated one, then
//! anything else (virtual), then a software adapter such as Mesa's llvmpipe.
//! The device is requested with the adapter's own limits, not wgpu's defaults,
//! so large workgroups and large storage buffers are available where the
//! hardware has them.

use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::tensor_cores::{self, MatmulPrecision};

/// Environment variable that picks an adapter by its number in `shadergan info`
/// or (part of) its name.
pub const ADAPTER_ENV: &str = "SHADERGAN_ADAPTER";

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found (wgpu sees no Vulkan, Metal, DX12 or GL device); install Mesa's \
         software Vulkan (`apt-get install mesa-vulkan-drivers`) or run on a machine with a GPU"
    )]
    NoAdapter,
    #[error("no GPU adapter matches '{wanted}'; available: {available}")]
    AdapterNotFound { wanted: String, available: String },
    #[error("could not open the GPU device on '{adapter}': {reason}")]
    RequestDevice { adapter: String, reason: String },
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("GPU error: {0}")]
    Validation(String),
    #[error(
        "{what} needs {needed} bytes but the adapter allows at most {limit} bytes ({limit_name})"
    )]
    TooLarge {
        what: String,
        needed: u64,
        limit: u64,
        limit_name: &'static str,
    },
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
    #[error("the tensor-core path (f16-tensor-cores) cannot run on '{adapter}': {reason}")]
    NoTensorCores { adapter: String, reason: String },
}

/// The device, its queue and what it can do. Cloning shares the same device.
#[derive(Clone)]
pub struct GpuContext {
    pub adapter_info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// The adapter's cooperative-matrix (tensor-core) configurations, where
    /// it offers `EXPERIMENTAL_COOPERATIVE_MATRIX` (empty otherwise).
    pub cooperative_matrix: Vec<wgpu::CooperativeMatrixProperties>,
    /// The arithmetic of the dense products of every plan built on this
    /// context; the device has the tensor-core features only when it is
    /// [`MatmulPrecision::F16TensorCores`].
    pub matmul_precision: MatmulPrecision,
    /// Why the adapter cannot run `--matmul-precision f16-tensor-cores`, or
    /// `None` where it can.
    pub tensor_cores_refused: Option<String>,
    /// Whether wgpu adds its runtime checks to our shaders (see
    /// [`ShaderChecks`]).
    pub shader_checks: ShaderChecks,
    lost: Arc<Mutex<Option<String>>>,
    /// The first error wgpu reported outside any error scope (wgpu's default
    /// would panic); [`GpuContext::check_lost`] returns it.
    uncaptured: Arc<Mutex<Option<String>>>,
}

/// Every adapter wgpu can see that can run compute shaders, best first: the
/// order `--adapter N` indexes and `shadergan info` numbers.
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    ranked_adapters(&new_instance())
        .iter()
        .map(|a| a.get_info())
        .collect()
}

/// The adapters with compute shaders, sorted by kind (discrete first) and then
/// backend (native before GL); the sort is stable, so two equal cards keep
/// the driver's enumeration order.
fn ranked_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut adapters: Vec<wgpu::Adapter> =
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .into_iter()
            // Compute shaders are required: GL adapters without them are useless here.
            .filter(|a| {
                a.get_downlevel_capabilities()
                    .flags
                    .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            })
            .collect();
    adapters.sort_by_key(|a| {
        let info = a.get_info();
        (
            device_type_rank(info.device_type),
            backend_rank(info.backend),
        )
    });
    adapters
}

/// Where `--adapter` points: a number is a position in [`list_adapters`]
/// (for hosts with several identical cards), anything else part of a name.
#[derive(Debug, PartialEq, Eq)]
pub enum AdapterQuery {
    Index(usize),
    NameContains(String),
}

impl AdapterQuery {
    pub fn parse(wanted: &str) -> AdapterQuery {
        match wanted.trim().parse::<usize>() {
            Ok(i) => AdapterQuery::Index(i),
            Err(_) => AdapterQuery::NameContains(wanted.to_lowercase()),
        }
    }

    /// The position of the first adapter this query picks, if any.
    pub fn pick(&self, names: &[String]) -> Option<usize> {
        match self {
            AdapterQuery::Index(i) => (*i < names.len()).then_some(*i),
            AdapterQuery::NameContains(w) => {
                names.iter().position(|n| n.to_lowercase().contains(w))
            }
        }
    }
}

/// Vulkan, Metal and DX12 by default (GL's compute support is too thin, and
/// probing it prints noise on headless machines); `WGPU_BACKEND` overrides.
fn new_instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        desc.backends = wgpu::Backends::PRIMARY;
    }
    wgpu::Instance::new(desc)
}

/// Preference rank of an adapter kind: lower is better.
fn device_type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// A wgpu error's report (a cause chain, a source excerpt) on one line.
fn one_line(e: &wgpu::Error) -> String {
    let lines = e.to_string();
    let lines: Vec<&str> = lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" ")
}

/// Backend preference among equal kinds: the native compute APIs before GL.
fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

impl GpuContext {
    /// Opens the adapter named by `SHADERGAN_ADAPTER`, or the best one.
    pub fn new() -> Result<GpuContext, GpuError> {
        let wanted = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
        Self::with_adapter(wanted.as_deref())
    }

    /// Opens the adapter `wanted` names ([`AdapterQuery`]: a position in
    /// [`list_adapters`], or part of a name, case-insensitive), or the best
    /// adapter when `wanted` is `None`.
    pub fn with_adapter(wanted: Option<&str>) -> Result<GpuContext, GpuError> {
        Self::with_precision(wanted, MatmulPrecision::F32)
    }

    /// [`GpuContext::with_adapter`], with the dense products at `precision`:
    /// for the tensor cores the device is requested with their (experimental)
    /// features, and an adapter without them is refused.
    pub fn with_precision(
        wanted: Option<&str>,
        precision: MatmulPrecision,
    ) -> Result<GpuContext, GpuError> {
        let mut adapters = ranked_adapters(&new_instance());
        if adapters.is_empty() {
            return Err(GpuError::NoAdapter);
        }
        let adapter = match wanted {
            None => adapters.swap_remove(0),
            Some(w) => {
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                match AdapterQuery::parse(w).pick(&names) {
                    Some(i) => adapters.swap_remove(i),
                    None => {
                        let available = adapters
                            .iter()
                            .enumerate()
                            .map(|(i, a)| {
                                let info = a.get_info();
                                format!("{i}: {} ({:?})", info.name, info.backend)
                            })
                            .collect::<Vec<_>>()
                            .join(", ");
                        return Err(GpuError::AdapterNotFound {
                            wanted: w.to_string(),
                            available,
                        });
                    }
                }
            }
        };
        Self::open(adapter, precision)
    }

    fn open(adapter: wgpu::Adapter, precision: MatmulPrecision) -> Result<GpuContext, GpuError> {
        let adapter_info = adapter.get_info();
        let limits = adapter.limits();
        let cooperative_matrix = if adapter
            .features()
            .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
        {
            adapter.cooperative_matrix_properties()
        } else {
            Vec::new()
        };
        // Timestamp queries are used by the profiler where the adapter has them.
        let mut features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let mut experimental = wgpu::ExperimentalFeatures::disabled();
        let tensor_cores_refused = tensor_cores::unsupported_reason(&adapter);
        if precision == MatmulPrecision::F16TensorCores {
            if let Some(reason) = tensor_cores_refused {
                let adapter = adapter_info.name.clone();
                return Err(GpuError::NoTensorCores { adapter, reason });
            }
            features |= tensor_cores::required_features();
            // SAFETY: wgpu's cooperative matrices are experimental (their
            // validation may be incomplete); the one kernel using them is
            // checked against the CPU reference on the adapter by
            // tests/matmul_coop.rs, and the path is only taken when asked for.
            experimental = unsafe { wgpu::ExperimentalFeatures::enabled() };
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("shadergan"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::RequestDevice {
            adapter: adapter_info.name.clone(),
            reason: e.to_string(),
        })?;
        let lost = Arc::new(Mutex::new(None));
        let lost_flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_flag.lock() {
                *slot = Some(if message.is_empty() {
                    format!("{reason:?}")
                } else {
                    format!("{reason:?}: {message}")
                });
            }
        });
        // Once the device is destroyed or lost, operations on its buffers fail
        // with validation errors; record them instead of panicking.
        let uncaptured = Arc::new(Mutex::new(None));
        let uncaptured_slot = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = uncaptured_slot.lock() {
                slot.get_or_insert_with(|| one_line(&e));
            }
        }));
        Ok(GpuContext {
            adapter_info,
            device,
            queue,
            limits,
            features,
            cooperative_matrix,
            matmul_precision: precision,
            tensor_cores_refused,
            shader_checks: ShaderChecks::from_env(),
            lost,
            uncaptured,
        })
    }

    /// The adapter's cooperative-matrix configurations in one line, as
    /// `M×N×K A/B→C` (e.g. `16×16×16 F16→F32`), or why there are none.
    pub fn describe_cooperative_matrix(&self) -> String {
        if self.cooperative_matrix.is_empty() {
            return "none (the adapter does not offer EXPERIMENTAL_COOPERATIVE_MATRIX)".into();
        }
        (self.cooperative_matrix.iter())
            .map(|c| {
                let (m, n, k) = (c.m_size, c.n_size, c.k_size);
                format!("{m}×{n}×{k} {:?}→{:?}", c.ab_type, c.cr_type)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A one-line description: name, backend and kind of the adapter.
    pub fn describe(&self) -> String {
        let i = &self.adapter_info;
        format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
    }

    fn lost_reason(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|s| s.clone())
    }

    /// An error if the device has been lost since it was opened, or if wgpu
    /// reported an error outside an error scope (reported as the loss when
    /// the device turns out to be lost: the error was its consequence).
    pub fn check_lost(&self) -> Result<(), GpuError> {
        if let Some(reason) = self.lost_reason() {
            return Err(GpuError::DeviceLost(reason));
        }
        let Some(error) = self.uncaptured.lock().ok().and_then(|s| s.clone()) else {
            return Ok(());
        };
        // A destroyed device reports its loss on the next poll.
        let _ = self.device.poll(wgpu::PollType::Poll);
        Err(match self.lost_reason() {
            Some(reason) => GpuError::DeviceLost(reason),
            None => GpuError::Validation(error),
        })
    }

    /// Refuses a storage buffer larger than the adapter can bind or allocate.
    pub fn check_buffer_size(&self, what: &str, bytes: u64) -> Result<(), GpuError> {
        let binding = self.limits.max_storage_buffer_binding_size;
        if bytes > binding {
            return Err(GpuError::TooLarge {
                what: what.to_string(),
                needed: bytes,
                limit: binding,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        if bytes > self.limits.max_buffer_size {
            return Err(GpuError::TooLarge {
                what: what.to_string(),
                needed: bytes,
                limit: self.limits.max_buffer_size,
                limit_name: "max_buffer_size",
            });
        }
        Ok(())
    }

    /// A buffer holding `data`, for `usage`; one zeroed word when `data` is
    /// empty, since wgpu cannot bind an empty buffer.
    pub fn buffer_from<T: bytemuck::Pod>(
        &self,
        label: &str,
        data: &[T],
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let contents: &[u8] = bytemuck::cast_slice(data);
        let contents = if contents.is_empty() {
            &[0; 4]
        } else {
            contents
        };
        let label = Some(label);
        let desc = wgpu::util::BufferInitDescriptor {
            label,
            contents,
            usage,
        };
        self.device.create_buffer_init(&desc)
    }

    /// Compiles the entry point `entry` of the WGSL `source` into a pipeline
    /// whose bind group layouts come from the shader's bindings. An error in
    /// the WGSL or the pipeline is returned here rather than reported later.
    pub fn compile(
        &self,
        label: &str,
        source: &str,
        entry: &str,
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.shader_module(label, source);
        let pipeline = self.pipeline(label, &module, entry);
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(GpuError::Validation(format!("{label}: {}", one_line(&e)))),
            None => Ok(pipeline),
        }
    }

    /// The WGSL `source` as a module, with wgpu's runtime checks or without
    /// them as [`GpuContext::shader_checks`] says.
    pub fn shader_module(&self, label: &str, source: &str) -> wgpu::ShaderModule {
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        match self.shader_checks {
            ShaderChecks::Checked => self.device.create_shader_module(desc),
            // SAFETY: ShaderChecks::Trusted's contract: only this crate's
            // shaders, whose loops end, whose divisors are constants or sizes
            // above zero, and which test every global index themselves.
            ShaderChecks::Trusted => unsafe {
                self.device
                    .create_shader_module_trusted(desc, trusted_checks())
            },
        }
    }

    /// The compute pipeline of `entry` in `module`, its layout from the
    /// shader's bindings.
    pub fn pipeline(
        &self,
        label: &str,
        module: &wgpu::ShaderModule,
        entry: &str,
    ) -> wgpu::ComputePipeline {
        self.pipeline_with_constants(label, module, entry, &[])
    }

    /// [`GpuContext::pipeline`] with values for the module's pipeline
    /// constants (`override` declarations; each name must be declared).
    pub fn pipeline_with_constants(
        &self,
        label: &str,
        module: &wgpu::ShaderModule,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> wgpu::ComputePipeline {
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            })
    }

    /// A bind group for group 0 of `pipeline`: each `(binding, buffer)` pair
    /// binds the whole buffer.
    pub fn bind_group(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .map(|&(binding, buffer)| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Finishes `encoder` with a copy of `bytes` bytes of `src` (from `offset`) into a
    /// fresh staging buffer, submits it, and returns those bytes once the GPU is done.
    pub fn submit_and_read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read back"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(src, offset, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait_idle()?;
        rx.recv()
            .map_err(|e| GpuError::Readback(e.to_string()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let out = view.to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Blocks until all submitted work has finished.
    pub fn wait_idle(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Validation(e.to_string()))?;
        self.check_lost()
    }
}

/// Whether wgpu wraps our shaders in its runtime checks: an index clamp on
/// every workgroup-array access, a counter in every loop (so that the driver
/// need not assume it ends) and a guard on every integer division. On an
/// H200 they cost 12–21% of the small GAN steps (docs/benchmarks.md), so
/// this crate's own kernels run without them by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShaderChecks {
    /// wgpu's defaults, sound for any shader: `SHADERGAN_SHADER_CHECKS=checked`
    /// (to debug a new kernel, or to compare).
    Checked,
    /// None of those checks; storage buffers stay bounds-checked by the
    /// driver's robust buffer access where it has it. Sound for shaders that
    /// keep their own indices in range, end their loops and never divide by
    /// zero: this crate's kernels, each tested against the CPU reference.
    Trusted,
}

impl ShaderChecks {
    /// The environment variable that picks the checks.
    pub const ENV: &str = "SHADERGAN_SHADER_CHECKS";

    /// `SHADERGAN_SHADER_CHECKS=checked|trusted`, else trusted.
    fn from_env() -> ShaderChecks {
        match std::env::var(Self::ENV).as_deref() {
            Ok("checked") => ShaderChecks::Checked,
            _ => ShaderChecks::Trusted,
        }
    }
}

fn trusted_checks() -> wgpu::ShaderRuntimeChecks {
    // SAFETY: see ShaderChecks::Trusted.
    unsafe { wgpu::ShaderRuntimeChecks::all(false) }
}

#[cfg(test)]
mod tests {
    use super::AdapterQuery;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_number_picks_an_adapter_by_position_so_identical_cards_can_be_told_apart() {
        let two_cards = names(&[
            "NVIDIA H200",
            "NVIDIA H200",
            "llvmpipe (LLVM 19.1.7, 256 bits)",
        ]);
        assert_eq!(AdapterQuery::parse("1"), AdapterQuery::Index(1));
        assert_eq!(AdapterQuery::parse(" 0 ").pick(&two_cards), Some(0));
        assert_eq!(AdapterQuery::parse("1").pick(&two_cards), Some(1));
        assert_eq!(AdapterQuery::parse("3").pick(&two_cards), None);
    }

    #[test]
    fn text_picks_the_first_adapter_whose_name_contains_it_ignoring_case() {
        let list = names(&["NVIDIA H200", "llvmpipe (LLVM 19.1.7, 256 bits)"]);
        assert_eq!(AdapterQuery::parse("LLVMpipe").pick(&list), Some(1));
        assert_eq!(AdapterQuery::parse("h200").pick(&list), Some(0));
        assert_eq!(AdapterQuery::parse("radeon").pick(&list), None);
        // A name with digits in it is still a name.
        assert_eq!(
            AdapterQuery::parse("H200"),
            AdapterQuery::NameContains("h200".into())
        );
    }
}
