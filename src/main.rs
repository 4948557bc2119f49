//! The `recur` binary: parse flags, run, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = recur::cli::Cli::parse();
    let code = match recur::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`recur grep … | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                0
            } else {
                eprintln!("error: {e:#}");
                2
            }
        }
    };
    std::process::exit(code);
}
