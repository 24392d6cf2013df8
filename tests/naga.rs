//! Every WGSL file in `shaders/` parses and validates with naga, is embedded
//! in the crate, and opens with its documenting comment.

use std::path::Path;

use shadergan::plan::MAX_SEEDS;
use shadergan::shaders::Shader;

fn shader_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    files
}

/// The capabilities a shader's module may use: none, except f16 and
/// cooperative matrices for the tensor-core matmul.
fn capabilities(shader: Shader) -> naga::valid::Capabilities {
    if shader.needs_tensor_cores() {
        naga::valid::Capabilities::COOPERATIVE_MATRIX | naga::valid::Capabilities::SHADER_FLOAT16
    } else {
        naga::valid::Capabilities::empty()
    }
}

/// Every module (each file, or for the tensor-core matmul its file joined to
/// matmul.wgsl; the next test checks that every file is one) parses and
/// validates, with only the capabilities it declares, and the tensor-core
/// module also writes SPIR-V (naga 30's writer has panicked on cooperative
/// loads whose pointer held an inline index).
#[test]
fn every_shader_parses_and_validates() {
    for shader in Shader::ALL {
        let (name, source) = (shader.file_name(), shader.source());
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities(shader));
        let info = validator
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        assert!(!module.entry_points.is_empty(), "{name} has no entry point");
        check_seed_uniforms(name, &module);
        // SPIR-V as a batched plan's pipelines get it: SEEDS set where declared.
        let mut constants = naga::back::PipelineConstants::default();
        if shader.has_seeds_constant() {
            constants.insert("SEEDS".into(), 3.0);
        }
        let (module, info) =
            naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                .unwrap_or_else(|e| panic!("{name}: pipeline constants: {e}"));
        let options = naga::back::spv::Options::default();
        naga::back::spv::write_vec(&module, &info, &options, None)
            .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
    }
}

/// Every uniform is an array of `MAX_SEEDS` blocks (one per seed of a
/// batched plan) whose stride is the block's own size, so the host's
/// blocks, each padded to 16 bytes, line up with the kernel's.
fn check_seed_uniforms(name: &str, module: &naga::Module) {
    for (_, var) in module.global_variables.iter() {
        if var.space != naga::AddressSpace::Uniform {
            continue;
        }
        let what = var.name.as_deref().unwrap_or("?");
        let naga::TypeInner::Array { base, size, stride } = module.types[var.ty].inner else {
            panic!("{name}: uniform {what} is not an array of per-seed blocks");
        };
        let blocks = match size {
            naga::ArraySize::Constant(n) => n.get() as usize,
            _ => panic!("{name}: uniform {what} has no fixed length"),
        };
        assert_eq!(blocks, MAX_SEEDS, "{name}: uniform {what}");
        let span = module.types[base].inner.size(module.to_ctx());
        assert_eq!(stride, span, "{name}: uniform {what}'s blocks are padded");
        assert_eq!(
            span % 16,
            0,
            "{name}: uniform {what}'s block is not whole 16 bytes"
        );
    }
}

#[test]
fn every_shader_file_is_embedded_and_documented() {
    let names: Vec<String> = shader_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for shader in Shader::ALL {
        assert!(
            names.contains(&shader.file_name().to_string()),
            "{} is embedded but not in shaders/",
            shader.file_name()
        );
    }
    for name in &names {
        let shader = Shader::ALL
            .iter()
            .find(|s| s.file_name() == name)
            .unwrap_or_else(|| panic!("shaders/{name} is not embedded in src/shaders.rs"));
        let source = shader.file_source();
        assert!(
            source.starts_with("// "),
            "{name} must open with its comment"
        );
        let header: String = source
            .lines()
            .take_while(|l| l.starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
            .to_lowercase();
        for part in ["buffer", "dispatch"] {
            assert!(
                header.contains(part),
                "{name}'s opening comment does not describe its {part}"
            );
        }
    }
}
