// TEMPORARY stub until the targets branch merges.
use std::path::Path;
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}
pub struct TargetError {
    pub message: String,
    pub retryable: bool,
}
impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
pub trait Target: Send + Sync {
    fn url(&self) -> &str;
    fn put(&self, name: &str, data: &[u8]) -> Result<(), TargetError>;
    fn put_file(&self, name: &str, path: &Path) -> Result<(), TargetError>;
    fn get(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, TargetError>;
    fn get_to_file(&self, name: &str, path: &Path) -> Result<bool, TargetError>;
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError>;
    fn delete(&self, name: &str) -> Result<(), TargetError>;
}
pub fn open(
    _spec: &super::settings::TargetSpec,
    _base: &Path,
) -> Result<Box<dyn Target>, zone_pki::Error> {
    todo!()
}
pub fn open_url(
    _url: &str,
    _e: Option<&str>,
    _r: Option<&str>,
    _c: Option<&Path>,
) -> Result<Box<dyn Target>, zone_pki::Error> {
    todo!()
}
