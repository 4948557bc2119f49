//! Criterion benchmarks of the hot path, in bytes per second, over corpora generated at bench
//! time (see `support/corpus.rs`; nothing large is committed):
//!
//! - `shape`: the one pass every byte gets (line count, NUL/backslash/non-ASCII flags);
//! - `decode`: one record to an event, flat JSON and GCP LogEntry;
//! - `match/<shape>/<rate>/<rules>`: the whole search (prefilter, decoding of candidates,
//!   exact evaluation, coverage sampling) over an in-memory corpus with 1, 10, 100 and 1000
//!   rules, flat JSON lines and GCP entries, at 0.05% and 5% target lines;
//! - `scan`: the same through `recur scan --no-state` on a file, in process, one thread.
//!
//! `cargo bench --bench hot_path` runs them; CI only compiles them (`cargo bench --no-run`).
//! `benches/compare.sh` times the binary against `rg` and `jq` on a 1 GB corpus.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use recur::decode::{DecodeConfig, RecordMeta, decode, decode_keeping};
use recur::matcher::{CoverageMode, Hit, Matcher};
use recur::rule::{Remediation, parse_rule_file};
use recur::search::{InvalidTally, SearchConfig, Sink, Stats, search};
use recur::source::framing::{Anchor, Framing, Record, RecordReader, shape_scan};

#[path = "support/corpus.rs"]
mod corpus;

use corpus::Shape;

/// Corpus size per benchmark: large enough to leave the caches' warm-up behind.
const CORPUS_BYTES: u64 = 64 << 20;

fn corpus(shape: Shape, per_million: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(CORPUS_BYTES as usize + 1024);
    corpus::write_corpus(&mut v, shape, CORPUS_BYTES, per_million, 7).unwrap();
    v
}

fn rules(n: usize) -> Arc<[Remediation]> {
    corpus::rules(n)
        .into_iter()
        .map(|(name, text)| parse_rule_file(Path::new(&name), &text).expect("bench rule"))
        .collect::<Vec<_>>()
        .into()
}

/// Counts what the search hands over, so nothing is optimised away.
#[derive(Default)]
struct CountSink {
    occurrences: u64,
    covered: u64,
}

impl Sink for CountSink {
    fn hits(&mut self, _record: &Record<'_>, _event: &recur::decode::Event, hits: &[Hit]) {
        self.occurrences += hits
            .iter()
            .filter(|h| matches!(h, Hit::Occurrence { .. }))
            .count() as u64;
    }
    fn covered(&mut self, _event: &recur::decode::Event, rules: &[usize]) {
        self.covered += rules.len() as u64;
    }
}

fn run_search(data: &[u8], matcher: &Matcher, cfg: &SearchConfig) -> u64 {
    let mut reader = RecordReader::new(Cursor::new(data), Framing::Lines, 1 << 20);
    let mut sink = CountSink::default();
    let mut stats = Stats::default();
    let mut invalid = InvalidTally::default();
    search(
        &mut reader,
        matcher,
        cfg,
        &mut sink,
        &mut stats,
        &mut invalid,
    )
    .unwrap();
    sink.occurrences + sink.covered + stats.records
}

fn bench_shape(c: &mut Criterion) {
    // One block as the reader hands it over (256 KiB, cut at a line end), in cache as it is
    // right after its read: the pass's own cost, not the memory's.
    let data = corpus(Shape::Flat, 500);
    let end = memchr::memrchr(b'\n', &data[..256 * 1024]).unwrap() + 1;
    let block = &data[..end];
    let mut g = c.benchmark_group("shape");
    g.throughput(Throughput::Bytes(block.len() as u64));
    let mut suspects = Vec::new();
    let mut hits = Vec::new();
    let mut marks = Vec::new();
    g.bench_function("block", |b| {
        b.iter(|| {
            shape_scan(
                std::hint::black_box(block),
                &mut suspects,
                None,
                &mut hits,
                &mut marks,
            )
            .lines
        })
    });
    let anchor = Anchor::new(b"error_code").unwrap();
    g.bench_function("block+anchor", |b| {
        b.iter(|| {
            shape_scan(
                std::hint::black_box(block),
                &mut suspects,
                Some(&anchor),
                &mut hits,
                &mut marks,
            );
            hits.len()
        })
    });
    // Yardsticks for the same bytes: counting newlines, validating UTF-8, finding the key.
    g.bench_function("memchr-count", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', std::hint::black_box(block)).count())
    });
    g.bench_function("utf8", |b| {
        b.iter(|| simdutf8::basic::from_utf8(std::hint::black_box(block)).is_ok())
    });
    let finder = memchr::memmem::Finder::new(b"error_code");
    g.bench_function("memmem-key", |b| {
        b.iter(|| finder.find_iter(std::hint::black_box(block)).count())
    });
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let cfg = DecodeConfig::default();
    let mut g = c.benchmark_group("decode");
    for (name, shape) in [("flat", Shape::Flat), ("gcp", Shape::Gcp)] {
        let data = corpus(shape, 500);
        let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').take(10_000).collect();
        let bytes: usize = lines.iter().map(|l| l.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter(|l| decode(l, &RecordMeta::default(), &cfg).is_ok())
                    .count()
            })
        });
        // As `scan` decodes a candidate: only the fields 100 rules, times and ids use.
        let keep = Matcher::new(rules(100), CoverageMode::Sampled).keep(&cfg);
        g.bench_function(format!("{name}/projected"), |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter(|l| decode_keeping(l, &RecordMeta::default(), &cfg, &keep).is_ok())
                    .count()
            })
        });
    }
    g.finish();
}

fn bench_match(c: &mut Criterion) {
    let mut g = c.benchmark_group("match");
    g.sample_size(10);
    for (sname, shape) in [("flat", Shape::Flat), ("gcp", Shape::Gcp)] {
        for (rname, rate) in [("0.05%", 500), ("5%", 50_000)] {
            let data = corpus(shape, rate);
            g.throughput(Throughput::Bytes(data.len() as u64));
            for n in [1usize, 10, 100, 1000] {
                let matcher = Matcher::new(rules(n), CoverageMode::Sampled);
                // Candidates decoded as `scan` decodes them.
                let cfg = SearchConfig {
                    keep: Some(matcher.keep(&DecodeConfig::default())),
                    decode: DecodeConfig::default(),
                    since: None,
                    until: None,
                };
                g.bench_with_input(
                    BenchmarkId::new(format!("{sname}/{rname}"), n),
                    &n,
                    |b, _| b.iter(|| run_search(&data, &matcher, &cfg)),
                );
            }
        }
    }
    g.finish();
}

fn bench_scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.jsonl");
    std::fs::write(&path, corpus(Shape::Flat, 500)).unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    for (name, text) in corpus::rules(100) {
        std::fs::write(rules_dir.join(name), text).unwrap();
    }
    let mut g = c.benchmark_group("scan");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(std::fs::metadata(&path).unwrap().len()));
    g.bench_function("flat/0.05%/100", |b| {
        b.iter(|| {
            let cli = <recur::cli::Cli as clap::Parser>::parse_from([
                "recur",
                "scan",
                "--no-state",
                "--no-notify",
                "--threads",
                "1",
                "--format",
                "json",
                "--rules",
                rules_dir.to_str().unwrap(),
                path.to_str().unwrap(),
            ]);
            let recur::cli::Command::Scan(args) = cli.command else {
                unreachable!()
            };
            let mut out = Vec::new();
            let mut err = Vec::new();
            recur::mode::scan::run(&args, false, &mut out, &mut err).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_shape, bench_decode, bench_match, bench_scan);
criterion_main!(benches);
