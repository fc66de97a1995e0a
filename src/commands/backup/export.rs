//! `backup export --from SOURCE (--at TIME | --revision REV) --out FILE`: the zone as it
//! was at a point, as a snapshot `restore` takes (see [`crate::backup::pitr`]).

use std::path::Path;

use zone_pki::Error;

pub struct Export<'a> {
    pub from: &'a str,
    pub at: Option<&'a str>,
    pub revision: Option<i64>,
    pub out: &'a Path,
    pub config: Option<&'a Path>,
    pub ca: Option<&'a Path>,
    pub identity: Option<&'a Path>,
    pub endpoint: Option<&'a str>,
    pub region: Option<&'a str>,
}

pub fn run(export: &Export<'_>) -> Result<(), Error> {
    let _ = export;
    Err(Error::new("backup export is not built yet"))
}
