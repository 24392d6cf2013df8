//! The GPU backend: context, lowering of ops to kernel launches, the plan
//! executor and non-blocking scalar readback.

pub mod context;
pub mod executor;
pub mod floor;
pub mod lower_conv;
pub mod lower_norm;
pub mod lowering;
pub mod profiler;
pub mod readback;
pub mod tensor_cores;

pub use context::{ADAPTER_ENV, GpuContext, GpuError, ShaderChecks, list_adapters};
pub use executor::{GpuPlan, PipelineCache};
pub use profiler::{profile, time_launches};
pub use readback::ScalarReadback;
pub use tensor_cores::MatmulPrecision;
