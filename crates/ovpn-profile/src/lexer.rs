//! One config line to its tokens, following OpenVPN's `parse_line()` state machine
//! (options_parse.c) so that a profile means for us what it means for OpenVPN.
//!
//! Rules reproduced: `#`/`;` start a comment only where a new token would start
//! (so `ca a#b` keeps `a#b`, `ca a #b` drops `#b`); double quotes group and honour
//! `\\`, `\"` and `\<space>`; single quotes group and take everything literally;
//! a closing quote ends the token even when no space follows; outside single quotes
//! a backslash may only escape `\`, `"` or white space (anything else makes the line
//! invalid, as in OpenVPN); CR and other C white space separate tokens.

use crate::limits::{MAX_PARAMS, MAX_PARAM_BYTES};

/// Why a line could not be split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error("a backslash may only escape \\, \" or a space (write \\\\ for a literal backslash, e.g. in a Windows path)")]
    BadBackslash,
    #[error("a double quote (\") is not closed on this line")]
    UnclosedDoubleQuote,
    #[error("a single quote (') is not closed on this line")]
    UnclosedSingleQuote,
    #[error("more than {MAX_PARAMS} words on one line")]
    TooManyParams,
    #[error("a word is longer than {MAX_PARAM_BYTES} bytes")]
    ParamTooLong,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Initial,
    Unquoted,
    Double,
    Single,
}

/// C `isspace()` in the "C" locale, plus NUL (OpenVPN's `space()`).
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, 0 | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Split one line (without its `\n`) into tokens.
pub fn tokenize(line: &[u8]) -> Result<Vec<Vec<u8>>, LexError> {
    let mut tokens: Vec<Vec<u8>> = Vec::new();
    let mut parm: Vec<u8> = Vec::new();
    let mut state = State::Initial;
    let mut backslash = false;
    // OpenVPN's loop also handles the terminating NUL (a space).
    let bytes = line.iter().copied().chain(std::iter::once(0u8));
    for c in bytes {
        let mut out: Option<u8> = None;
        if !backslash && c == b'\\' && state != State::Single {
            backslash = true;
            continue;
        }
        let mut done = false;
        match state {
            State::Initial => {
                if !is_space(c) {
                    if c == b';' || c == b'#' {
                        // Comment; OpenVPN checks this before the backslash flag.
                        break;
                    }
                    if !backslash && c == b'"' {
                        state = State::Double;
                    } else if !backslash && c == b'\'' {
                        state = State::Single;
                    } else {
                        out = Some(c);
                        state = State::Unquoted;
                    }
                }
            }
            State::Unquoted => {
                if !backslash && is_space(c) {
                    done = true;
                } else {
                    out = Some(c);
                }
            }
            State::Double => {
                if !backslash && c == b'"' {
                    done = true;
                } else {
                    out = Some(c);
                }
            }
            State::Single => {
                if c == b'\'' {
                    done = true;
                } else {
                    out = Some(c);
                }
            }
        }
        if done {
            if tokens.len() >= MAX_PARAMS {
                return Err(LexError::TooManyParams);
            }
            tokens.push(std::mem::take(&mut parm));
            state = State::Initial;
        }
        if backslash {
            if let Some(o) = out {
                if !(o == b'\\' || o == b'"' || is_space(o)) {
                    return Err(LexError::BadBackslash);
                }
            }
        }
        backslash = false;
        if let Some(o) = out {
            if parm.len() >= MAX_PARAM_BYTES {
                return Err(LexError::ParamTooLong);
            }
            parm.push(o);
        }
        if c == 0 {
            // An embedded NUL ends the C string; the reader refuses NULs before
            // we get here, this only mirrors OpenVPN for direct callers.
            break;
        }
    }
    match state {
        State::Double => Err(LexError::UnclosedDoubleQuote),
        State::Single => Err(LexError::UnclosedSingleQuote),
        // Unquoted cannot remain: the final NUL always ends it.
        _ => Ok(tokens),
    }
}

/// Quote a token so that [`tokenize`] gives it back unchanged.
pub fn quote(token: &str) -> String {
    let plain = !token.is_empty()
        && !token
            .bytes()
            .any(|b| is_space(b) || matches!(b, b'"' | b'\'' | b'\\'))
        && !token.starts_with(['#', ';']);
    if plain {
        return token.to_string();
    }
    let mut s = String::with_capacity(token.len() + 2);
    s.push('"');
    for ch in token.chars() {
        if ch == '"' || ch == '\\' {
            s.push('\\');
        }
        s.push(ch);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokenize(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|t| String::from_utf8(t).unwrap())
            .collect()
    }

    #[test]
    fn plain_words_and_runs_of_space() {
        assert_eq!(
            toks("remote  vpn.example.com\t1194   udp"),
            ["remote", "vpn.example.com", "1194", "udp"]
        );
    }

    #[test]
    fn leading_comment_hash_and_semicolon() {
        assert!(toks("# remote a").is_empty());
        assert!(toks(";remote a").is_empty());
        assert!(toks("   \t; indented comment").is_empty());
    }

    #[test]
    fn trailing_comment_after_value() {
        assert_eq!(toks("ca ca.crt # the CA"), ["ca", "ca.crt"]);
        assert_eq!(toks("verb 3 ;loud"), ["verb", "3"]);
    }

    #[test]
    fn hash_inside_word_is_literal() {
        assert_eq!(
            toks("auth-user-pass pass#1.txt"),
            ["auth-user-pass", "pass#1.txt"]
        );
    }

    #[test]
    fn double_quotes_group_and_escape() {
        assert_eq!(
            toks(r#"verify-x509-name "C=DE, O=Org, CN=srv" subject"#),
            ["verify-x509-name", "C=DE, O=Org, CN=srv", "subject"]
        );
        assert_eq!(
            toks(r#"setenv X "a \"b\" \\ c""#),
            ["setenv", "X", r#"a "b" \ c"#]
        );
        assert_eq!(
            toks(r#"pull-filter ignore "route-ipv6 # x""#),
            ["pull-filter", "ignore", "route-ipv6 # x"]
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(toks(r"setenv X 'a\b c'"), ["setenv", "X", r"a\b c"]);
    }

    #[test]
    fn closing_quote_ends_token_without_space() {
        assert_eq!(toks(r#"x "ab"cd"#), ["x", "ab", "cd"]);
        assert_eq!(toks(r#"x ab"cd"#), ["x", "ab\"cd"]);
    }

    #[test]
    fn empty_quotes_give_empty_token() {
        assert_eq!(toks(r#"x "" y"#), ["x", "", "y"]);
    }

    #[test]
    fn backslash_escapes() {
        assert_eq!(toks(r"ca my\ ca.crt"), ["ca", "my ca.crt"]);
        assert_eq!(toks(r"ca C:\\dir\\ca.crt"), ["ca", r"C:\dir\ca.crt"]);
        assert_eq!(tokenize(br"ca C:\dir\ca.crt"), Err(LexError::BadBackslash));
    }

    #[test]
    fn crlf_and_other_white_space() {
        assert_eq!(toks("dev tun\r"), ["dev", "tun"]);
        assert_eq!(toks("dev\x0btun\x0c"), ["dev", "tun"]);
    }

    #[test]
    fn unclosed_quotes_are_errors() {
        assert_eq!(tokenize(br#"x "abc"#), Err(LexError::UnclosedDoubleQuote));
        assert_eq!(tokenize(b"x 'abc"), Err(LexError::UnclosedSingleQuote));
    }

    #[test]
    fn too_many_params_and_too_long_word() {
        let many = "x ".repeat(MAX_PARAMS + 1);
        assert_eq!(tokenize(many.as_bytes()), Err(LexError::TooManyParams));
        let long = "a".repeat(MAX_PARAM_BYTES + 1);
        assert_eq!(tokenize(long.as_bytes()), Err(LexError::ParamTooLong));
    }

    #[test]
    fn non_utf8_bytes_are_kept() {
        assert_eq!(
            tokenize(b"ca caf\xe9.crt").unwrap(),
            vec![b"ca".to_vec(), b"caf\xe9.crt".to_vec()]
        );
    }

    #[test]
    fn quote_round_trips() {
        for t in [
            "plain",
            "two words",
            "a\"b",
            r"back\slash",
            "",
            "#hash",
            "a#b",
            "it's",
        ] {
            let line = format!("x {}", quote(t));
            assert_eq!(toks(&line), ["x", t], "{line}");
        }
    }
}
