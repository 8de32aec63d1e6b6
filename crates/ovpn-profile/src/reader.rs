//! Profile bytes to a list of raw directives: lines, BOM, limits, binary detection,
//! `--` prefixes and inline `<tag>` blocks (including `<connection>`), following
//! OpenVPN's `read_config_file()` / `check_inline_file()` / `read_inline_file()`.

use crate::error::{ParseError, ParseErrorKind};
use crate::lexer::{self, is_space};
use crate::limits::*;

/// One directive as written, before it is given a meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDirective {
    /// 1-based line of the directive (of the opening tag for a block).
    pub line: u32,
    /// Option name with any `--` prefix removed (lossy UTF-8).
    pub name: String,
    /// The arguments (lossy UTF-8).
    pub args: Vec<String>,
    /// The arguments as bytes (file names need not be UTF-8).
    pub raw_args: Vec<Vec<u8>>,
    /// Body of an inline `<name>` block.
    pub block: Option<Block>,
}

/// The body of an inline block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The lines between the tags, each ending in `\n`, CRs removed (lossy UTF-8).
    pub text: String,
    /// Line of the first line inside the block.
    pub first_line: u32,
    /// For `<connection>`: the directives inside.
    pub children: Vec<RawDirective>,
}

struct Lines<'a> {
    rest: &'a [u8],
    number: u32,
}

impl<'a> Lines<'a> {
    /// Next line without its `\n` and trailing `\r`s (all of them: the serialiser writes
    /// lines with `\n`, so a block line ending in `\r` could not round-trip).
    fn next_line(&mut self) -> Option<(u32, &'a [u8])> {
        if self.rest.is_empty() {
            return None;
        }
        self.number = self.number.saturating_add(1);
        let (line, rest) = match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        self.rest = rest;
        let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
        Some((self.number, &line[..end]))
    }
}

fn err(line: u32, kind: ParseErrorKind) -> ParseError {
    ParseError { line, kind }
}

/// Line number (1-based) of byte offset `off`.
fn line_of(bytes: &[u8], off: usize) -> u32 {
    let n = bytes[..off.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1)
}

/// Refuse input that cannot be a text profile, before any parsing.
fn check_whole(bytes: &[u8]) -> Result<(), ParseError> {
    if bytes.len() > MAX_PROFILE_BYTES {
        return Err(err(
            line_of(bytes, MAX_PROFILE_BYTES),
            ParseErrorKind::TooLarge { size: bytes.len() },
        ));
    }
    if let Some(i) = bytes.iter().position(|&b| b == 0) {
        return Err(err(line_of(bytes, i), ParseErrorKind::NulByte));
    }
    if let Some((i, byte)) = first_control_character(bytes) {
        let kind = if byte == b'\r' {
            ParseErrorKind::LoneCarriageReturn
        } else if matches!(byte, 0x0b | 0x0c | 0x1b) {
            ParseErrorKind::ControlCharacter { byte }
        } else {
            ParseErrorKind::Binary { byte }
        };
        return Err(err(line_of(bytes, i), kind));
    }
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    if lines > MAX_LINES {
        let mut seen = 0usize;
        let off = bytes
            .iter()
            .position(|&b| {
                if b == b'\n' {
                    seen += 1;
                }
                seen > MAX_LINES
            })
            .unwrap_or(bytes.len());
        return Err(err(line_of(bytes, off), ParseErrorKind::TooManyLines));
    }
    Ok(())
}

/// The first control character a text profile may not hold, with its offset.
///
/// Allowed: tab, LF, and CRs that end a line. A run of CRs directly before an LF
/// (or the end of the file) is a line ending: files converted to CRLF twice end
/// their lines in `\r\r\n`, and the reader drops every CR of such a run, so the
/// line keeps all its visible text (the fuzz regression `abc\r\r\r\n` stays `abc`).
/// A CR followed by anything else is refused: editors, `cat` and OpenVPN disagree
/// on whether it ends the line, so `nobind\rup /bin/sh` would show as `nobind`
/// while carrying more. VT, FF, ESC, the other C0 bytes and DEL are refused too.
fn first_control_character(bytes: &[u8]) -> Option<(usize, u8)> {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' {
            let run_end = bytes[i..]
                .iter()
                .position(|&c| c != b'\r')
                .map_or(bytes.len(), |n| i + n);
            if run_end < bytes.len() && bytes[run_end] != b'\n' {
                return Some((i, b));
            }
            i = run_end;
            continue;
        }
        if (b < 0x20 && !matches!(b, b'\t' | b'\n')) || b == 0x7f {
            return Some((i, b));
        }
        i += 1;
    }
    None
}

/// Split a whole profile into raw directives.
pub fn read(bytes: &[u8]) -> Result<Vec<RawDirective>, ParseError> {
    check_whole(bytes)?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut lines = Lines {
        rest: body,
        number: 0,
    };
    let mut count = 0usize;
    read_lines(&mut lines, 0, &mut count)
}

fn read_lines(
    lines: &mut Lines<'_>,
    depth: u8,
    count: &mut usize,
) -> Result<Vec<RawDirective>, ParseError> {
    let mut out = Vec::new();
    let mut connections = 0usize;
    while let Some((number, line)) = lines.next_line() {
        if line.len() > MAX_LINE_BYTES {
            return Err(err(number, ParseErrorKind::LineTooLong { len: line.len() }));
        }
        let tokens = lexer::tokenize(line).map_err(|e| err(number, ParseErrorKind::Syntax(e)))?;
        let Some(first) = tokens.first() else {
            continue;
        };
        *count += 1;
        if *count > MAX_DIRECTIVES {
            return Err(err(number, ParseErrorKind::TooManyDirectives));
        }
        let mut name_bytes: &[u8] = first;
        if name_bytes.len() >= 3 && name_bytes.starts_with(b"--") {
            name_bytes = &name_bytes[2..];
        }
        let is_tag = tokens.len() == 1
            && name_bytes.len() > 2
            && name_bytes.starts_with(b"<")
            && name_bytes.ends_with(b">");
        if is_tag {
            let tag = &name_bytes[1..name_bytes.len() - 1];
            let tag_s = String::from_utf8_lossy(tag).into_owned();
            if tag.starts_with(b"/") {
                return Err(err(number, ParseErrorKind::StrayCloseTag { tag: tag_s }));
            }
            if tag_s == "connection" {
                if depth > 0 {
                    return Err(err(number, ParseErrorKind::NestedConnection));
                }
                connections += 1;
                if connections > MAX_CONNECTIONS {
                    return Err(err(number, ParseErrorKind::TooManyConnections));
                }
            }
            let block = read_block(lines, number, &tag_s, depth, count)?;
            out.push(RawDirective {
                line: number,
                name: tag_s,
                args: Vec::new(),
                raw_args: Vec::new(),
                block: Some(block),
            });
            continue;
        }
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let raw_args: Vec<Vec<u8>> = tokens[1..].to_vec();
        let args = raw_args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        out.push(RawDirective {
            line: number,
            name,
            args,
            raw_args,
            block: None,
        });
    }
    Ok(out)
}

fn read_block(
    lines: &mut Lines<'_>,
    open_line: u32,
    tag: &str,
    depth: u8,
    count: &mut usize,
) -> Result<Block, ParseError> {
    let close = format!("</{tag}>");
    let mut raw: Vec<u8> = Vec::new();
    let first_line = open_line.saturating_add(1);
    loop {
        let Some((number, line)) = lines.next_line() else {
            return Err(err(
                open_line,
                ParseErrorKind::UnterminatedBlock {
                    tag: tag.to_string(),
                },
            ));
        };
        if line.len() > MAX_LINE_BYTES {
            return Err(err(number, ParseErrorKind::LineTooLong { len: line.len() }));
        }
        let start = line
            .iter()
            .position(|&b| !is_space(b))
            .unwrap_or(line.len());
        let trimmed = &line[start..];
        if trimmed.starts_with(close.as_bytes()) {
            break;
        }
        if depth == 0 && tag == "connection" && trimmed.starts_with(b"<connection>") {
            return Err(err(number, ParseErrorKind::NestedConnection));
        }
        // Key material never contains a line that opens another block: a forgotten
        // close tag would otherwise swallow the following blocks.
        if tag != "connection" && is_open_tag_line(trimmed) {
            return Err(err(
                open_line,
                ParseErrorKind::UnterminatedBlock {
                    tag: tag.to_string(),
                },
            ));
        }
        raw.extend_from_slice(line);
        raw.push(b'\n');
        if raw.len() > MAX_BLOCK_BYTES {
            return Err(err(
                number,
                ParseErrorKind::BlockTooLarge {
                    tag: tag.to_string(),
                },
            ));
        }
    }
    let mut children = Vec::new();
    if tag == "connection" {
        let mut inner = Lines {
            rest: &raw,
            number: open_line,
        };
        children = read_lines(&mut inner, depth + 1, count)?;
    }
    Ok(Block {
        text: String::from_utf8_lossy(&raw).into_owned(),
        first_line,
        children,
    })
}

fn is_open_tag_line(line: &[u8]) -> bool {
    let end = line
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(0, |i| i + 1);
    let t = &line[..end];
    t.len() > 2
        && t.starts_with(b"<")
        && t.ends_with(b">")
        && t[1..t.len() - 1]
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[RawDirective]) -> Vec<(u32, &str, Vec<&str>)> {
        v.iter()
            .map(|d| {
                (
                    d.line,
                    d.name.as_str(),
                    d.args.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn bom_crlf_blank_and_whitespace_lines() {
        let d = read(b"\xEF\xBB\xBFclient\r\n\r\n   \t \r\ndev tun\r\n").unwrap();
        assert_eq!(
            names(&d),
            vec![(1, "client", vec![]), (4, "dev", vec!["tun"])]
        );
    }

    #[test]
    fn bom_only_at_start() {
        let d = read(b"client\n\xEF\xBB\xBFdev tun\n").unwrap();
        assert_eq!(d[1].name, "\u{feff}dev");
    }

    #[test]
    fn double_dash_prefix() {
        let d = read(b"--client\n--remote a 1\n--\n").unwrap();
        assert_eq!(
            names(&d),
            vec![
                (1, "client", vec![]),
                (2, "remote", vec!["a", "1"]),
                (3, "--", vec![])
            ]
        );
    }

    #[test]
    fn inline_block_with_indented_close_tag_and_trailing_comment() {
        let d = read(b"<ca> # inline\nline1\r\n  line2\n   </ca> trailing\nverb 3\n").unwrap();
        assert_eq!(d[0].name, "ca");
        let b = d[0].block.as_ref().unwrap();
        assert_eq!(b.text, "line1\n  line2\n");
        assert_eq!(b.first_line, 2);
        assert_eq!((d[1].line, d[1].name.as_str()), (5, "verb"));
    }

    #[test]
    fn stray_carriage_returns_end_a_line_like_one() {
        // Found by `cargo xtask fuzz` (fuzz/regressions/profile_parse): a block line ending
        // in several `\r` did not survive parse -> to_ovpn_text -> parse.
        let d = read(b"<ca>\nabc\r\r\r\ndef\r\n</ca>\r\r\ndev tun\r\r\n").unwrap();
        assert_eq!(d[0].block.as_ref().unwrap().text, "abc\ndef\n");
        assert_eq!(d[1].name, "dev");
    }

    #[test]
    fn control_characters_are_refused_with_their_line() {
        let e = read(b"client\nnobind\rup /bin/sh\n").unwrap_err();
        assert!(
            e.to_string().starts_with("line 2: a carriage return"),
            "{e}"
        );
        assert_eq!((e.line, e.kind), (2, ParseErrorKind::LoneCarriageReturn));
        let e = read(b"client\r\nremote a\r\n<ca>\r\nab\rc\r\n</ca>\r\n").unwrap_err();
        assert_eq!((e.line, e.kind), (4, ParseErrorKind::LoneCarriageReturn));
        for (byte, kind) in [
            (0x0b, ParseErrorKind::ControlCharacter { byte: 0x0b }),
            (0x0c, ParseErrorKind::ControlCharacter { byte: 0x0c }),
            (0x1b, ParseErrorKind::ControlCharacter { byte: 0x1b }),
            (0x00, ParseErrorKind::NulByte),
            (0x7f, ParseErrorKind::Binary { byte: 0x7f }),
        ] {
            let mut text = b"client\n# comment\nremote a".to_vec();
            text.push(byte);
            text.extend_from_slice(b"b\n");
            let e = read(&text).unwrap_err();
            assert_eq!((e.line, e.kind), (3, kind), "byte 0x{byte:02x}");
        }
        // CRs that end a line (CRLF, CRs doubled by conversions, at the end of the
        // file) and tabs are fine.
        let d = read(b"client\r\r\nremote\ta 1\r\ndev tun\r").unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[2].args, vec!["tun"]);
    }

    #[test]
    fn empty_block() {
        let d = read(b"<tls-auth>\n</tls-auth>\n").unwrap();
        assert_eq!(d[0].block.as_ref().unwrap().text, "");
    }

    #[test]
    fn unterminated_block_names_opening_line() {
        let e = read(b"client\n<ca>\nabc\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(matches!(e.kind, ParseErrorKind::UnterminatedBlock { .. }));
    }

    #[test]
    fn connection_block_children_have_absolute_lines() {
        let d = read(b"client\n<connection>\n  remote a 1 udp\n  nobind\n</connection>\n").unwrap();
        let b = d[1].block.as_ref().unwrap();
        assert_eq!(
            names(&b.children),
            vec![(3, "remote", vec!["a", "1", "udp"]), (4, "nobind", vec![])]
        );
    }

    #[test]
    fn nested_connection_is_an_error() {
        let e =
            read(b"<connection>\nremote a\n<connection>\nremote b\n</connection>\n</connection>\n")
                .unwrap_err();
        assert_eq!((e.line, e.kind), (3, ParseErrorKind::NestedConnection));
    }

    #[test]
    fn nul_and_binary_and_size() {
        assert_eq!(read(b"client\n# x\0y\n").unwrap_err().line, 2);
        assert!(matches!(
            read(b"a\nb\x01\n").unwrap_err().kind,
            ParseErrorKind::Binary { byte: 1 }
        ));
        let big = vec![b'#'; MAX_PROFILE_BYTES + 1];
        assert!(matches!(
            read(&big).unwrap_err().kind,
            ParseErrorKind::TooLarge { .. }
        ));
        let long = format!("client\n#{}\n", "x".repeat(MAX_LINE_BYTES));
        let e = read(long.as_bytes()).unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn stray_close_tag() {
        assert_eq!(read(b"</ca>\n").unwrap_err().line, 1);
    }

    #[test]
    fn tag_with_argument_is_not_a_block() {
        let d = read(b"<ca> x\n").unwrap();
        assert_eq!((d[0].name.as_str(), d[0].block.is_none()), ("<ca>", true));
    }
}
