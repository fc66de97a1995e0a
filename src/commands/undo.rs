//! `undo --config NODE_FILE --prefix PREFIX (--at TIME | --revision REV) [--dry-run]
//! [--force]`: the keys under a prefix back to a point, in the running zone, as new writes.

use std::path::Path;

use zone_pki::Error;

pub struct Undo<'a> {
    pub config: &'a Path,
    pub prefix: &'a str,
    pub at: Option<&'a str>,
    pub revision: Option<i64>,
    pub dry_run: bool,
    pub force: bool,
}

pub fn run(undo: &Undo<'_>) -> Result<(), Error> {
    let _ = undo;
    Err(Error::new("undo is not built yet").file(undo.config))
}
