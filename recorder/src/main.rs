//! `zone-recorder`: records etcd histories for zone-consistency (guide "Consistency
//! histories").
//!
//! - `zone-recorder scenario NAME --out FILE [--ops M] [--subnet N] [--seed S]`: a fresh
//!   local zone, the scenario's fault under the recorder's load, the history in FILE; one
//!   JSON summary line on stdout. Exit 1 when the setup or the fault failed (one line on
//!   stderr), 2 on bad usage.
//! - `zone-recorder record --endpoints URL,... --cacert F --cert F --key F --out FILE
//!   [--ops M]`: the recorder alone against a running zone (no fault).
//! - `zone-recorder list`: the scenarios, one a line.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use zone_recorder::connect::CredFiles;
use zone_recorder::record::{record, Plan, Summary};
use zone_recorder::rng::Rng;
use zone_recorder::scenarios::{self, Options};
use zone_recorder::shared::Control;
use zone_recorder::sink::Sink;
use zone_recorder::zone::Tools;
use zone_testkit::addresses;

#[derive(Parser)]
#[command(name = "zone-recorder", about = "Records etcd histories (issue 24)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One history of a scenario on a fresh local zone.
    Scenario {
        name: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 500)]
        ops: u64,
        /// Members on 127.0.<subnet>.1-3 (default: the address registry's
        /// `addresses::RECORDER`).
        #[arg(long, default_value_t = addresses::RECORDER.subnet())]
        subnet: u8,
        #[arg(long)]
        seed: Option<u64>,
        /// Part of the key prefix; unique per history of a run.
        #[arg(long, default_value = "h")]
        history: String,
        /// The zone-etcd binary (default: beside this one).
        #[arg(long)]
        zone_etcd: Option<PathBuf>,
        /// The directory of the bundled etcd (default: the repository's bin/).
        #[arg(long)]
        bin: Option<PathBuf>,
    },
    /// The recorder alone against a running zone.
    Record {
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
        #[arg(long)]
        cacert: PathBuf,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 500)]
        ops: u64,
        #[arg(long)]
        seed: Option<u64>,
        /// The keys' prefix (default: /cz/<seed>/).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// The scenarios, one a line.
    List,
}

fn summary_json(s: &Summary, faults: &[String], seconds: f64, seed: u64) -> String {
    serde_json::json!({
        "ops": s.ops, "unknown": s.unknown, "failed": s.failed,
        "watch_responses": s.watch_responses, "watchers": s.watchers,
        "watchers_reached_fence": s.watchers_reached_fence,
        "faults": faults, "seconds": (seconds * 10.0).round() / 10.0, "seed": seed,
        "notes": s.notes,
    })
    .to_string()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::List => {
            for s in scenarios::ALL {
                println!("{s}");
            }
            Ok(())
        }
        Cmd::Scenario {
            name,
            out,
            ops,
            subnet,
            seed,
            history,
            zone_etcd,
            bin,
        } => {
            let seed = seed.unwrap_or_else(Rng::seed_from_time);
            let here = std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(PathBuf::from));
            let tools = Tools {
                zone_etcd: zone_etcd
                    .or_else(|| here.map(|d| d.join("zone-etcd")))
                    .unwrap_or_else(|| PathBuf::from("zone-etcd")),
                bin_dir: bin.unwrap_or_else(|| {
                    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../bin"))
                }),
            };
            let o = Options {
                tools,
                subnet,
                ops,
                seed,
                out,
                history,
            };
            scenarios::run(&name, &o).map(|r| {
                println!("{}", summary_json(&r.summary, &r.faults, r.seconds, seed));
            })
        }
        Cmd::Record {
            endpoints,
            cacert,
            cert,
            key,
            out,
            ops,
            seed,
            prefix,
        } => {
            let seed = seed.unwrap_or_else(Rng::seed_from_time);
            let plan = Plan {
                endpoints,
                creds: CredFiles {
                    ca: cacert,
                    cert,
                    key,
                },
                prefix: prefix.unwrap_or_else(|| format!("/cz/{seed}/")),
                keys: 5,
                ops,
                clients_all: 3,
                op_timeout: Duration::from_secs(2),
                seed,
            };
            record_alone(&plan, &out, seed)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zone-recorder: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn record_alone(plan: &Plan, out: &std::path::Path, seed: u64) -> Result<(), String> {
    let control = Arc::new(Control::default());
    control.fault_done.store(true, Ordering::SeqCst);
    let sink = Arc::new(Sink::new());
    let rt = zone_recorder::record::runtime()?;
    let started = std::time::Instant::now();
    let summary = rt.block_on(record(plan, control, sink.clone()))?;
    sink.write(out)?;
    println!(
        "{}",
        summary_json(&summary, &[], started.elapsed().as_secs_f64(), seed)
    );
    Ok(())
}
