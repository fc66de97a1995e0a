//! A simulated linearizable etcd (one store, global revisions, single-key requests) under
//! concurrent clients and watchers, recorded in the history format: the checker must find
//! nothing in what it makes. Each operation takes effect at one instant between its call
//! and its return; an unknown outcome is a lost response (applied), or a request applied
//! later (even after its client gave up) or never; a failed one was never applied.
//! Watchers get every event from their start revision in order, whole revisions per
//! response, with previous values; some start from the past, some from now, some end
//! compacted. Deterministic per seed.

use std::collections::BTreeMap;
use zone_consistency::{Event, EventKind, Final, History, Line, Op, OpKind, Outcome, Watch};

/// splitmix64: small, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn per_mille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

#[derive(Clone, Copy)]
pub struct Config {
    pub seed: u64,
    pub clients: usize,
    pub keys: usize,
    pub ops: usize,
    pub watchers: usize,
    pub unknown_per_mille: u64,
    pub failed_per_mille: u64,
}

impl Config {
    pub fn small(seed: u64) -> Config {
        Config {
            seed,
            clients: 5,
            keys: 3,
            ops: 200,
            watchers: 3,
            unknown_per_mille: 40,
            failed_per_mille: 20,
        }
    }
}

/// One write as the store applied it.
#[derive(Clone, Debug)]
pub struct Applied {
    pub rev: i64,
    pub key: String,
    pub value: Option<String>,
    pub prev: Option<String>,
    pub create: i64,
    pub version: i64,
}

/// What the generator made: the history, and the store's own log (the truth).
pub struct Generated {
    pub history: History,
    pub text: String,
    pub log: Vec<Applied>,
}

#[derive(Default)]
struct Store {
    rev: i64,
    kv: BTreeMap<String, (String, i64, i64, i64)>,
    log: Vec<Applied>,
}

impl Store {
    fn write(&mut self, key: &str, value: Option<String>) -> i64 {
        self.rev += 1;
        let old = self.kv.remove(key);
        let prev = old.as_ref().map(|o| o.0.clone());
        let (create, version) = match (&value, &old) {
            (Some(_), Some(o)) => (o.2, o.3 + 1),
            (Some(_), None) => (self.rev, 1),
            (None, _) => (0, 0),
        };
        if let Some(v) = &value {
            self.kv
                .insert(key.to_string(), (v.clone(), self.rev, create, version));
        }
        self.log.push(Applied {
            rev: self.rev,
            key: key.to_string(),
            value,
            prev,
            create,
            version,
        });
        self.rev
    }

    /// Applies `op` (its kind, key, value, expect) and fills in its results.
    fn apply(&mut self, op: &mut Op) {
        let current = self.kv.get(&op.key).cloned();
        match op.op {
            OpKind::Get => {
                op.result_value = current.as_ref().map(|c| c.0.clone());
                op.result_mod_revision = Some(current.map_or(0, |c| c.1));
                op.revision = Some(self.rev);
            }
            OpKind::Put => op.revision = Some(self.write(&op.key, op.value.clone())),
            OpKind::Delete => {
                op.deleted = Some(i64::from(current.is_some()));
                op.revision = Some(if current.is_some() {
                    self.write(&op.key, None)
                } else {
                    self.rev
                });
            }
            OpKind::Cas => {
                let holds = current.map_or(0, |c| c.1) == op.expect_mod_revision.unwrap_or(0);
                op.succeeded = Some(holds);
                op.revision = Some(if holds {
                    self.write(&op.key, op.value.clone())
                } else {
                    self.rev
                });
            }
        }
    }
}

enum Slot {
    Idle,
    Called(Op),
    Applied(Op),
}

struct Watcher {
    id: u64,
    key: String,
    prefix: bool,
    start: i64,
    /// Index in the store's log of the next event to deliver.
    cursor: usize,
    ends_compacted: bool,
    ended: bool,
}

/// Generates one correct history.
pub fn generate(cfg: Config) -> Generated {
    let mut rng = Rng::new(cfg.seed);
    let mut store = Store {
        rev: 1,
        ..Default::default()
    };
    let keys: Vec<String> = (0..cfg.keys).map(|k| format!("k{k}")).collect();
    let mut lines: Vec<Line> = Vec::new();
    let mut slots: Vec<(u64, Slot)> = (0..cfg.clients as u64).map(|c| (c, Slot::Idle)).collect();
    let mut next_client = cfg.clients as u64;
    let mut seen_mod: BTreeMap<(u64, String), i64> = BTreeMap::new();
    let mut limbo: Vec<Op> = Vec::new();
    let mut watchers: Vec<Watcher> = Vec::new();
    let (mut t, mut done, mut values) = (1_000u64, 0usize, 0u64);
    while done < cfg.ops {
        t += 1 + rng.below(400);
        if watchers.len() < cfg.watchers && rng.per_mille(20) {
            watchers.push(new_watcher(&mut rng, &store, &keys, watchers.len() as u64));
        }
        if !limbo.is_empty() && rng.per_mille(30) {
            let mut op = limbo.swap_remove(rng.below(limbo.len() as u64) as usize);
            store.apply(&mut op);
        }
        if !watchers.is_empty() && rng.per_mille(150) {
            let i = rng.below(watchers.len() as u64) as usize;
            deliver(&mut watchers[i], &store, &mut rng, t, false, &mut lines);
        }
        let s = rng.below(slots.len() as u64) as usize;
        let (client, slot) = &mut slots[s];
        match std::mem::replace(slot, Slot::Idle) {
            Slot::Idle => {
                let key = keys[rng.below(keys.len() as u64) as usize].clone();
                let op = match rng.below(100) {
                    0..=39 => OpKind::Get,
                    40..=64 => OpKind::Put,
                    65..=74 => OpKind::Delete,
                    _ => OpKind::Cas,
                };
                let mut o = Op {
                    client: *client,
                    op,
                    key,
                    call_ns: t,
                    ..Default::default()
                };
                if matches!(op, OpKind::Put | OpKind::Cas) {
                    values += 1;
                    o.value = Some(format!("v{values}"));
                }
                if op == OpKind::Cas {
                    let known = seen_mod
                        .get(&(*client, o.key.clone()))
                        .copied()
                        .unwrap_or(0);
                    o.expect_mod_revision = Some(if rng.per_mille(150) {
                        rng.below(store.rev as u64 + 1) as i64
                    } else {
                        known
                    });
                }
                *slot = Slot::Called(o);
            }
            Slot::Called(mut o) => {
                if rng.per_mille(cfg.failed_per_mille) {
                    o.outcome = Outcome::Failed;
                    o.return_ns = Some(t);
                    lines.push(Line::Op(o));
                    done += 1;
                } else if rng.per_mille(cfg.unknown_per_mille) {
                    // Gave up before it was applied: applied later, or never.
                    if rng.per_mille(500) && o.op != OpKind::Get {
                        limbo.push(o.clone());
                    }
                    o.outcome = Outcome::Unknown;
                    o.return_ns = rng.per_mille(500).then_some(t);
                    lines.push(Line::Op(o));
                    *client = next_client;
                    next_client += 1;
                    done += 1;
                } else {
                    store.apply(&mut o);
                    *slot = Slot::Applied(o);
                }
            }
            Slot::Applied(mut o) => {
                o.return_ns = Some(t);
                if rng.per_mille(cfg.unknown_per_mille / 2) {
                    // Applied, but the response was lost.
                    o = Op {
                        outcome: Outcome::Unknown,
                        revision: None,
                        result_value: None,
                        result_mod_revision: None,
                        succeeded: None,
                        deleted: None,
                        ..o
                    };
                    *client = next_client;
                    next_client += 1;
                } else {
                    let m = o.result_mod_revision.filter(|&m| m > 0).or(match o.op {
                        OpKind::Put => o.revision,
                        OpKind::Cas if o.succeeded == Some(true) => o.revision,
                        _ => None,
                    });
                    if let Some(m) = m {
                        seen_mod.insert((*client, o.key.clone()), m);
                    }
                }
                lines.push(Line::Op(o));
                done += 1;
            }
        }
    }
    // Wind down: answer what is in flight, apply some of limbo, flush the watchers.
    for (_, slot) in slots.iter_mut() {
        t += 1 + rng.below(100);
        match std::mem::replace(slot, Slot::Idle) {
            Slot::Idle => {}
            Slot::Called(mut o) | Slot::Applied(mut o) => {
                if o.revision.is_none() {
                    store.apply(&mut o);
                }
                o.return_ns = Some(t);
                lines.push(Line::Op(o));
            }
        }
    }
    for mut op in limbo {
        if rng.per_mille(500) {
            store.apply(&mut op);
        }
    }
    for w in watchers.iter_mut() {
        t += 1 + rng.below(100);
        deliver(w, &store, &mut rng, t, true, &mut lines);
    }
    for k in &keys {
        let cur = store.kv.get(k);
        lines.push(Line::Final(Final {
            line: 0,
            revision: store.rev,
            key: k.clone(),
            value: cur.map(|c| c.0.clone()),
            mod_revision: cur.map_or(0, |c| c.1),
        }));
    }
    let text: String = lines
        .iter()
        .map(|l| serde_json::to_string(l).unwrap() + "\n")
        .collect();
    let history = zone_consistency::parse(&text).unwrap_or_else(|e| {
        panic!(
            "seed {}: the generator wrote a malformed history: {e}",
            cfg.seed
        )
    });
    Generated {
        history,
        text,
        log: store.log,
    }
}

fn new_watcher(rng: &mut Rng, store: &Store, keys: &[String], id: u64) -> Watcher {
    let (key, prefix) = if rng.per_mille(500) {
        ("k".to_string(), true)
    } else {
        (keys[rng.below(keys.len() as u64) as usize].clone(), false)
    };
    // From the past, from the next revision, or from now (0).
    let start = match rng.below(3) {
        0 => 1 + rng.below(store.rev as u64) as i64,
        1 => store.rev + 1,
        _ => 0,
    };
    let from = if start == 0 { store.rev + 1 } else { start };
    let cursor = store
        .log
        .iter()
        .position(|a| a.rev >= from)
        .unwrap_or(store.log.len());
    Watcher {
        id,
        key,
        prefix,
        start,
        cursor,
        ends_compacted: rng.per_mille(100),
        ended: false,
    }
}

/// Sends `w` one response with the next whole revisions (all of them when `all`).
fn deliver(
    w: &mut Watcher,
    store: &Store,
    rng: &mut Rng,
    t: u64,
    all: bool,
    lines: &mut Vec<Line>,
) {
    if w.ended {
        return;
    }
    let matches = |key: &str| {
        if w.prefix {
            key.starts_with(&w.key)
        } else {
            key == w.key
        }
    };
    let mut events = Vec::new();
    let budget = if all {
        usize::MAX
    } else {
        1 + rng.below(4) as usize
    };
    while w.cursor < store.log.len() && events.len() < budget {
        let a = &store.log[w.cursor];
        w.cursor += 1;
        if matches(&a.key) {
            events.push(Event {
                kind: if a.value.is_some() {
                    EventKind::Put
                } else {
                    EventKind::Delete
                },
                key: a.key.clone(),
                value: a.value.clone(),
                mod_revision: a.rev,
                create_revision: a.value.as_ref().map(|_| a.create),
                version: a.value.as_ref().map(|_| a.version),
                prev_value: a.prev.clone(),
            });
        }
    }
    let compacted = w.ends_compacted && !all && rng.per_mille(200);
    if events.is_empty() && !compacted {
        return;
    }
    let events = if compacted { Vec::new() } else { events };
    w.ended = compacted;
    lines.push(Line::Watch(Watch {
        line: 0,
        watcher: w.id,
        key: w.key.clone(),
        prefix: w.prefix,
        start_revision: w.start,
        time_ns: t,
        revision: store.rev,
        compacted,
        canceled: false,
        events,
    }));
}
