//! `recur.toml` (temporary minimal version; replaced by the full loader).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::decode::DecodeConfig;
use crate::diag::Diagnostic;

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub path: Option<PathBuf>,
    pub default_channels: Vec<String>,
    pub input: InputConfig,
    pub state: StateConfig,
    pub notify: NotifyConfig,
    pub redact: RedactConfig,
    pub channels: BTreeMap<String, ChannelConfig>,
}
#[derive(Debug, Clone, Default)]
pub struct InputConfig { pub max_line_bytes: usize }
#[derive(Debug, Clone, Default)]
pub struct StateConfig { pub path: PathBuf }
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig { pub max_notifications: usize, pub max_attempts: u32 }
#[derive(Debug, Clone, Default)]
pub struct RedactConfig { pub fields: Vec<String>, pub patterns: Vec<String> }
#[derive(Debug, Clone)]
pub enum ChannelConfig { Console }
impl Config {
    pub fn load(_path: &Path) -> Result<Config, Vec<Diagnostic>> { Ok(Config::default()) }
    pub fn decode_config(&self) -> DecodeConfig { DecodeConfig::default() }
}
