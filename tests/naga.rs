//! Every WGSL file in `shaders/` parses and validates with naga, is embedded
//! in the crate, and opens with its documenting comment.

use std::path::Path;

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

#[test]
fn every_shader_parses_and_validates() {
    let files = shader_files();
    assert!(!files.is_empty(), "no shaders found");
    for path in files {
        let source = std::fs::read_to_string(&path).expect("readable shader");
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        validator
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        assert!(
            !module.entry_points.is_empty(),
            "{} has no entry point",
            path.display()
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
        let source = shader.source();
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
