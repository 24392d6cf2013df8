//! The WGSL sources, embedded in the binary. One file per kernel family under
//! `shaders/`; each opens with the math it computes, its buffer layouts and
//! its dispatch shape.

/// A WGSL source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Matmul,
    Activation,
    Reduce,
    Loss,
    Parzen,
    Adam,
    Ema,
    Random,
    Gather,
    Fill,
    Counter,
    MlpForward,
    Conv2d,
    BatchNorm,
    SumSplits,
    /// `matmul_coop.wgsl` joined to `matmul.wgsl`: the tensor-core matmul.
    /// Needs a device with `SHADER_F16` and `EXPERIMENTAL_COOPERATIVE_MATRIX`.
    MatmulCoop,
}

impl Shader {
    pub const ALL: [Shader; 16] = [
        Shader::Matmul,
        Shader::Activation,
        Shader::Reduce,
        Shader::Loss,
        Shader::Parzen,
        Shader::Adam,
        Shader::Ema,
        Shader::Random,
        Shader::Gather,
        Shader::Fill,
        Shader::Counter,
        Shader::MlpForward,
        Shader::Conv2d,
        Shader::BatchNorm,
        Shader::SumSplits,
        Shader::MatmulCoop,
    ];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Matmul => "matmul.wgsl",
            Shader::Activation => "activation.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Parzen => "parzen.wgsl",
            Shader::Adam => "adam.wgsl",
            Shader::Ema => "ema.wgsl",
            Shader::Random => "random.wgsl",
            Shader::Gather => "gather.wgsl",
            Shader::Fill => "fill.wgsl",
            Shader::Counter => "counter.wgsl",
            Shader::MlpForward => "mlp_forward.wgsl",
            Shader::Conv2d => "conv2d.wgsl",
            Shader::BatchNorm => "batchnorm.wgsl",
            Shader::SumSplits => "sum_splits.wgsl",
            Shader::MatmulCoop => "matmul_coop.wgsl",
        }
    }

    /// The module's WGSL: the file itself, except for the tensor-core matmul,
    /// which is its file followed by `matmul.wgsl` (whose bindings and
    /// epilogue it shares; its `enable` lines must open the module).
    pub fn source(self) -> &'static str {
        match self {
            Shader::MatmulCoop => MATMUL_COOP_MODULE.as_str(),
            Shader::Matmul => include_str!("../shaders/matmul.wgsl"),
            Shader::Activation => include_str!("../shaders/activation.wgsl"),
            Shader::Reduce => include_str!("../shaders/reduce.wgsl"),
            Shader::Loss => include_str!("../shaders/loss.wgsl"),
            Shader::Parzen => include_str!("../shaders/parzen.wgsl"),
            Shader::Adam => include_str!("../shaders/adam.wgsl"),
            Shader::Ema => include_str!("../shaders/ema.wgsl"),
            Shader::Random => include_str!("../shaders/random.wgsl"),
            Shader::Gather => include_str!("../shaders/gather.wgsl"),
            Shader::Fill => include_str!("../shaders/fill.wgsl"),
            Shader::Counter => include_str!("../shaders/counter.wgsl"),
            Shader::MlpForward => include_str!("../shaders/mlp_forward.wgsl"),
            Shader::Conv2d => include_str!("../shaders/conv2d.wgsl"),
            Shader::BatchNorm => include_str!("../shaders/batchnorm.wgsl"),
            Shader::SumSplits => include_str!("../shaders/sum_splits.wgsl"),
        }
    }

    /// The text of the file itself (for `MatmulCoop`, without `matmul.wgsl`).
    pub fn file_source(self) -> &'static str {
        match self {
            Shader::MatmulCoop => MATMUL_COOP_FILE,
            other => other.source(),
        }
    }

    /// Whether its kernels read the pipeline constant `SEEDS` (those whose
    /// workgroup z also counts splits: z = split·SEEDS + seed); the others
    /// take the seed from z alone.
    pub fn has_seeds_constant(self) -> bool {
        matches!(self, Shader::Matmul | Shader::Conv2d | Shader::MatmulCoop)
    }

    /// Whether its module needs f16 and cooperative matrices (the device
    /// features `SHADER_F16` and `EXPERIMENTAL_COOPERATIVE_MATRIX`).
    pub fn needs_tensor_cores(self) -> bool {
        self == Shader::MatmulCoop
    }
}

const MATMUL_COOP_FILE: &str = include_str!("../shaders/matmul_coop.wgsl");

static MATMUL_COOP_MODULE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{MATMUL_COOP_FILE}\n{}",
        include_str!("../shaders/matmul.wgsl")
    )
});
