//! The `flowkeep` binary: the command line ([`cli`]) over the `flowkeep` library.
#![deny(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
