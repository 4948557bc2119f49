//! Writes a benchmark corpus and rule sets (used by `benches/compare.sh`).
//!
//! `cargo run --release --example gen_corpus -- DIR SIZE_MB [flat|gcp] [MATCHES_PER_MILLION]`
//! writes `DIR/corpus-<shape>-<rate>.jsonl` and `DIR/rules-{1,10,100,1000}/`.

#[path = "../benches/support/corpus.rs"]
mod corpus;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("target/bench-corpus"),
    );
    let mb: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let shape = match args.get(3).map(String::as_str) {
        Some("gcp") => corpus::Shape::Gcp,
        _ => corpus::Shape::Flat,
    };
    let rate: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(500);
    std::fs::create_dir_all(&dir)?;
    let name = format!(
        "corpus-{}-{rate}.jsonl",
        if shape == corpus::Shape::Gcp {
            "gcp"
        } else {
            "flat"
        }
    );
    let path = dir.join(&name);
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let targets = corpus::write_corpus(&mut f, shape, mb << 20, rate, 7)?;
    for n in [1usize, 10, 100, 1000] {
        let rdir = dir.join(format!("rules-{n}"));
        let _ = std::fs::remove_dir_all(&rdir);
        std::fs::create_dir_all(&rdir)?;
        for (file, text) in corpus::rules(n) {
            std::fs::write(rdir.join(file), text)?;
        }
    }
    println!("{} {targets}", path.display());
    Ok(())
}
