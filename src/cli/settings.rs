//! Recipes on the command line: the preset or recipe file a command starts
//! from, `train --dump-recipe`, and a recipe's refusals said in flags.

use std::path::Path;

use shadergan::gan::SettingError;
use shadergan::gan::recipe::{PRESETS, Recipe};

/// The recipe `--preset NAME` or `--recipe FILE` names (clap lets only one
/// of them through), or `None` when neither is given.
pub fn named(preset: Option<&str>, file: Option<&Path>) -> anyhow::Result<Option<Recipe>> {
    if let Some(file) = file {
        return Ok(Some(Recipe::from_file(file)?));
    }
    let Some(name) = preset else {
        return Ok(None);
    };
    let recipe = Recipe::preset(name).ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        anyhow::anyhow!("unknown --preset '{name}' (presets: {})", names.join(", "))
    })?;
    Ok(Some(recipe))
}

/// The `train` flag that sets a recipe's field: `z_dim` is `--z-dim`,
/// `hidden_act` is `--activation`.
pub fn flag(field: &'static str) -> String {
    match field {
        "hidden_act" => "--activation".to_string(),
        _ => format!("--{}", field.replace('_', "-")),
    }
}

/// A recipe's refusal said in flags: `--z-dim must be at least 1`.
pub fn in_flags(e: SettingError) -> anyhow::Error {
    anyhow::anyhow!(e.say(flag))
}

/// `train --dump-recipe`: the recipe as JSON on stdout, which `--recipe` reads back.
pub fn dump(recipe: &Recipe) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(recipe)?);
    Ok(())
}
