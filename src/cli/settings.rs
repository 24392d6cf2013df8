//! Recipes on the command line: the preset or recipe file a command starts
//! from, `train --dump-recipe`, and the library's refusals and notes, which
//! name its own fields (`z_dim`, `data_dir`), said in flags.

use std::path::Path;

use shadergan::data::DataKind;
use shadergan::eval::mode_trace;
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

/// The flag that sets a library field: a recipe's `z_dim` is `--z-dim`,
/// `hidden_act` is `--activation`; a loader's `data_dir` is `--data DIR`,
/// a draw sweep's `first_noise_seed` is `--noise-seed`.
pub fn flag(field: &'static str) -> String {
    match field {
        "hidden_act" => "--activation".to_string(),
        "data_dir" => "--data DIR".to_string(),
        "first_noise_seed" => "--noise-seed".to_string(),
        _ => format!("--{}", field.replace('_', "-")),
    }
}

/// A library's refusal of a setting said in flags: `--z-dim must be at least 1`.
pub fn in_flags(e: SettingError) -> anyhow::Error {
    anyhow::anyhow!(e.say(flag))
}

/// [`in_flags`] for an error that may be a [`SettingError`]; any other error
/// is passed on as it is.
pub fn any_in_flags(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<SettingError>() {
        Ok(setting) => in_flags(setting),
        Err(other) => other,
    }
}

/// A library's note with each of `fields` it names (whole words) said as its
/// flag: `(give data_dir)` becomes `(give --data DIR)`.
pub fn note_in_flags(note: &str, fields: &[&'static str]) -> String {
    let mut text = String::with_capacity(note.len());
    let mut rest = note;
    while !rest.is_empty() {
        let word = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())
            .max(rest.chars().next().map_or(0, char::len_utf8));
        let (head, tail) = rest.split_at(word);
        match fields.iter().find(|&&f| f == head) {
            Some(&field) => text.push_str(&flag(field)),
            None => text.push_str(head),
        }
        rest = tail;
    }
    text
}

/// Refuses `--eval-every` on data without modes, naming the command that
/// scores such runs.
pub fn check_eval_every(eval_every: u64, kind: &DataKind) -> anyhow::Result<()> {
    mode_trace::check_dataset(eval_every, kind)
        .map_err(|e| anyhow::anyhow!("{}; score image runs with `eval --checkpoint`", e.say(flag)))
}

/// `train --dump-recipe`: the recipe as JSON on stdout, which `--recipe` reads back.
pub fn dump(recipe: &Recipe) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(recipe)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notes_fields_become_flags_as_whole_words_only() {
        let note = "no training set (give data_dir); data_dirs, my_data_dir and data_dir_x stay";
        assert_eq!(
            note_in_flags(note, &["data_dir"]),
            "no training set (give --data DIR); data_dirs, my_data_dir and data_dir_x stay"
        );
        assert_eq!(note_in_flags("ünïcode data_dir", &[]), "ünïcode data_dir");
        assert_eq!(
            note_in_flags("(use checkpoint_every N)", &["checkpoint_every"]),
            "(use --checkpoint-every N)"
        );
    }

    #[test]
    fn a_setting_error_inside_an_error_is_said_in_flags_and_others_pass() {
        let e = SettingError {
            field: "first_noise_seed",
            problem: "3 + noise_seeds 2 passes the largest seed".into(),
            mentions: &["noise_seeds"],
        };
        assert_eq!(
            any_in_flags(e.into()).to_string(),
            "--noise-seed 3 + --noise-seeds 2 passes the largest seed"
        );
        let other = anyhow::anyhow!("data_dir is not renamed here");
        assert_eq!(
            any_in_flags(other).to_string(),
            "data_dir is not renamed here"
        );
    }
}
