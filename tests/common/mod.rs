//! Shared test helpers: one GPU context per test binary, random inputs,
//! poisoned outputs, the relative-error measures the tests assert on, and
//! running the `shadergan` binary in a scratch folder.
#![allow(dead_code)]

pub mod conv_cases;
pub mod matmul_cases;

use std::sync::OnceLock;

use rand::{Rng, SeedableRng, rngs::StdRng};
use shadergan::cpu::CpuPlan;
use shadergan::gpu::{GpuContext, GpuPlan};
use shadergan::plan::{Elem, Init, Plan, Slice, batch_seeds};

/// Set (as CI does) to make a missing GPU adapter a test failure instead of a skip.
pub const REQUIRE_GPU_ENV: &str = "SHADERGAN_REQUIRE_GPU";

/// The GPU (llvmpipe in CI). Without an adapter the GPU half of each test is
/// skipped with the reason printed, unless `SHADERGAN_REQUIRE_GPU` is set.
pub fn gpu() -> Option<&'static GpuContext> {
    static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU tests run on {}", ctx.describe());
            Some(ctx)
        }
        Err(e) if std::env::var_os(REQUIRE_GPU_ENV).is_some() => panic!("{e}"),
        Err(e) => {
            // Straight to stderr, past the test harness's capture, so the skip is seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipping GPU checks: {e}");
            None
        }
    })
    .as_ref()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Words placed before every test slice, so kernels are exercised at non-zero offsets.
pub const LEAD: usize = 3;

/// Declares a buffer holding `values` after `LEAD` words of padding; returns the values' slice.
pub fn input_f32(plan: &mut Plan, name: &str, values: &[f32]) -> Slice {
    let mut v = vec![0.0; LEAD];
    v.extend_from_slice(values);
    let n = v.len();
    plan.buffer(name, Elem::F32, n, Init::F32(v))
        .sub(LEAD, values.len())
}

pub fn input_u32(plan: &mut Plan, name: &str, values: &[u32]) -> Slice {
    let mut v = vec![0; LEAD];
    v.extend_from_slice(values);
    let n = v.len();
    plan.buffer(name, Elem::U32, n, Init::U32(v))
        .sub(LEAD, values.len())
}

/// An output buffer poisoned with NaN, so an element the kernel never writes fails the test.
pub fn output_f32(plan: &mut Plan, name: &str, len: usize) -> Slice {
    let n = LEAD + len;
    plan.buffer(name, Elem::F32, n, Init::F32(vec![f32::NAN; n]))
        .sub(LEAD, len)
}

/// A u32 output poisoned with 0xFFFF_FFFF.
pub fn output_u32(plan: &mut Plan, name: &str, len: usize) -> Slice {
    let n = LEAD + len;
    plan.buffer(name, Elem::U32, n, Init::U32(vec![u32::MAX; n]))
        .sub(LEAD, len)
}

/// Runs phase `phase` of `plan` on both backends (None without a GPU).
pub fn run_both(plan: Plan, phases: &[&str]) -> Option<(CpuPlan, GpuPlan)> {
    let ctx = gpu()?;
    let mut cpu = CpuPlan::new(plan.clone()).expect("valid plan");
    cpu.run(phases).expect("cpu run");
    let gpu = GpuPlan::new(ctx, plan.clone()).expect("gpu plan");
    gpu.run(ctx, phases).expect("gpu run");
    check_seed_batched(&plan, phases, &gpu);
    Some((cpu, gpu))
}

/// The plan as 3 seeds of one batched plan (`batch_seeds`), run on the GPU:
/// every seed's copy of every buffer an op writes holds exactly what the
/// single run's does (a kernel that ignored its seed's uniform block would
/// leave seeds 1 and 2 poisoned, or write over seed 0's).
pub fn check_seed_batched(plan: &Plan, phases: &[&str], single: &GpuPlan) {
    let ctx = gpu().expect("a GPU");
    if plan.buffers.iter().any(|b| 3 * b.len > 1 << 24) {
        return; // three copies would pass the adapter's binding limit (grid tests)
    }
    let (batched, layout) = batch_seeds(vec![plan.clone(); 3]).expect("batched plan");
    let batched = GpuPlan::new(ctx, batched).expect("batched gpu plan");
    batched.run(ctx, phases).expect("batched gpu run");
    for p in phases {
        assert_eq!(
            batched.kernels(p).len(),
            single.kernels(p).len(),
            "phase {p}: not one launch per op for the 3 seeds"
        );
    }
    let mut written: Vec<_> = plan
        .phases
        .iter()
        .flat_map(|p| &p.ops)
        .flat_map(|op| op.reads_writes().1)
        .map(|s| s.buffer)
        .collect();
    written.sort();
    written.dedup();
    for id in written {
        let whole = Slice {
            buffer: id,
            offset: 0,
            len: plan.decl(id).len,
        };
        let want = read_gpu_u32(single, whole);
        for seed in 0..3 {
            let got = read_gpu_u32(&batched, layout.at(seed, whole));
            assert!(
                got == want,
                "seed {seed} of 3 in one launch differs from one seed alone in buffer '{}'",
                plan.decl(id).name
            );
        }
    }
}

pub fn read_gpu(gpu: &GpuPlan, s: Slice) -> Vec<f32> {
    gpu.read_f32(self::gpu().expect("a GPU"), s)
        .expect("read back")
}

pub fn read_gpu_u32(gpu: &GpuPlan, s: Slice) -> Vec<u32> {
    gpu.read_words(self::gpu().expect("a GPU"), s)
        .expect("read back")
}

/// Norm-wise relative error ‖got − want‖₂ / ‖want‖₂ (NaN anywhere gives NaN).
pub fn norm_rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let mut diff = 0.0f64;
    let mut norm = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (f64::from(*g), f64::from(*w));
        diff += (g - w) * (g - w);
        norm += w * w;
    }
    assert!(
        norm > 0.0,
        "reference is all zeros: a relative error means nothing"
    );
    (diff / norm).sqrt()
}

/// Largest elementwise relative error |got − want| / |want|. Where the
/// reference is exactly zero the kernel must give exactly zero too (relu, say).
/// NaN anywhere gives NaN, so a poisoned element fails any `<=` check.
pub fn max_rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    assert!(
        want.iter().any(|w| *w != 0.0),
        "reference is all zeros: a relative error means nothing"
    );
    let mut worst = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (f64::from(*g), f64::from(*w));
        let e = if w == 0.0 {
            if g == 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            (g - w).abs() / w.abs()
        };
        if e.is_nan() || g.is_nan() {
            return f64::NAN;
        }
        worst = worst.max(e);
    }
    worst
}

/// Asserts `err <= tol` with a message naming the case (NaN fails).
pub fn assert_close(err: f64, tol: f64, what: &str) {
    assert!(err <= tol, "{what}: relative error {err:e} > {tol:e}");
}

/// One tensor of a safetensors file, owned, for tests that build bad checkpoints.
pub struct RawTensor {
    pub name: String,
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Re-serialises the safetensors `bytes` after `edit` has changed its
/// tensors (names, dtypes, shapes, data) and its header metadata, through
/// the `safetensors` crate, so the result is a well-formed file.
pub fn rewrite_safetensors(
    bytes: &[u8],
    edit: impl FnOnce(&mut Vec<RawTensor>, &mut std::collections::HashMap<String, String>),
) -> Vec<u8> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).expect("a safetensors file");
    let mut metadata = header.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(bytes).expect("a safetensors file");
    let mut tensors: Vec<RawTensor> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| RawTensor {
            name,
            dtype: t.dtype(),
            shape: t.shape().to_vec(),
            data: t.data().to_vec(),
        })
        .collect();
    edit(&mut tensors, &mut metadata);
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|t| {
            let view = safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.data)
                .expect("data fits the dtype and shape");
            (t.name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, Some(metadata)).expect("serialises")
}

/// The promise for bad input and faults: exit status `code`, no panic, and exactly one
/// line starting with `error:`, which contains every one of `needles`. Returns it.
pub fn one_error_line(o: &std::process::Output, code: i32, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "exit status; stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "not one error line: {err}");
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "no '{needle}' in: {}",
            errors[0]
        );
    }
    errors[0].to_string()
}

/// Every file under `dir` (relative path → bytes), but the run folder's lock
/// file (`.shadergan.lock`: it names its holder's PID, and is no output).
pub fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name() != Some(shadergan::io::run_lock::LOCK_FILE.as_ref()) {
                let bytes = std::fs::read(&p).unwrap();
                files.insert(p.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

/// The `shadergan` binary with `args`: XDG_RUNTIME_DIR set (the Vulkan
/// loader wants one) and the fault hook's variable cleared.
pub fn shadergan_command(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_shadergan"));
    c.args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove(shadergan::fault::FAULT_ENV);
    c
}

/// Runs the binary with `args` to the end.
pub fn shadergan(args: &[&str]) -> std::process::Output {
    shadergan_command(args).output().expect("the binary runs")
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, absent path under the target folder's temporary space, named
/// after the test binary (`cli`, `faults`, ...) and `name`.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let stem = exe.file_stem().unwrap().to_string_lossy().into_owned();
    let binary = stem.rsplit_once('-').map_or(stem.as_str(), |(b, _)| b);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{binary}-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
