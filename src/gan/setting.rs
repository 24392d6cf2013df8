//! A setting that cannot train, named by its field, so each front end says
//! it in its own terms: the command line names its flag (`z_dim`: `--z-dim`),
//! a recipe file's reader names the file and the field.

/// A setting of a [`Recipe`](super::recipe::Recipe) or a
/// [`ModelSpec`](super::ModelSpec) that cannot train. Its `Display` names the
/// fields as the struct does: `z_dim must be at least 1`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.say(str::to_string))]
pub struct SettingError {
    /// The field at fault, as the struct names it.
    pub field: &'static str,
    /// What is wrong with it, said after its name: `must be at least 1`.
    pub problem: String,
    /// Other fields the problem names, written in it as the struct names them
    /// (`d_steps_from`'s problem: `needs d_steps above 1`).
    pub mentions: &'static [&'static str],
}

/// `Ok` when `ok`, else the error of `field` with `problem`.
pub fn require(
    ok: bool,
    field: &'static str,
    problem: impl Into<String>,
) -> Result<(), SettingError> {
    if ok {
        return Ok(());
    }
    Err(SettingError {
        field,
        problem: problem.into(),
        mentions: &[],
    })
}

impl SettingError {
    /// The same error, its problem naming these other fields.
    pub fn mentioning(self, fields: &'static [&'static str]) -> SettingError {
        SettingError {
            mentions: fields,
            ..self
        }
    }

    /// The message with the field, and every field its problem mentions,
    /// named by `name` (the command line passes its field-to-flag mapping).
    pub fn say(&self, name: impl Fn(&'static str) -> String) -> String {
        let mut text = name(self.field);
        text.push(' ');
        let mut rest = self.problem.as_str();
        while let Some(c) = rest.chars().next() {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                text.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let (word, tail) = rest.split_at(end);
            match self.mentions.iter().find(|&&m| m == word) {
                Some(&field) => text.push_str(&name(field)),
                None => text.push_str(word),
            }
            rest = tail;
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::require;

    fn flag(field: &str) -> String {
        format!("--{}", field.replace('_', "-"))
    }

    #[test]
    fn the_message_names_the_field_and_a_front_end_renames_it() {
        let e = require(false, "z_dim", "must be at least 1").unwrap_err();
        assert_eq!(e.to_string(), "z_dim must be at least 1");
        assert_eq!(e.say(flag), "--z-dim must be at least 1");
        assert!(require(true, "z_dim", "never said").is_ok());
    }

    #[test]
    fn only_whole_words_the_problem_mentions_are_renamed() {
        let e = require(
            false,
            "d_steps_from",
            "needs d_steps above 1 (got 1; d_steps_from 5, lr_decay)",
        )
        .unwrap_err()
        .mentioning(&["d_steps"]);
        assert_eq!(
            e.to_string(),
            "d_steps_from needs d_steps above 1 (got 1; d_steps_from 5, lr_decay)"
        );
        assert_eq!(
            e.say(flag),
            "--d-steps-from needs --d-steps above 1 (got 1; d_steps_from 5, lr_decay)"
        );
    }
}
