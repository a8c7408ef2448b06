//! The `flowkeep` binary: the command line ([`cli`]) over the `flowkeep` library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
