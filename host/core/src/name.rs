//! Names that people read as someone's or something's name (display names, app names, group
//! titles): normalized to NFC, free of bidirectional controls and invisible characters, and
//! written in scripts that UTS #39 calls "highly restrictive", so one cannot pass for another.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::UnicodeEmoji;
use unicode_script::{Script, UnicodeScript};
use unicode_security::GeneralSecurityProfile;
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::mixed_script::{AugmentedScriptSet, MixedScript};

/// Why a name was refused, as a sentence that follows the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    /// A bidirectional control, which can reorder how the name and what follows it are shown.
    #[error(
        "must not contain bidirectional control characters (found U+{:04X}), which change the order in which text is shown",
        u32::from(*.0)
    )]
    Bidi(char),
    /// A character that is invisible (default-ignorable) or deprecated.
    #[error("must not contain invisible characters (found U+{:04X})", u32::from(*.0))]
    Invisible(char),
    /// Letters of scripts that may not be mixed, listed by name (`Latin and Cyrillic`).
    #[error(
        "must not mix {0} letters, which can look alike: write it in one script (Japanese may combine Han, Hiragana and Katakana, Chinese Han and Bopomofo, Korean Han and Hangul, each also with Latin)"
    )]
    MixedScripts(String),
}

/// Checks text that other people will read as a name and returns it in Unicode NFC. Length,
/// blank and control-character rules are the caller's, which knows its field.
pub fn shown_name(text: &str) -> Result<String, NameProblem> {
    let name: String = text.nfc().collect();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if is_bidi_control(c) {
            return Err(NameProblem::Bidi(c));
        }
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        if is_invisible(c) && !in_emoji_sequence(c, prev, next) {
            return Err(NameProblem::Invisible(c));
        }
    }
    if !highly_restrictive(&name) {
        return Err(NameProblem::MixedScripts(script_names(&name)));
    }
    Ok(name)
}

/// The explicit bidirectional formatting characters and marks (UAX #9): embeddings, overrides,
/// isolates, and the left-to-right, right-to-left and Arabic letter marks.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Default-ignorable code points (zero-width spaces and joiners, word joiner, BOM, Hangul
/// fillers, variation and tag characters, ...) and deprecated ones, per UTS #39's identifier
/// types.
fn is_invisible(c: char) -> bool {
    matches!(
        c.identifier_type(),
        Some(IdentifierType::Default_Ignorable | IdentifierType::Deprecated)
    )
}

/// Whether an invisible character is a working part of an emoji sequence: a zero-width joiner
/// between two emoji (👩‍💻), a presentation selector after an emoji (❤️), or the tags of a
/// subdivision flag after 🏴.
fn in_emoji_sequence(c: char, prev: Option<char>, next: Option<char>) -> bool {
    let emoji = |c: char| !c.is_ascii() && c.is_emoji_char();
    let emoji_part = |c: char| !c.is_ascii() && c.is_emoji_char_or_emoji_component();
    match c {
        '\u{200D}' => {
            prev.is_some_and(|p| p != '\u{200D}' && emoji_part(p)) && next.is_some_and(emoji)
        }
        '\u{FE0E}' | '\u{FE0F}' => prev.is_some_and(|p| p.is_emoji_char()),
        '\u{E0020}'..='\u{E007F}' => {
            prev.is_some_and(|p| p == '\u{1F3F4}' || matches!(p, '\u{E0020}'..='\u{E007E}'))
        }
        _ => false,
    }
}

/// UTS #39 §5.2 "highly restrictive": all letters share one script, or, leaving Latin aside,
/// the rest is Han with Bopomofo, Japanese (Han, Hiragana, Katakana) or Korean (Han, Hangul).
/// Digits, punctuation, spaces and emoji belong to every script and never count as mixing.
fn highly_restrictive(name: &str) -> bool {
    if name.is_single_script() {
        return true;
    }
    let mut others = AugmentedScriptSet::default();
    for c in name.chars() {
        let set = AugmentedScriptSet::for_char(c);
        if !set.base.contains_script(Script::Latin) {
            others.intersect_with(set);
        }
    }
    others.hanb || others.jpan || others.kore
}

/// The scripts of a name's letters in order of appearance: `Latin and Cyrillic`.
fn script_names(name: &str) -> String {
    let mut scripts: Vec<Script> = Vec::new();
    for c in name.chars() {
        let s = c.script();
        if !matches!(s, Script::Common | Script::Inherited | Script::Unknown)
            && !scripts.contains(&s)
        {
            scripts.push(s);
        }
    }
    let names: Vec<&str> = scripts.iter().map(|s| s.full_name()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((only, _)) => (*only).to_owned(),
        None => "different scripts'".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is the accepted name (in NFC), or the start of the problem's sentence.
    fn check(input: &str, expected: Result<&str, &str>) {
        match (shown_name(input), expected) {
            (Ok(name), Ok(want)) => assert_eq!(name, want, "{input:?}"),
            (Err(problem), Err(want)) => {
                let message = problem.to_string();
                assert!(
                    message.starts_with(want),
                    "{input:?}: {message:?} vs {want:?}"
                );
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn legitimate_names_are_kept() {
        check("Bob", Ok("Bob"));
        check("Zoë", Ok("Zoë"));
        check("José Álvarez", Ok("José Álvarez"));
        check("王小明", Ok("王小明"));
        check("Анна", Ok("Анна"));
        check("Ελένη", Ok("Ελένη"));
        check("محمد", Ok("محمد"));
        check("דוד", Ok("דוד"));
        check("山田たろう", Ok("山田たろう"));
        check("山田タロウ・たろう", Ok("山田タロウ・たろう"));
        check("Tanaka 田中 たろう", Ok("Tanaka 田中 たろう"));
        check("김민준 金", Ok("김민준 金"));
        check("陳ㄅㄆ Chen", Ok("陳ㄅㄆ Chen"));
        check("Bob 🎉", Ok("Bob 🎉"));
        check("O'Brien-Smith Jr. (2)", Ok("O'Brien-Smith Jr. (2)"));
    }

    #[test]
    fn emoji_sequences_keep_their_joiners_and_selectors() {
        check("Dev 👩\u{200D}💻", Ok("Dev 👩\u{200D}💻"));
        check("👩🏽\u{200D}💻", Ok("👩🏽\u{200D}💻"));
        check("Ann ❤\u{FE0F}", Ok("Ann ❤\u{FE0F}"));
        check(
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            Ok("🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}"),
        );
    }

    #[test]
    fn names_are_normalized_to_nfc() {
        check("Zoe\u{0308}", Ok("Zo\u{00EB}"));
        check("Jose\u{0301} A\u{0301}lvarez", Ok("José Álvarez"));
        check("\u{1100}\u{1161}", Ok("\u{AC00}"));
    }

    #[test]
    fn bidi_controls_are_refused() {
        let bidi = "must not contain bidirectional control characters";
        check("\u{202E}boB", Err(bidi));
        check("Bob\u{2066}", Err(bidi));
        check("Bob\u{2069}", Err(bidi));
        check("\u{200E}Bob", Err(bidi));
        check("محمد\u{200F}", Err(bidi));
        check("محمد\u{061C}", Err(bidi));
        check("B\u{202A}ob", Err(bidi));
        check(
            "\u{202E}boB",
            Err("must not contain bidirectional control characters (found U+202E)"),
        );
    }

    #[test]
    fn invisible_characters_are_refused() {
        let invisible = "must not contain invisible characters";
        check(
            "B\u{200B}ob",
            Err("must not contain invisible characters (found U+200B)"),
        );
        check("B\u{200C}ob", Err(invisible));
        check("B\u{200D}ob", Err(invisible));
        check("Bob\u{2060}", Err(invisible));
        check("\u{FEFF}Bob", Err(invisible));
        check("Bo\u{00AD}b", Err(invisible));
        check("\u{3164}", Err(invisible));
        check("Bob\u{FE0F}", Err(invisible));
        check("Bob\u{E0062}", Err(invisible));
        check("🎉\u{200D}Bob", Err(invisible));
        check("🎉\u{200D}\u{200D}🎉", Err(invisible));
        check("Bob\u{206A}", Err(invisible));
    }

    #[test]
    fn look_alike_script_mixes_are_refused() {
        check("B\u{043E}b", Err("must not mix Latin and Cyrillic letters"));
        check("\u{0412}ob", Err("must not mix Cyrillic and Latin letters"));
        check("Bob Ολγα", Err("must not mix Latin and Greek letters"));
        check("Anna Анна", Err("must not mix Latin and Cyrillic letters"));
        check("王 Анна", Err("must not mix Han and Cyrillic letters"));
        check("たろう 김", Err("must not mix Hiragana and Hangul letters"));
        check("Bob محمد", Err("must not mix Latin and Arabic letters"));
    }
}
