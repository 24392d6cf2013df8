//! `shadergan bench`: the GPU and the CPU backend side by side on matmul
//! sizes, the elementwise kernels, Adam and whole GAN steps, then the GPU's
//! dispatch floor (µs per trivial launch, recorded several ways).

use clap::Args;
use shadergan::bench::{self, Machine, Row, cases};
use shadergan::gpu::{GpuContext, MatmulPrecision};

use super::PrecisionArg;
use shadergan::gpu::lower_conv::{ConvTiles, set_conv_tiles};
use shadergan::gpu::lowering::{MatmulBig, set_matmul_big};
use shadergan::io::atomic::write_atomic;

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Print the results as JSON (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Small sizes only: a smoke test that takes seconds.
    #[arg(long)]
    pub quick: bool,
    /// Only the cases whose name contains this text (e.g. "matmul", "step").
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,
    /// Seconds of timing per case and backend (after a warm-up).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.5)]
    pub min_time: f64,
    /// Skip the CPU backend.
    #[arg(long, conflicts_with = "no_gpu")]
    pub no_cpu: bool,
    /// Skip the GPU.
    #[arg(long)]
    pub no_gpu: bool,
    /// The GPU adapter: its number in `shadergan info`, or text its name contains (else SHADERGAN_ADAPTER, else the best).
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// The convolutions' output tiles: by size (the default, as training
    /// runs), or always 64×64, 128×128 or 128×64, to compare the kernels at
    /// one shape.
    #[arg(long, value_enum, value_name = "TILES", default_value_t = ConvTilesArg::BySize)]
    pub conv_tiles: ConvTilesArg,
    /// The 128-tile matmul kernel: prefetch (`matmul_bias_act_128_prefetch`,
    /// the default, as training runs) or plain (`matmul_bias_act_128`), to
    /// compare the two at the same shapes and in the same steps.
    #[arg(long, value_enum, value_name = "KERNEL", default_value_t = MatmulBigArg::Prefetch)]
    pub matmul_128: MatmulBigArg,
    /// The dense products' precision on the GPU, as `train --matmul-precision`:
    /// f32, or f16-tensor-cores (refused where the adapter lacks them).
    #[arg(long, value_enum, value_name = "PRECISION", default_value_t = PrecisionArg::F32)]
    pub matmul_precision: PrecisionArg,
    /// Also write the JSON results to this file (refused if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

/// `--matmul-128`: [`MatmulBig`] on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulBigArg {
    Plain,
    Prefetch,
}

impl MatmulBigArg {
    fn kernel(self) -> MatmulBig {
        match self {
            MatmulBigArg::Plain => MatmulBig::Plain,
            MatmulBigArg::Prefetch => MatmulBig::Prefetch,
        }
    }
}

/// `--conv-tiles`: [`ConvTiles`] on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvTilesArg {
    BySize,
    #[value(name = "64")]
    Tile64,
    #[value(name = "128")]
    Tile128,
    #[value(name = "128x64")]
    Tile128x64,
}

impl ConvTilesArg {
    fn policy(self) -> ConvTiles {
        match self {
            ConvTilesArg::BySize => ConvTiles::BySize,
            ConvTilesArg::Tile64 => ConvTiles::Always64,
            ConvTilesArg::Tile128 => ConvTiles::Always128,
            ConvTilesArg::Tile128x64 => ConvTiles::Always128x64,
        }
    }
}

pub fn run(a: &BenchArgs) -> anyhow::Result<()> {
    set_conv_tiles(a.conv_tiles.policy());
    set_matmul_big(a.matmul_128.kernel());
    anyhow::ensure!(
        a.min_time.is_finite() && (0.0..=600.0).contains(&a.min_time),
        "--min-time must be between 0 and 600 seconds (got {})",
        a.min_time
    );
    if let Some(out) = &a.out {
        anyhow::ensure!(
            !out.exists(),
            "{} already exists; bench does not overwrite results",
            out.display()
        );
    }
    let gpu = if a.no_gpu {
        None
    } else {
        let precision = a.matmul_precision.into();
        match GpuContext::with_precision(a.adapter.as_deref(), precision) {
            Ok(ctx) => Some(ctx),
            Err(e) if a.adapter.is_none() && precision == MatmulPrecision::F32 => {
                eprintln!("note: no GPU adapter ({e}): measuring the CPU backend only");
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    let machine = Machine::here(gpu.as_ref());
    let mut rows = Vec::new();
    for case in cases::suite(a.quick)? {
        if let Some(text) = &a.only
            && !case.name.contains(text.as_str())
            && case.group != text
        {
            continue;
        }
        eprintln!("measuring {} …", case.name);
        let g = match &gpu {
            Some(ctx) => Some(bench::measure_gpu(ctx, &case, a.min_time)?),
            None => None,
        };
        let c = if a.no_cpu || !case.cpu_too {
            None
        } else {
            Some(bench::measure_cpu(&case, a.min_time)?)
        };
        rows.push(Row::new(&case, g, c));
    }
    let floor = match &gpu {
        Some(ctx) => bench::measure_floor(ctx, a.quick, a.only.as_deref())?,
        None => Vec::new(),
    };
    anyhow::ensure!(
        !rows.is_empty() || !floor.is_empty(),
        "no case matches --only{}",
        if gpu.is_none() {
            " (the dispatch floor needs a GPU)"
        } else {
            ""
        }
    );
    let mut table = if rows.is_empty() {
        String::new()
    } else {
        bench::format_table(&machine, &rows)
    };
    table += &bench::format_floor(&floor);
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "machine": machine, "min_time_s": a.min_time, "quick": a.quick, "results": rows,
        "floor": floor,
    }))?;
    if let Some(out) = &a.out {
        write_atomic(out, json.as_bytes())?;
    }
    if a.json {
        eprint!("{table}");
        println!("{json}");
    } else {
        print!("{table}");
    }
    Ok(())
}
