//! Hard limits on what the parser accepts. A real profile is a few KiB; these bound
//! memory and time for hostile input while leaving room for big CA bundles and
//! long route lists.

/// Largest profile accepted, in bytes.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;
/// Longest line accepted, in bytes (OpenVPN itself splits lines at 256).
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Largest inline `<tag>` block, in bytes.
pub const MAX_BLOCK_BYTES: usize = 512 * 1024;
/// Most lines in a profile.
pub const MAX_LINES: usize = 100_000;
/// Most directives (outside inline blocks) in a profile.
pub const MAX_DIRECTIVES: usize = 20_000;
/// Most words on one line (OpenVPN's MAX_PARMS).
pub const MAX_PARAMS: usize = 16;
/// Longest single word, in bytes.
pub const MAX_PARAM_BYTES: usize = 4096;
/// Most `<connection>` blocks.
pub const MAX_CONNECTIONS: usize = 256;
