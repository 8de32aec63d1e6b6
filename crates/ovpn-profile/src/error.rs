//! Errors that stop parsing altogether (the input is not a profile we can read).

use crate::lexer::LexError;
use crate::limits::*;

/// A fatal problem with the profile text, with the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: u32,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// What made the profile unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error(
        "the file is {size} bytes; profiles larger than {MAX_PROFILE_BYTES} bytes are refused"
    )]
    TooLarge { size: usize },
    #[error("the file contains a NUL byte; this is a binary file, not an OpenVPN profile")]
    NulByte,
    #[error("the file contains the control byte 0x{byte:02x}; this is a binary file, not an OpenVPN profile")]
    Binary { byte: u8 },
    #[error("a carriage return (CR, 0x0d) is not followed by a line feed: the text after it would be hidden in most viewers; profiles may only hold CR as part of a CRLF line end")]
    LoneCarriageReturn,
    #[error("the line contains the control character 0x{byte:02x}{}; profiles may only hold tab, line feed and CRLF line ends", control_name(*byte))]
    ControlCharacter { byte: u8 },
    #[error("the file has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("the line is {len} bytes long; at most {MAX_LINE_BYTES} are accepted")]
    LineTooLong { len: usize },
    #[error("the file has more than {MAX_DIRECTIVES} options")]
    TooManyDirectives,
    #[error("the file has more than {MAX_CONNECTIONS} <connection> blocks")]
    TooManyConnections,
    #[error("{0}")]
    Syntax(LexError),
    #[error("<{tag}> is never closed (no </{tag}> line follows)")]
    UnterminatedBlock { tag: String },
    #[error("<{tag}> is larger than {MAX_BLOCK_BYTES} bytes")]
    BlockTooLarge { tag: String },
    #[error("<{tag}> closes a block that was never opened")]
    StrayCloseTag { tag: String },
    #[error("a <connection> block cannot contain another <connection> block")]
    NestedConnection,
}

fn control_name(byte: u8) -> &'static str {
    match byte {
        0x0b => " (vertical tab)",
        0x0c => " (form feed)",
        0x1b => " (escape)",
        _ => "",
    }
}
