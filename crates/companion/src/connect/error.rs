//! Why connecting an assistant failed, and the name of the entry the
//! companion adds to hosts' configurations (both every connector needs).

use std::path::{Path, PathBuf};

use spor_wire::jsonc;

/// The name of our entry in every host's configuration.
pub const ENTRY_NAME: &str = "spor";

/// Why connecting failed. Nothing was written when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The file is not valid JSON(C), or not shaped like a host config.
    #[error("{}: line {line}, column {column}: {message}. Nothing was changed; fix the file or move it aside, then try again", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Reading failed.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// Writing failed.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The path is a folder or a device.
    #[error("{} is not a regular file; nothing was changed", .0.display())]
    NotAFile(PathBuf),
    /// Suspiciously large.
    #[error("{} is larger than 8 MiB; nothing was changed", .0.display())]
    TooLarge(PathBuf),
    /// Not text.
    #[error("{} is not UTF-8 text; nothing was changed", .0.display())]
    NotUtf8(PathBuf),
    /// Symlinks pointing at each other.
    #[error("{} is a loop of symbolic links; nothing was changed", .0.display())]
    SymlinkLoop(PathBuf),
    /// No home folder to find the config in.
    #[error("cannot find your home folder; give the config file with --config PATH")]
    NoHome,
    /// Claude Code has no file of ours to edit.
    #[error("Claude Code keeps its own settings; it is configured with the `claude` command, not a file")]
    NoConfigFile,
    /// The bridge path cannot be written into JSON faithfully.
    #[error("the path of this program is not valid Unicode: {}", .0.display())]
    ProgramPath(PathBuf),
    /// An extension file must be called `*.mcpb`.
    #[error("{} does not end in .mcpb, the name Claude Desktop opens extensions by; nothing was written", .0.display())]
    NotMcpb(PathBuf),
    /// Only Claude Desktop, through our bridge, has an extension.
    #[error(
        "only Claude Desktop installs extensions (.mcpb), and they always run the built-in bridge"
    )]
    NoExtension,
    /// `claude` is not installed (or not on PATH).
    #[error(
        "Claude Code's `claude` command was not found on PATH. Run this yourself:\n  {command}"
    )]
    ClaudeNotFound {
        /// What to run by hand.
        command: String,
    },
    /// `claude` could not be started.
    #[error("cannot run {}: {error}", program.display())]
    ClaudeStart {
        /// The program.
        program: PathBuf,
        /// Why.
        error: String,
    },
    /// `claude` ran and failed.
    #[error("`{command}` failed ({status}): {detail}")]
    ClaudeFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        detail: String,
    },
    /// `claude` did not finish.
    #[error("`{command}` did not finish within {seconds} s and was stopped")]
    ClaudeTimeout {
        /// The command line.
        command: String,
        /// The limit.
        seconds: f32,
    },
    /// The blocking worker died (a bug, not an input problem).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ConnectError {
    pub(super) fn read(path: &Path, error: std::io::Error) -> Self {
        Self::Read {
            path: path.to_path_buf(),
            error,
        }
    }

    pub(super) fn write(path: &Path, error: std::io::Error) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            error,
        }
    }

    pub(super) fn invalid(path: &Path, e: jsonc::SyntaxError) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }

    /// A stable code for user interfaces.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. }
            | Self::NotAFile(_)
            | Self::TooLarge(_)
            | Self::NotUtf8(_)
            | Self::SymlinkLoop(_) => "invalid_config",
            Self::Read { .. } | Self::Write { .. } => "io",
            Self::NoHome | Self::NoConfigFile | Self::ProgramPath(_) | Self::NoExtension => {
                "unsupported"
            }
            Self::NotMcpb(_) => "invalid_path",
            Self::ClaudeNotFound { .. } => "claude_not_found",
            Self::ClaudeStart { .. } | Self::ClaudeFailed { .. } | Self::ClaudeTimeout { .. } => {
                "claude_failed"
            }
            Self::Internal(_) => "internal",
        }
    }
}
