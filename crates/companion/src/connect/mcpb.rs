//! The Claude Desktop extension: an MCP Bundle (`.mcpb`), the zip Claude
//! Desktop installs from Settings → Extensions or when the file is opened.
//! Its `manifest.json` declares a binary server that is our stdio bridge as
//! installed (`<program> bridge URL`); the bundle itself carries no program,
//! only the manifest and the icon, so it holds nothing secret and works with
//! whichever version of the app is installed.

use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::error::ConnectError;
use super::file;

/// The manifest version written. Claude Desktop 1.0 installs `0.2` and
/// refuses `0.3` (modelcontextprotocol/mcpb#143); it is also the version
/// the official `mcpb` CLI writes by default.
pub const MANIFEST_VERSION: &str = "0.2";
/// The extension's machine-readable name.
pub const NAME: &str = "spor-companion";
/// What the saved file is called when nobody chose a name.
pub const FILE_NAME: &str = "spor-companion.mcpb";
/// The icon Claude Desktop shows (512×512, the size `mcpb` recommends).
const ICON: &[u8] = include_bytes!("../../../../icons/icon.png");

/// A platform as MCPB names it (Node's `process.platform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// macOS.
    Darwin,
    /// Windows.
    Win32,
    /// Linux.
    Linux,
}

impl Platform {
    /// Every platform the extension declares, in the manifest's order.
    pub const ALL: [Platform; 3] = [Platform::Darwin, Platform::Win32, Platform::Linux];

    /// The platform this program runs on (`None` elsewhere, e.g. a BSD).
    pub fn current() -> Option<Self> {
        match std::env::consts::OS {
            "macos" => Some(Self::Darwin),
            "windows" => Some(Self::Win32),
            "linux" => Some(Self::Linux),
            _ => None,
        }
    }

    /// The manifest's name for it.
    pub fn id(self) -> &'static str {
        match self {
            Self::Darwin => "darwin",
            Self::Win32 => "win32",
            Self::Linux => "linux",
        }
    }

    /// Where the bridge is when the app was installed the usual way: the
    /// app bundle on macOS, the per-user installer's folder on Windows (the
    /// app binary answers `bridge` too), the packages' `spor-companiond`.
    pub fn installed_bridge(self) -> &'static str {
        match self {
            Self::Darwin => "/Applications/Spor Companion.app/Contents/MacOS/spor-companion",
            // Claude Desktop substitutes ${HOME}; the NSIS installer's
            // per-user default is %LOCALAPPDATA%\Spor Companion.
            Self::Win32 => "${HOME}\\AppData\\Local\\Spor Companion\\spor-companion.exe",
            Self::Linux => "/usr/bin/spor-companiond",
        }
    }
}

/// The bridge an extension runs, as this machine has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The bridge program on this machine (absolute).
    pub program: PathBuf,
    /// The companion's MCP URL.
    pub url: String,
    /// Extra bridge arguments after the URL (this machine's choices only).
    pub args: Vec<String>,
    /// The platform the program belongs to; the others get their usual
    /// install path (`None`: every platform does).
    pub platform: Option<Platform>,
}

impl Extension {
    /// The `manifest.json` Claude Desktop reads.
    pub fn manifest(&self) -> Result<Value, ConnectError> {
        let program = self
            .program
            .to_str()
            .ok_or_else(|| ConnectError::ProgramPath(self.program.clone()))?;
        let mut args = vec!["bridge".to_string(), self.url.clone()];
        args.extend(self.args.iter().cloned());
        // The other platforms run the bridge where the app installs it, and
        // without this machine's extra arguments (a data folder here means
        // nothing there).
        let overrides: serde_json::Map<String, Value> = Platform::ALL
            .into_iter()
            .filter(|p| Some(*p) != self.platform)
            .map(|p| {
                let value = json!({
                    "command": p.installed_bridge(),
                    "args": ["bridge", &self.url],
                });
                (p.id().to_string(), value)
            })
            .collect();
        Ok(json!({
            "manifest_version": MANIFEST_VERSION,
            "name": NAME,
            "display_name": "Spor Companion",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Your Spor team graph in Claude, through Spor Companion: your token stays in your keychain.",
            "long_description": "Connects Claude Desktop to the Spor Companion app on this computer \
                (which must be running) through its built-in bridge. The first time, your browser \
                opens and Spor Companion asks you to allow Claude Desktop; Claude never sees your \
                personal access token, and you can disconnect it in the app at any time.",
            "author": { "name": "Spor" },
            "icon": "icon.png",
            "license": "MIT OR Apache-2.0",
            "keywords": ["spor", "knowledge graph", "oauth"],
            // The tools come from the Spor server, at run time.
            "tools_generated": true,
            "compatibility": {
                "claude_desktop": ">=1.0.0",
                "platforms": Platform::ALL.map(Platform::id),
            },
            "server": {
                "type": "binary",
                // The bundle carries no program: the entry point is the
                // installed bridge itself, the same as the command.
                "entry_point": program,
                "mcp_config": {
                    "command": program,
                    "args": args,
                    "platform_overrides": overrides,
                },
            },
        }))
    }

    /// The `.mcpb` file's bytes: a zip of `manifest.json` and `icon.png`,
    /// stored uncompressed (the PNG already is, the manifest is tiny) and
    /// dated 1980-01-01, so the same extension gives the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ConnectError> {
        let manifest = serde_json::to_vec_pretty(&self.manifest()?)
            .map_err(|e| ConnectError::Internal(e.to_string()))?;
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .unix_permissions(0o644);
        let zipped = |e: zip::result::ZipError| ConnectError::Internal(e.to_string());
        let io = |e: std::io::Error| ConnectError::Internal(e.to_string());
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("manifest.json", options).map_err(zipped)?;
        zip.write_all(&manifest).map_err(io)?;
        zip.start_file("icon.png", options).map_err(zipped)?;
        zip.write_all(ICON).map_err(io)?;
        Ok(zip.finish().map_err(zipped)?.into_inner())
    }
}

/// Writes the extension to `path` (replacing a file there, atomically).
/// Blocking. The name must end in `.mcpb`: that is how Claude Desktop and
/// the OS recognize it.
pub fn write(extension: &Extension, path: &Path) -> Result<(), ConnectError> {
    let is_mcpb = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mcpb"));
    if !is_mcpb {
        return Err(ConnectError::NotMcpb(path.to_path_buf()));
    }
    let bytes = extension.to_bytes()?;
    file::create_or_replace(path, &bytes)
}
